//! Labels name an app password for its owner ("Phone mail"). They are user text: validated on the
//! way in, escaped on the way out.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

use crate::error::Error;

/// Most characters a label may have.
pub const MAX_LABEL_CHARS: usize = 64;

/// A validated label: 1 to 64 characters after trimming outer white space, none of them a control
/// character or an invisible direction/formatting mark that could disguise what a terminal shows.
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
                "control characters and invisible formatting marks are not allowed",
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

/// Characters that must never reach a terminal raw: C0/C1 controls (escape sequences start there),
/// and the zero-width and bidirectional formatting marks (U+200B..U+200F, U+202A..U+202E,
/// U+2066..U+2069, U+FEFF) that can make text display as something it is not.
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Escapes text from the store (labels, user names, hosts) for printing to a terminal or a log:
/// unsafe characters become `\u{..}`, and so does the backslash's meaning stay unambiguous.
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
    fn bad_labels_are_refused() {
        for bad in [
            "",
            "   ",
            "a\nb",
            "bell\x07",
            "esc\x1b[31m",
            "rlo\u{202E}txt",
            "zw\u{200B}j",
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
        assert_eq!(escape_text("back\\slash"), "back\\\\slash");
    }
}
