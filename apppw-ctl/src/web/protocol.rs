//! The line protocol between apppw-web (the front, which faces the network) and the root helper
//! of one signed-in session (`apppw-ctl web-session`). Each message is one line of JSON of at
//! most `MAX_LINE` bytes on the session's socket. The front speaks first, with `sign_in`; the
//! helper answers each message with one reply, after any number of `prompt`s that the front
//! answers with `answer`. docs/WEB.md shows an exchange.
#![forbid(unsafe_code)]

use std::io::{BufRead, Read};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::CtlError;

/// Longest line either side may send, newline included.
pub const MAX_LINE: usize = 64 * 1024;

/// A password or a PAM answer: wiped from memory when dropped. (serde_json may copy a string
/// that holds escapes through a scratch buffer of its own first; the front sends none.)
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.as_bytes().to_vec())
    }
}

/// What the front asks.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The first message, and only the first: who, with which password, from which address.
    SignIn {
        user: String,
        password: Secret,
        /// The browser's address as the reverse proxy saw it: for PAM_RHOST and the log.
        address: String,
    },
    /// The answer to the last `prompt`.
    Answer(Secret),
    /// Confirm the password again (before minting in an older session, before revoking all).
    Confirm(Secret),
    /// Run an apppw-ctl command for the signed-in user: its words as on a command line, e.g.
    /// `["rename", "3", "Phone"]` (new, list, rename, edit and revoke only).
    Run(Vec<String>),
}

/// What the helper answers.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<'a> {
    /// PAM asks something more (a second factor): show `text`, send the answer. `messages` are
    /// what PAM said since the last reply.
    Prompt {
        text: &'a str,
        echo: bool,
        messages: &'a [String],
    },
    /// Signed in as `user`; `services` are the site's allowed services (empty: any).
    SignedIn {
        user: &'a str,
        services: &'a [String],
        messages: &'a [String],
    },
    /// The password was confirmed.
    Confirmed { messages: &'a [String] },
    /// The sign-in (the helper then exits) or the confirmation was refused.
    Refused {
        message: &'a str,
        messages: &'a [String],
    },
    /// A command failed; `confirm_again` says the password must be confirmed first.
    Failed {
        message: &'a str,
        confirm_again: bool,
    },
}

/// The reply to a command that succeeded: the command's `--json` document (or null) and the notes
/// apppw-ctl would have printed on stderr. Written by the command's process itself
/// (`Output::flush`), so that a new code counts as shown only once it is on the socket.
pub fn done_line(document: &[u8], notes: &[String]) -> Vec<u8> {
    let document = document.trim_ascii();
    let mut line = b"{\"done\":{\"output\":".to_vec();
    line.extend_from_slice(if document.is_empty() {
        b"null"
    } else {
        document
    });
    line.extend_from_slice(b",\"notes\":");
    // A list of strings always serializes.
    line.extend_from_slice(&serde_json::to_vec(notes).unwrap_or_else(|_| b"[]".to_vec()));
    line.extend_from_slice(b"}}\n");
    line
}

/// One reply as its line.
pub fn reply_line(reply: &Reply<'_>) -> Vec<u8> {
    let mut line = serde_json::to_vec(reply).unwrap_or_else(|_| {
        br#"{"failed":{"message":"the reply could not be written","confirm_again":false}}"#.to_vec()
    });
    line.push(b'\n');
    line
}

/// Reads the next request: `None` at the end of the stream (the front closed the session).
/// The line is wiped once parsed: it may hold a password.
pub fn read_request(input: &mut impl BufRead) -> Result<Option<Request>, CtlError> {
    let mut line = Zeroizing::new(Vec::new());
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX);
    match input.by_ref().take(limit).read_until(b'\n', &mut line) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(protocol("the front sent nothing in time"));
        }
        Err(e) => return Err(protocol(&format!("reading from the front failed: {e}"))),
    }
    if line.last() != Some(&b'\n') {
        return Err(protocol(&format!(
            "a message was longer than {MAX_LINE} bytes or cut off"
        )));
    }
    // serde's message may quote the value it did not expect, which may be a password: only
    // where it stopped is said.
    serde_json::from_slice(&line).map(Some).map_err(|e| {
        protocol(&format!(
            "a message did not parse (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

fn protocol(what: &str) -> CtlError {
    CtlError::WebSession(format!("session ended: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_unknown_fields_are_refused() {
        let mut input: &[u8] = b"{\"sign_in\":{\"user\":\"alice\",\"password\":\"pw\",\"address\":\"192.0.2.1\"}}\n{\"run\":[\"list\"]}\n";
        let Some(Request::SignIn { user, password, .. }) = read_request(&mut input).unwrap() else {
            panic!("not a sign-in");
        };
        assert_eq!(
            (user.as_str(), password.bytes().as_slice()),
            ("alice", &b"pw"[..])
        );
        assert!(
            matches!(read_request(&mut input).unwrap(), Some(Request::Run(words)) if words == ["list"])
        );
        assert!(read_request(&mut input).unwrap().is_none());
        let mut extra: &[u8] = b"{\"run\":[\"list\"],\"as\":\"root\"}\n";
        assert!(read_request(&mut extra).is_err());
    }

    #[test]
    fn an_overlong_or_unterminated_line_is_refused() {
        let mut long = vec![b' '; MAX_LINE];
        long.push(b'\n');
        assert!(read_request(&mut long.as_slice()).is_err());
        let mut cut: &[u8] = b"{\"run\":[\"list\"]}";
        assert!(read_request(&mut cut).is_err());
    }

    #[test]
    fn a_done_line_carries_the_document_and_the_notes() {
        let line = done_line(b"[{\"id\":1}]\n", &["warning: \"x\"".into()]);
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(value["done"]["output"][0]["id"], 1);
        assert_eq!(value["done"]["notes"][0], "warning: \"x\"");
        let empty: serde_json::Value = serde_json::from_slice(&done_line(b"", &[])).unwrap();
        assert!(empty["done"]["output"].is_null());
    }
}
