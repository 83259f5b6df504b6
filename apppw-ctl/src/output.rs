//! Everything apppw-ctl prints to stdout goes through here: text for people, JSON for scripts
//! (`--json`). Commands only fill a buffer; `main` writes it out after the command has returned
//! and closed the store, so a terminal on hold (Ctrl-S) or a pipe nobody reads can never keep
//! the store open. User text is escaped before it reaches a terminal, and a closed pipe
//! (`| head`) is not an error, except when the output holds a new code nobody has seen.
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use apppw_core::store::UseEntry;
use apppw_core::{CodeInfo, Event, escape_text, timefmt};
use serde::Serialize;
use unicode_width::UnicodeWidthStr;

use crate::error::CtlError;

pub struct Output {
    json: bool,
    /// A web session's child (`web::act`): the JSON document and the notes go out as one line
    /// of the helper's protocol on the session's socket, not to a terminal.
    web: bool,
    buffer: RefCell<Vec<u8>>,
    /// The id of a code whose only showing is in the buffer (`new`): if writing fails, `main`
    /// withdraws it.
    unseen_code: Cell<Option<i64>>,
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
    /// The host whose PAM module saw it (its node name).
    pub host: Option<&'a str>,
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
                host: u.host.as_deref(),
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
        Output {
            json,
            web: false,
            buffer: RefCell::new(Vec::new()),
            unseen_code: Cell::new(None),
        }
    }

    /// For a web session's child: JSON, framed for the helper's protocol (`web::protocol`).
    pub fn for_web() -> Output {
        Output {
            web: true,
            ..Output::new(true)
        }
    }

    /// Marks the buffer as holding the only showing of code `id`.
    pub fn holds_new_code(&self, id: i64) {
        self.unseen_code.set(Some(id));
    }

    /// Writes `notes` (things to tell the caller) and then the buffer: notes on stderr and the
    /// buffer on stdout, or for the web both in one line of the helper's protocol on stdout.
    /// `Err` carries the id of a new code that was not shown, if any.
    pub fn flush(&self, notes: &[String]) -> Result<(), (std::io::Error, Option<i64>)> {
        let mut bytes = std::mem::take(&mut *self.buffer.borrow_mut());
        if self.web {
            bytes = crate::web::protocol::done_line(&bytes, notes);
        } else {
            for note in notes {
                crate::hooks::tell(note);
            }
        }
        match write_within(&std::io::stdout(), &bytes) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::BrokenPipe && self.unseen_code.get().is_none() => {
                Ok(())
            }
            Err(e) => Err((e, self.unseen_code.get())),
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints `text` as is: callers escape user text with [`quote`]. (Never fails, but has the
    /// shape of `value`, which can, so commands treat every output alike.)
    #[allow(clippy::unnecessary_wraps)]
    pub fn text(&self, text: &str) -> Result<(), CtlError> {
        self.buffer.borrow_mut().extend_from_slice(text.as_bytes());
        Ok(())
    }

    /// Starts a JSON array to be filled with [`JsonList::push`] and closed with
    /// [`JsonList::finish`]. (A command that fails meanwhile prints nothing: `main` writes the
    /// buffer only after success.)
    pub fn json_list(&self) -> JsonList<'_> {
        self.buffer.borrow_mut().push(b'[');
        JsonList {
            out: self,
            empty: true,
        }
    }

    pub fn value<T: Serialize>(&self, value: &T) -> Result<(), CtlError> {
        // serde_json escapes control characters itself; the output is one line. Serialized
        // straight into the buffer: an audit of a million codes is some 200 MB of JSON, and
        // every copy of it (to a String, then into the buffer) cost a second in page faults.
        let mut buffer = self.buffer.borrow_mut();
        let start = buffer.len();
        if let Err(e) = serde_json::to_writer(&mut *buffer, value) {
            buffer.truncate(start);
            return Err(CtlError::Output(std::io::Error::other(e)));
        }
        buffer.push(b'\n');
        Ok(())
    }
}

/// A JSON array written into the output one element at a time ([`Output::json_list`]): the
/// same bytes `value` would write for the whole array, without holding every element first.
pub struct JsonList<'a> {
    out: &'a Output,
    empty: bool,
}

impl JsonList<'_> {
    pub fn push<T: Serialize>(&mut self, item: &T) -> Result<(), CtlError> {
        let mut buffer = self.out.buffer.borrow_mut();
        if !self.empty {
            buffer.push(b',');
        }
        self.empty = false;
        serde_json::to_writer(&mut *buffer, item)
            .map_err(|e| CtlError::Output(std::io::Error::other(e)))
    }

    /// Closes the array and its line.
    pub fn finish(self) {
        self.out.buffer.borrow_mut().extend_from_slice(b"]\n");
    }
}

/// Where a code was used: one (service, remote host, host) triple, as `--json` shows it.
#[derive(Serialize)]
pub struct UseView<'a> {
    pub service: &'a str,
    pub rhost: &'a str,
    /// The host that saw it; empty: not recorded.
    pub host: &'a str,
    pub first: String,
    pub last: String,
    pub count: i64,
}

impl<'a> From<&'a UseEntry> for UseView<'a> {
    fn from(entry: &'a UseEntry) -> Self {
        UseView {
            service: &entry.service,
            rhost: &entry.rhost,
            host: &entry.host,
            first: timefmt::rfc3339(entry.first),
            last: timefmt::rfc3339(entry.last),
            count: entry.count,
        }
    }
}

/// A code's recent uses as a table, most recent first, or a line saying there are none.
pub fn uses_table(uses: &[UseEntry]) -> String {
    if uses.is_empty() {
        return "    no recorded use\n".into();
    }
    let shown = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            escape_text(text).into_owned()
        }
    };
    let rows: Vec<Vec<String>> = uses
        .iter()
        .map(|u| {
            vec![
                timefmt::human(u.last),
                timefmt::human(u.first),
                u.count.to_string(),
                shown(&u.service),
                shown(&u.rhost),
                shown(&u.host),
            ]
        })
        .collect();
    let mut indented = String::new();
    for line in table(
        &["LAST", "FIRST", "USES", "SERVICE", "FROM", "SEEN BY"],
        &rows,
        &[2],
    )
    .lines()
    {
        indented.push_str("    ");
        indented.push_str(line);
        indented.push('\n');
    }
    indented
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
            if let Some(host) = &u.host {
                s.push_str(&format!(" on {}", escape_text(host)));
            }
            s
        }
    }
}

/// Lays out a text table: columns padded to their widest cell, those in `right` aligned right,
/// the last column left unpadded. Cells must already be escaped.
///
/// Widths are display widths (`unicode_width`: a CJK character or an emoji takes two terminal
/// cells), not characters, so that columns line up on a terminal. The headers are ASCII: their
/// length in bytes is their width.
pub fn table(headers: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].width())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(ToString::to_string).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.width());
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

/// An event as `--json` shows it.
#[derive(Serialize)]
pub struct EventView<'a> {
    pub id: i64,
    pub time: String,
    pub actor_uid: u32,
    pub actor: &'a str,
    pub origin: &'a str,
    pub user: Option<&'a str>,
    pub action: &'a str,
    pub code_id: Option<i64>,
    pub label: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl<'a> From<&'a Event> for EventView<'a> {
    fn from(e: &'a Event) -> Self {
        EventView {
            id: e.id,
            time: timefmt::rfc3339(e.time),
            actor_uid: e.actor_uid,
            actor: &e.actor,
            origin: &e.origin,
            user: e.user.as_deref(),
            action: &e.action,
            code_id: e.code_id,
            label: e.label.as_deref(),
            detail: e.detail.as_deref(),
        }
    }
}

/// Prints the event trail, as JSON or as a table (`list --events`, `audit --events`).
pub fn show_events(out: &Output, events: &[Event], with_user: bool) -> Result<(), CtlError> {
    if out.json() {
        let views: Vec<EventView<'_>> = events.iter().map(EventView::from).collect();
        return out.value(&views);
    }
    if events.is_empty() {
        return out.text("No changes are recorded.\n");
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let mut row = vec![timefmt::human(e.time)];
            if with_user {
                row.push(escape_text(e.user.as_deref().unwrap_or("-")).into_owned());
            }
            row.extend([
                e.action.clone(),
                e.code_id.map_or("-".into(), |id| id.to_string()),
                e.label.as_deref().map_or("-".into(), quote),
                format!("{} (uid {})", escape_text(&e.actor), e.actor_uid),
                escape_text(&e.origin).into_owned(),
                escape_text(e.detail.as_deref().unwrap_or("")).into_owned(),
            ]);
            row
        })
        .collect();
    let mut headers = vec!["TIME"];
    if with_user {
        headers.push("USER");
    }
    headers.extend(["ACTION", "ID", "LABEL", "BY", "FROM", "DETAIL"]);
    out.text(&table(&headers, &rows, &[]))
}

/// How long apppw-ctl waits for a caller's terminal or pipe to take its output. By then it runs
/// as the apppw account, which the caller cannot kill: a pipe nobody reads or a terminal held
/// with Ctrl-S must not keep it alive for ever.
const OUTPUT_DEADLINE: Duration = Duration::from_secs(60);

/// Writes `bytes` to `fd` in pieces that fit once `poll` says there is room, giving up after
/// [`OUTPUT_DEADLINE`].
pub fn write_within(fd: &impl AsFd, bytes: &[u8]) -> std::io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let piece = piece_that_fits(fd);
    let deadline = Instant::now() + OUTPUT_DEADLINE;
    let mut rest = bytes;
    while !rest.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) if left.is_zero() => {
                return Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    "nothing took the output for 60 seconds",
                ));
            }
            Ok(0) | Err(nix::Error::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        match nix::unistd::write(fd, &rest[..rest.len().min(piece)]) {
            Ok(written) => rest = &rest[written..],
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The most `fd` surely takes in one write, without blocking, once `poll` says there is room:
/// a pipe PIPE_BUF (4096) bytes; a regular file or /dev/null anything (64 KiB at a time); a
/// terminal, a socket, or what cannot be told, 512. Pieces that small made a million-code
/// `audit --json` spend a second in system calls through a pipe. Not 4096 for a socket: with
/// the smallest send buffer a caller can set, a socket reports room for less than that, and the
/// write would wait, past the deadline, for a reader that never comes.
fn piece_that_fits(fd: &impl AsFd) -> usize {
    use nix::sys::stat::{SFlag, fstat};
    use std::os::fd::AsRawFd;
    const SMALL: usize = 512;
    let raw = fd.as_fd().as_raw_fd();
    let Ok(stat) = fstat(raw) else {
        return SMALL;
    };
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFIFO {
        4096
    } else if kind == SFlag::S_IFREG
        || (kind == SFlag::S_IFCHR && !nix::unistd::isatty(raw).unwrap_or(true))
    {
        64 * 1024
    } else {
        SMALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_by_display_width() {
        let rows = vec![
            vec!["1".to_string(), "手机".to_string(), "x".to_string()],
            vec!["2".to_string(), "Phone 📱".to_string(), "y".to_string()],
            vec!["3".to_string(), "Laptop".to_string(), "z".to_string()],
        ];
        let text = table(&["ID", "LABEL", "LAST"], &rows, &[0]);
        let columns: Vec<usize> = text
            .lines()
            .map(|line| {
                let last = line.rfind(' ').unwrap() + 1;
                line[..last].width()
            })
            .collect();
        assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}
