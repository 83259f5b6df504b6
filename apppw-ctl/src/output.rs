//! Everything apppw-ctl prints to stdout goes through here: text for people, JSON for scripts
//! (`--json`). User text is escaped before it reaches a terminal, and a closed pipe (`| head`) is
//! not an error.
#![forbid(unsafe_code)]

use std::io::{ErrorKind, Write};

use apppw_core::{CodeInfo, escape_text, timefmt};
use serde::Serialize;

use crate::error::CtlError;

pub struct Output {
    json: bool,
}

/// A code as `--json` shows it: times in RFC 3339 (UTC).
#[derive(Serialize)]
pub struct CodeView<'a> {
    pub id: i64,
    pub user: &'a str,
    pub label: &'a str,
    pub created: String,
    pub revoked: Option<String>,
    pub last_used: Option<LastUseView<'a>>,
    pub use_count: i64,
    pub created_by: Option<&'a str>,
    pub revoked_by: Option<&'a str>,
    /// PAM services it works for; empty: any.
    pub services: &'a [String],
    /// Networks it works from; empty: any.
    pub networks: Vec<String>,
    pub expires: Option<String>,
}

#[derive(Serialize)]
pub struct LastUseView<'a> {
    pub time: String,
    pub service: Option<&'a str>,
    pub rhost: Option<&'a str>,
}

impl<'a> From<&'a CodeInfo> for CodeView<'a> {
    fn from(code: &'a CodeInfo) -> Self {
        CodeView {
            id: code.id,
            user: &code.user,
            label: &code.label,
            created: timefmt::rfc3339(code.created),
            revoked: code.revoked.map(timefmt::rfc3339),
            last_used: code.last_used.as_ref().map(|u| LastUseView {
                time: timefmt::rfc3339(u.time),
                service: u.service.as_deref(),
                rhost: u.rhost.as_deref(),
            }),
            use_count: code.use_count,
            created_by: code.created_by.as_deref(),
            revoked_by: code.revoked_by.as_deref(),
            services: &code.scope.services,
            networks: code
                .scope
                .networks
                .iter()
                .map(ToString::to_string)
                .collect(),
            expires: code.scope.expires.map(timefmt::rfc3339),
        }
    }
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints `text` as is: callers escape user text with [`quote`].
    pub fn text(&self, text: &str) -> Result<(), CtlError> {
        write_stdout(text.as_bytes())
    }

    pub fn value<T: Serialize>(&self, value: &T) -> Result<(), CtlError> {
        // serde_json escapes control characters itself; the output is one line.
        let mut line =
            serde_json::to_string(value).map_err(|e| CtlError::Output(std::io::Error::other(e)))?;
        line.push('\n');
        write_stdout(line.as_bytes())
    }
}

/// User text in double quotes, escaped for the terminal.
pub fn quote(text: &str) -> String {
    format!("\"{}\"", escape_text(text).replace('"', "\\\""))
}

/// One line of the `list` table (also used by `revoke`'s report).
pub fn describe_last_use(code: &CodeInfo) -> String {
    match &code.last_used {
        None => "never".into(),
        Some(u) => {
            let mut s = timefmt::human(u.time);
            if let Some(service) = &u.service {
                s.push_str(&format!(" via {}", escape_text(service)));
            }
            if let Some(rhost) = &u.rhost {
                s.push_str(&format!(" from {}", escape_text(rhost)));
            }
            s
        }
    }
}

/// Lays out a text table: columns padded to their widest cell (counted in characters), those in
/// `right` aligned right, the last column left unpadded. Cells must already be escaped.
pub fn table(headers: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i + 1 == row.len() {
                line.push_str(cell);
            } else if right.contains(&i) {
                line.push_str(&format!("{}{cell}  ", " ".repeat(pad)));
            } else {
                line.push_str(&format!("{cell}{}  ", " ".repeat(pad)));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn write_stdout(bytes: &[u8]) -> Result<(), CtlError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CtlError::Output),
    }
}
