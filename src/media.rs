//! Media files under `DATA/media/`: the path rule, the URL they get, their
//! media type, and the one safe way to open them.
//!
//! Entries name a file by its path relative to `DATA/media/`
//! (`2022/photo.jpg`); Vestnik serves it at `{base_url}media/2022/photo.jpg`.
//! [`check_path`] and [`media_type`] are pure and used by `entry::parse`;
//! [`open`] does the I/O, for the loader (lengths), the server and export.

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};

pub use crate::urls::MEDIA_DIR;

/// The largest media file Vestnik serves or exports: 32 MiB. Responses are
/// sent from memory, and a news site's photos and documents fit well under
/// it; put larger files (video) on a file host and link them by URL.
pub const MAX_MEDIA_BYTES: u64 = 32 << 20;

/// Checks a media path from front matter or a request: relative, `/`
/// separated, no empty, `.` or `..` segment, no segment starting with `.`
/// (hidden files are never served), no backslash or control character.
/// Returns the reason when it is refused.
pub fn check_path(rel: &str) -> Result<(), &'static str> {
    if rel.is_empty() {
        return Err("the path is empty");
    }
    if rel.starts_with('/') || Path::new(rel).is_absolute() {
        return Err("absolute paths are not allowed; give a path relative to DATA/media/");
    }
    if rel.contains('\\') || rel.chars().any(char::is_control) {
        return Err("backslashes and control characters are not allowed");
    }
    for segment in rel.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err("empty, `.` and `..` path segments are not allowed");
        }
        if segment.starts_with('.') {
            return Err("hidden files and folders (starting with `.`) are not served");
        }
    }
    Ok(())
}

/// The media type guessed from a file name's extension, if it is known.
pub fn media_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    mime_guess::from_ext(ext).first_raw()
}

/// Why a media file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The path breaks [`check_path`].
    #[error("invalid media path: {0}")]
    BadPath(&'static str),
    /// No such file (or it cannot be read).
    #[error("no file {0}: {1}")]
    Missing(String, std::io::Error),
    /// A symlink that leads out of `DATA/media/`.
    #[error("{0} is a symlink that points outside DATA/media/")]
    Outside(String),
    /// A folder, device or other non-regular file.
    #[error("{0} is not a regular file")]
    NotFile(String),
    /// Over [`MAX_MEDIA_BYTES`].
    #[error("{0} is {1} bytes, over the {MAX_MEDIA_BYTES} byte limit for a media file")]
    TooLarge(String, u64),
}

/// Opens `DATA/media/{rel}` for reading after checking it: a valid path, a
/// regular file (symlinks are followed only when they resolve inside
/// `DATA/media/`, so no link can expose `site.toml` or anything else) and
/// at most [`MAX_MEDIA_BYTES`].
pub fn open(data_dir: &Path, rel: &str) -> Result<(File, Metadata), MediaError> {
    check_path(rel).map_err(MediaError::BadPath)?;
    let shown = format!("{MEDIA_DIR}/{rel}");
    let path = data_dir.join(MEDIA_DIR).join(rel);
    let real = std::fs::canonicalize(&path).map_err(|e| MediaError::Missing(shown.clone(), e))?;
    let root = std::fs::canonicalize(data_dir.join(MEDIA_DIR))
        .map_err(|e| MediaError::Missing(shown.clone(), e))?;
    if !real.starts_with(&root) {
        return Err(MediaError::Outside(shown));
    }
    let (file, meta) = crate::file::open_regular(&real).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => MediaError::NotFile(shown.clone()),
        _ => MediaError::Missing(shown.clone(), e),
    })?;
    if meta.len() > MAX_MEDIA_BYTES {
        return Err(MediaError::TooLarge(shown, meta.len()));
    }
    Ok((file, meta))
}

/// Reads a whole media file, checked as [`open`] does, at most
/// [`MAX_MEDIA_BYTES`] even if it grows while being read.
pub fn read(data_dir: &Path, rel: &str) -> Result<(Vec<u8>, Metadata), MediaError> {
    use std::io::Read as _;
    let (file, meta) = open(data_dir, rel)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_MEDIA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| MediaError::Missing(format!("{MEDIA_DIR}/{rel}"), e))?;
    if bytes.len() as u64 > MAX_MEDIA_BYTES {
        return Err(MediaError::TooLarge(
            format!("{MEDIA_DIR}/{rel}"),
            bytes.len() as u64,
        ));
    }
    Ok((bytes, meta))
}

/// Every servable file under `DATA/media/`, as paths relative to it, sorted:
/// what export copies. Hidden files and folders are skipped, as are files
/// that [`open`] would refuse.
pub fn list(data_dir: &Path) -> Vec<(String, PathBuf)> {
    let root = data_dir.join(MEDIA_DIR);
    if !root.is_dir() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for item in walker.flatten() {
        if item.file_type().is_dir() {
            continue;
        }
        let Ok(rel) = item.path().strip_prefix(&root) else {
            continue;
        };
        let Some(rel) = rel
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join("/"))
        else {
            continue;
        };
        if open(data_dir, &rel).is_ok() {
            out.push((rel, item.path().to_path_buf()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for good in ["photo.jpg", "2022/08/photo.jpg", "a b/фото.png"] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../site.toml",
            "a/../../x",
            "a//b",
            "./a",
            ".hidden",
            "a/.git/config",
            "a\\b",
            "a\nb",
            "a/",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_and_types() {
        assert_eq!(crate::urls::media("2022/a b.jpg"), "media/2022/a%20b.jpg");
        assert_eq!(
            crate::urls::media("фото.png"),
            "media/%D1%84%D0%BE%D1%82%D0%BE.png"
        );
        assert_eq!(media_type("x.JPG"), Some("image/jpeg"));
        assert_eq!(media_type("a/b.mp3"), Some("audio/mpeg"));
        assert_eq!(media_type("x.pdf"), Some("application/pdf"));
        assert_eq!(media_type("noext"), None);
        assert_eq!(media_type("x.unknownext"), None);
    }

    #[test]
    fn open_refuses_what_it_must() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let media = data.join(MEDIA_DIR);
        std::fs::create_dir_all(media.join("sub")).unwrap();
        std::fs::write(media.join("a.png"), b"png").unwrap();
        std::fs::write(data.join("site.toml"), b"secret").unwrap();
        std::fs::write(dir.path().join("outside.txt"), b"outside").unwrap();
        assert_eq!(open(&data, "a.png").unwrap().1.len(), 3);
        assert!(matches!(open(&data, "sub"), Err(MediaError::NotFile(_))));
        assert!(matches!(
            open(&data, "nope.png"),
            Err(MediaError::Missing(..))
        ));
        assert!(matches!(
            open(&data, "../site.toml"),
            Err(MediaError::BadPath(_))
        ));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("outside.txt"), media.join("out.txt"))
                .unwrap();
            std::os::unix::fs::symlink(data.join("site.toml"), media.join("in.toml")).unwrap();
            std::os::unix::fs::symlink(media.join("a.png"), media.join("sub/b.png")).unwrap();
            assert!(matches!(
                open(&data, "out.txt"),
                Err(MediaError::Outside(_))
            ));
            // Inside DATA but outside DATA/media: refused too.
            assert!(matches!(
                open(&data, "in.toml"),
                Err(MediaError::Outside(_))
            ));
            assert_eq!(open(&data, "sub/b.png").unwrap().1.len(), 3);
        }
        let names: Vec<String> = list(&data).into_iter().map(|(r, _)| r).collect();
        assert!(names.contains(&"a.png".to_owned()), "{names:?}");
        assert!(!names.iter().any(|n| n == "out.txt"), "{names:?}");
    }
}
