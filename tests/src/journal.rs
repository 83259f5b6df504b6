//! Syslog datagrams as systemd-journald stores them, in a real journal file. Hosts without a
//! syslog daemon (Debian 12 and 13 install none) keep pam_syslog's lines only in the journal, and
//! fail2ban's systemd backend reads them from there. Each datagram received on /dev/log
//! ([`crate::syslog::Datagram`]) becomes the entry journald 252 makes of it
//! (`server_process_syslog_message` in journald-syslog.c: the same parsing, the same fields),
//! written in the journal export format and turned into a .journal file by
//! systemd-journal-remote, so that journalctl and fail2ban read what a Debian host would hold.
//!
//! Left out: what journald reads from /proc about the sender (`_COMM`, `_EXE`, `_CMDLINE`,
//! cgroup and unit fields; the sender has exited by now) and `_MACHINE_ID`. fail2ban's
//! `formatJournalEntry` reads none of them.
#![forbid(unsafe_code)]

use std::path::Path;
use std::process::Command;

use crate::syslog::Datagram;
use crate::{require, run_with_stdin, stderr};

const JOURNAL_REMOTE: &str = "/usr/lib/systemd/systemd-journal-remote";

/// The characters journald's `WHITESPACE` holds.
const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

/// What journald makes of a datagram's text: the syslog fields of its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogFields {
    /// `PRIORITY=`: the severity, 0 to 7.
    pub priority: u32,
    /// `SYSLOG_FACILITY=`, absent when the datagram gave facility 0 (kern).
    pub facility: Option<u32>,
    /// `SYSLOG_TIMESTAMP=`: the `Mmm dd hh:mm:ss ` the sender wrote, trailing space included.
    pub timestamp: Option<String>,
    /// `SYSLOG_IDENTIFIER=` and `SYSLOG_PID=`: from `ident[pid]:`.
    pub identifier: Option<String>,
    pub pid: Option<String>,
    /// `MESSAGE=`.
    pub message: String,
    /// `SYSLOG_RAW=`: the whole datagram, kept when white space was stripped from its ends or
    /// no timestamp was found.
    pub raw: Option<String>,
}

impl SyslogFields {
    /// Parses a datagram as journald does: strips white space from both ends, then reads an
    /// optional `<PRI>`, an optional RFC 3164 timestamp, and an optional `ident[pid]:` word.
    pub fn parse(datagram: &str) -> SyslogFields {
        let stripped = datagram.trim_matches(WHITESPACE);
        let mut raw = (stripped.len() != datagram.len()).then(|| datagram.to_owned());
        let (pri, rest) = split_priority(stripped);
        let (timestamp, rest) = split_timestamp(rest);
        if timestamp.is_none() {
            raw = Some(datagram.to_owned());
        }
        let (identifier, pid, message) = split_identifier(rest);
        // Without a <PRI>, journald assumes LOG_USER | LOG_INFO.
        let pri = pri.unwrap_or(8 + 6);
        SyslogFields {
            priority: pri & 7,
            facility: (pri >> 3 != 0).then_some(pri >> 3),
            timestamp: timestamp.map(str::to_owned),
            identifier: identifier.map(str::to_owned),
            pid: pid.map(str::to_owned),
            message: message.to_owned(),
            raw,
        }
    }
}

/// `<N>`, `<NN>` or `<NNN>` at the start: the priority and what follows. Anything else is left
/// in place, as journald leaves it.
fn split_priority(text: &str) -> (Option<u32>, &str) {
    let Some(rest) = text.strip_prefix('<') else {
        return (None, text);
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match rest[digits..].strip_prefix('>') {
        Some(after) if (1..=3).contains(&digits) => {
            (Some(rest[..digits].parse().expect("digits")), after)
        }
        _ => (None, text),
    }
}

/// `Mmm dd hh:mm:ss ` at the start, the shape journald's `syslog_skip_timestamp` accepts (a day
/// or time digit may be a space), and what follows.
fn split_timestamp(text: &str) -> (Option<&str>, &str) {
    const SHAPE: &[u8; 16] = b"AAA _9 _9:_9:_9 ";
    let bytes = text.as_bytes();
    if bytes.len() < SHAPE.len() {
        return (None, text);
    }
    let fits = SHAPE.iter().zip(bytes).all(|(shape, &b)| match shape {
        b'A' => b.is_ascii_alphabetic(),
        b'9' => b.is_ascii_digit(),
        b'_' => b == b' ' || b.is_ascii_digit(),
        literal => b == *literal,
    });
    if fits {
        (Some(&text[..SHAPE.len()]), &text[SHAPE.len()..])
    } else {
        (None, text)
    }
}

/// journald's `syslog_parse_identifier`: after leading white space, the first word, if it ends
/// with `:`, is `ident` or `ident[pid]`; one white space character after it is skipped.
fn split_identifier(text: &str) -> (Option<&str>, Option<&str>, &str) {
    let start = text.trim_start_matches(WHITESPACE);
    let word_len = start.find(WHITESPACE).unwrap_or(start.len());
    let Some(tag) = start[..word_len].strip_suffix(':') else {
        return (None, None, text);
    };
    let mut message = &start[word_len..];
    if let Some(c) = message.chars().next().filter(|c| WHITESPACE.contains(c)) {
        message = &message[c.len_utf8()..];
    }
    let (identifier, pid) = match tag.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((identifier, pid)) => (identifier, Some(pid)),
        None => (tag, None),
    };
    (Some(identifier), pid, message)
}

/// The fields of the entry journald writes for `datagram`, received on host `hostname` during
/// boot `boot_id`, in the order journald 252 writes them.
pub fn entry(datagram: &Datagram, hostname: &str, boot_id: &str) -> Vec<(&'static str, String)> {
    let syslog = SyslogFields::parse(&datagram.text);
    let mut fields = vec![
        ("__REALTIME_TIMESTAMP", datagram.received_usec.to_string()),
        (
            "__MONOTONIC_TIMESTAMP",
            datagram.received_monotonic_usec.to_string(),
        ),
        ("_BOOT_ID", boot_id.to_owned()),
        ("_TRANSPORT", "syslog".to_owned()),
        ("PRIORITY", syslog.priority.to_string()),
    ];
    let optional = [
        ("SYSLOG_FACILITY", syslog.facility.map(|f| f.to_string())),
        ("SYSLOG_IDENTIFIER", syslog.identifier),
        ("SYSLOG_PID", syslog.pid),
        ("SYSLOG_TIMESTAMP", syslog.timestamp),
        ("MESSAGE", Some(syslog.message)),
        ("SYSLOG_RAW", syslog.raw),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
    fields.extend([
        ("_PID", datagram.pid.to_string()),
        ("_UID", datagram.uid.to_string()),
        ("_GID", datagram.gid.to_string()),
        ("_HOSTNAME", hostname.to_owned()),
        ("_SOURCE_REALTIME_TIMESTAMP", datagram.sent_usec.to_string()),
    ]);
    fields
}

/// This boot's id as journald writes it: /proc/sys/kernel/random/boot_id without dashes.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .expect("read /proc/sys/kernel/random/boot_id")
        .trim()
        .replace('-', "")
}

/// `entries` in the journal export format: `NAME=value` lines, or for a value with a newline
/// `NAME`, a newline, its length as a little-endian 64-bit number and the bytes; an empty line
/// after each entry.
pub fn export_format(entries: &[Vec<(&str, String)>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        for (name, value) in entry {
            out.extend_from_slice(name.as_bytes());
            if value.contains('\n') {
                out.push(b'\n');
                out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            } else {
                out.push(b'=');
            }
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

/// Writes `entries` into the new journal file `path` (its name must end in `.journal`) with
/// systemd-journal-remote. Fails the test unless it wrote every entry: it skips an entry it finds
/// invalid and still exits 0.
pub fn write_journal(path: &Path, entries: &[Vec<(&str, String)>]) {
    require(
        Path::new(JOURNAL_REMOTE).exists(),
        JOURNAL_REMOTE,
        "scripts/packages.sh installs it (Debian: systemd-journal-remote)",
    );
    let mut cmd = Command::new(JOURNAL_REMOTE);
    cmd.arg("--output").arg(path).arg("-");
    let out = run_with_stdin(cmd, &export_format(entries));
    let said = stderr(&out);
    assert!(out.status.success(), "{JOURNAL_REMOTE}: {said}");
    let wrote = format!("Finishing after writing {} entries", entries.len());
    assert!(
        said.lines().any(|l| l == wrote),
        "{JOURNAL_REMOTE} did not write all {} entries: {said}",
        entries.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glibc_datagram_splits_as_journald_splits_it() {
        let f = SyslogFields::parse(
            "<85>Nov  7 02:14:05 pam-client: pam_apppw(imap:auth): authentication failure; rhost=192.0.2.7",
        );
        assert_eq!(
            f,
            SyslogFields {
                priority: 5,
                facility: Some(10),
                timestamp: Some("Nov  7 02:14:05 ".into()),
                identifier: Some("pam-client".into()),
                pid: None,
                message: "pam_apppw(imap:auth): authentication failure; rhost=192.0.2.7".into(),
                raw: None,
            }
        );
    }

    #[test]
    fn a_pid_is_split_from_the_identifier_and_one_space_only_is_skipped() {
        let f = SyslogFields::parse("<86>Nov 27 02:17:21 apppw-ctl[42]:  two spaces");
        assert_eq!(f.identifier.as_deref(), Some("apppw-ctl"));
        assert_eq!(f.pid.as_deref(), Some("42"));
        assert_eq!(f.message, " two spaces");
        assert_eq!((f.priority, f.facility), (6, Some(10)));
    }

    #[test]
    fn a_first_word_without_a_colon_is_message() {
        let f = SyslogFields::parse("<13>Nov 27 02:17:21 no identifier here");
        assert_eq!((f.identifier, f.pid), (None, None));
        assert_eq!(f.message, "no identifier here");
        assert_eq!((f.priority, f.facility), (5, Some(1)));
    }

    #[test]
    fn stripped_ends_or_a_missing_timestamp_keep_the_raw_datagram() {
        let f = SyslogFields::parse("<85>Nov 27 02:17:21 sshd: trailing \n");
        assert_eq!(f.message, "trailing");
        assert_eq!(
            f.raw.as_deref(),
            Some("<85>Nov 27 02:17:21 sshd: trailing \n")
        );
        let f = SyslogFields::parse("<85>sshd: no time");
        assert_eq!(f.timestamp, None);
        assert_eq!(f.identifier.as_deref(), Some("sshd"));
        assert_eq!(f.raw.as_deref(), Some("<85>sshd: no time"));
    }

    #[test]
    fn without_a_priority_journald_assumes_user_info_and_kern_has_no_facility_field() {
        let f = SyslogFields::parse("Nov 27 02:17:21 x: y");
        assert_eq!((f.priority, f.facility), (6, Some(1)));
        let f = SyslogFields::parse("<4>Nov 27 02:17:21 x: y");
        assert_eq!((f.priority, f.facility), (4, None));
        let f = SyslogFields::parse("<1234>Nov 27 02:17:21 x: y");
        assert_eq!(f.message, "<1234>Nov 27 02:17:21 x: y");
    }

    #[test]
    fn the_export_format_writes_a_value_with_a_newline_in_binary() {
        let entries = vec![
            vec![("MESSAGE", "one".to_owned())],
            vec![("MESSAGE", "a\nb".to_owned())],
        ];
        let mut expected = b"MESSAGE=one\n\nMESSAGE\n".to_vec();
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.extend_from_slice(b"a\nb\n\n");
        assert_eq!(export_format(&entries), expected);
    }
}
