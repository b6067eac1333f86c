//! Small text helpers shared by the loader and the renderers: XML-safe text and slugs.

/// True for characters that XML 1.0 allows in a document
/// (`#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`).
///
/// Rust strings cannot hold surrogates, so only C0 controls, U+FFFE and U+FFFF
/// are rejected here.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// True when `s` holds only characters XML 1.0 allows; the same answer as
/// `s.chars().all(is_xml_char)`, from the UTF-8 bytes (whole entry files pass
/// through here at load, and decoding every char costs more than reading bytes).
///
/// In valid UTF-8 the forbidden characters are exactly the bytes below 0x20
/// other than tab, LF and CR (C0 controls never occur inside multi-byte
/// sequences), and U+FFFE and U+FFFF, which are `EF BF BE` and `EF BF BF`.
fn all_xml_chars(s: &str) -> bool {
    let bytes = s.as_bytes();
    let controls = bytes
        .iter()
        .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'));
    !controls
        && !bytes
            .windows(3)
            .any(|w| w[0] == 0xEF && w[1] == 0xBF && w[2] >= 0xBE)
}

/// Removes every character XML 1.0 forbids.
///
/// Strict parsers reject a whole feed over one such character (a pasted U+0008,
/// say), so every string that reaches a feed passes through here. Borrows when
/// there is nothing to remove, which is the common case.
pub fn xml_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if all_xml_chars(s) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// Collapses runs of white space into single spaces and trims the ends.
pub fn squash_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A readable Latin slug: transliterated by `deunicode`, lowercased, with runs of
/// anything but ASCII letters and digits turned into single hyphens.
///
/// `"Городской пассажирский транспорт"` becomes `"gorodskoi-passazhirskii-transport"`.
/// Apostrophes, which deunicode writes for the soft and hard signs, are
/// dropped rather than split on, so «Земельно» becomes `zemelno`.
pub fn slugify(s: &str) -> String {
    let latin = deunicode::deunicode(s).to_ascii_lowercase();
    let mut slug = String::with_capacity(latin.len());
    for c in latin.chars() {
        if c == '\'' || c == '"' {
            continue;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// A slug cut to at most `max` bytes at a hyphen, so no word is split.
/// A single word longer than `max` is cut at `max`.
pub fn slug_prefix(slug: &str, max: usize) -> &str {
    if slug.len() <= max {
        return slug;
    }
    // Slugs are ASCII, so any byte index is a character boundary.
    match slug[..=max].rfind('-') {
        Some(cut) if cut > 0 => &slug[..cut],
        _ => &slug[..max],
    }
}

/// Bytes in lowercase hex, two digits each (digests in ETags and manifests).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_check_agrees_with_the_char_rule() {
        // Every Unicode scalar value, alone and between Cyrillic letters.
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let want = is_xml_char(c);
            assert_eq!(all_xml_chars(c.encode_utf8(&mut [0; 4])), want, "{c:?}");
            assert_eq!(all_xml_chars(&format!("Ёж{c}ё")), want, "{c:?}");
        }
    }

    #[test]
    fn xml_safe_drops_forbidden_characters_only() {
        assert_eq!(xml_safe("a\u{8}b\u{0}c\u{FFFE}\u{FFFF}d"), "abcd");
        assert_eq!(xml_safe("tab\tnl\ncr\r ok «»—😀"), "tab\tnl\ncr\r ok «»—😀");
        assert!(matches!(xml_safe("clean"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn slugify_transliterates_russian() {
        assert_eq!(
            slugify("Городской пассажирский транспорт"),
            "gorodskoi-passazhirskii-transport"
        );
        assert_eq!(
            slugify("По вопросам ГО,ЧС и ОПБ"),
            "po-voprosam-go-chs-i-opb"
        );
        assert_eq!(slugify("  --Hello, World!-- "), "hello-world");
        assert_eq!(slugify("«»"), "");
        assert_eq!(
            slugify("Земельно-имущественные отношения"),
            "zemelno-imushchestvennye-otnosheniia"
        );
    }

    #[test]
    fn slug_prefix_cuts_at_hyphens() {
        assert_eq!(slug_prefix("abc-def-ghi", 20), "abc-def-ghi");
        assert_eq!(slug_prefix("abc-def-ghi", 7), "abc-def");
        assert_eq!(slug_prefix("abc-def-ghi", 8), "abc-def");
        assert_eq!(slug_prefix("abcdefghij", 4), "abcd");
    }
}
