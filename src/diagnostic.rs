//! Problems found in the data directory, each tied to a file and a position.
//!
//! Loading never stops at the first problem: it returns what it could build plus
//! a list of [`Diagnostic`]s, so `vestnik check` can show every problem in one run.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file, shown as `path:line:column: message`.
///
/// Lines and columns are 1-based. Problems that concern a whole file (an
/// empty file, a duplicate id) point at `1:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the user named it (the data directory joined with the relative path).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// Lowercase, no trailing period, and says what to do where it can.
    pub message: String,
}

impl Diagnostic {
    /// A problem at a known position.
    pub fn at(path: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            path: path.to_path_buf(),
            line: line.max(1),
            column: column.max(1),
            message: message.into(),
        }
    }

    /// A problem with the whole file.
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self::at(path, 1, 1, message)
    }

    /// A problem at a byte offset of `text`, which starts at line `first_line` of the file.
    pub fn at_offset(
        path: &Path,
        text: &str,
        offset: usize,
        first_line: usize,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(text, offset);
        Self::at(path, first_line + line - 1, column, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// The 1-based line and character column of byte `offset` in `text`.
///
/// An offset past the end (or inside a multi-byte character) is clamped to the
/// nearest preceding character boundary, so a bad span never panics.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters_not_bytes() {
        let text = "ab\nпривет = 1\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        // "привет" is 12 bytes; the space after it is column 7.
        assert_eq!(line_column(text, 3 + 12), (2, 7));
        assert_eq!(line_column(text, 10_000), (3, 1));
        // Inside a multi-byte character: clamped back, never a panic.
        assert_eq!(line_column(text, 4), (2, 1));
    }

    #[test]
    fn display_is_path_line_column_message() {
        let d = Diagnostic::at(Path::new("data/entries/a.md"), 3, 7, "no such date");
        assert_eq!(d.to_string(), "data/entries/a.md:3:7: no such date");
        assert_eq!(Diagnostic::file(Path::new("x.md"), "empty").line, 1);
    }
}
