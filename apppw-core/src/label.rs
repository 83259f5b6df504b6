//! Labels name an app password for its owner ("Phone mail"). They are user text: validated on the
//! way in, escaped on the way out, and quoted in every log line.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

use crate::error::Error;

/// Most characters a label may have.
pub const MAX_LABEL_CHARS: usize = 64;

/// A validated label: 1 to 64 characters after trimming outer white space, every one of them
/// visible (see [`is_unsafe_char`]), so what a terminal or a log shows is what is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    pub fn new(text: &str) -> Result<Label, Error> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(Error::InvalidLabel(
                "a label needs at least one visible character",
            ));
        }
        if trimmed.chars().count() > MAX_LABEL_CHARS {
            return Err(Error::InvalidLabel("a label has at most 64 characters"));
        }
        if trimmed.chars().any(is_unsafe_char) {
            return Err(Error::InvalidLabel(
                "control, format, invisible, direction, line-separator, private-use and unassigned characters are not allowed, nor spaces other than the ordinary one",
            ));
        }
        Ok(Label(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters that must never reach a terminal or a log raw, decided by Unicode's own
/// classification rather than by a list of known tricks:
/// - general categories Cc (controls: escape sequences start there), Cf (format: bidi overrides,
///   zero-width joiners, the soft hyphen, tags, the Arabic letter mark), Zl and Zp (line and
///   paragraph separators), Co (private use), Cs (surrogates) and Cn (unassigned: a later Unicode
///   may make them anything);
/// - Zs other than U+0020 (no-break and wide spaces that look like a space and are not one);
/// - the Default_Ignorable_Code_Point property, which Unicode gives to characters that render as
///   nothing although their category says letter or mark (U+3164 HANGUL FILLER is Lo, U+034F
///   COMBINING GRAPHEME JOINER and the variation selectors are Mn).
pub fn is_unsafe_char(c: char) -> bool {
    use unicode_general_category::GeneralCategory as G;
    match unicode_general_category::get_general_category(c) {
        G::Control
        | G::Format
        | G::LineSeparator
        | G::ParagraphSeparator
        | G::PrivateUse
        | G::Surrogate
        | G::Unassigned => true,
        G::SpaceSeparator => c != ' ',
        _ => is_default_ignorable(c),
    }
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt; the set has been stable
/// since Unicode 6.3).
fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Escapes text from the store (labels, user names, hosts) for printing to a terminal: unsafe
/// characters become `\u{..}`, and a backslash is doubled so that an escape is never ambiguous.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe_char(c) || c == '\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A `key="value"` log value: in double quotes, with quotes and backslashes escaped and unsafe
/// characters written as `\u{..}`, so that whatever a user typed, a line parses to the same
/// fields.
pub fn log_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in escape_text(text).chars() {
        if c == '"' {
            out.push_str("\\\"");
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_labels_are_kept_trimmed() {
        assert_eq!(Label::new("  Phone mail ").unwrap().as_str(), "Phone mail");
        assert_eq!(
            Label::new("Büro-Drucker 2").unwrap().as_str(),
            "Büro-Drucker 2"
        );
        assert!(Label::new(&"é".repeat(64)).is_ok());
    }

    #[test]
    fn visible_text_of_every_script_is_kept() {
        for good in [
            "Büro-Drucker",
            "携帯メール",
            "Почта",
            "\u{1F4F1} phone",
            "e\u{0301}cole",
            "quote \" and back\\slash",
        ] {
            assert!(Label::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_labels_are_refused() {
        for bad in [
            "",
            "   ",
            "a\nb",
            "bell\x07",
            "esc\x1b[31m",
            "rlo\u{202E}txt",
            "zw\u{200B}j",
            // What a hostile user slipped through before (issue 12), each from another category
            // or property: Cf, Cf, Cf, Zl, Cf, Mn+ignorable, Cf (tag), Lo+ignorable, Cf.
            "a\u{061C}b",
            "a\u{2060}b",
            "a\u{00AD}b",
            "a\u{2028}b",
            "a\u{180E}b",
            "a\u{034F}b",
            "a\u{E0041}b",
            "a\u{3164}b",
            "a\u{FFF9}b",
            // Private use, paragraph separator, unusual spaces, a variation selector.
            "a\u{E000}b",
            "a\u{2029}b",
            "a\u{00A0}b",
            "a\u{3000}b",
            "a\u{FE0F}b",
        ] {
            assert!(Label::new(bad).is_err(), "{bad:?}");
        }
        assert!(Label::new(&"x".repeat(65)).is_err());
        assert!(Label::new(&"x".repeat(10_000)).is_err());
    }

    #[test]
    fn escaping_neutralizes_terminal_tricks() {
        assert_eq!(escape_text("plain"), "plain");
        assert_eq!(escape_text("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_text("x\u{202E}y"), "x\\u{202e}y");
        assert_eq!(escape_text("x\u{3164}y"), "x\\u{3164}y");
        assert_eq!(escape_text("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn log_values_cannot_forge_fields() {
        let forged = r#"x" for user=root service=sshd rhost=203.0.113.66 id="1"#;
        assert_eq!(
            log_value(forged),
            r#""x\" for user=root service=sshd rhost=203.0.113.66 id=\"1""#
        );
        assert_eq!(log_value(r#"a\"b"#), r#""a\\\"b""#);
        assert_eq!(log_value("a\nb"), r#""a\u{a}b""#);
        assert_eq!(log_value(""), r#""""#);
    }
}
