//! Where a change comes from, for the event trail: the caller's controlling terminal as the kernel
//! reports it (/proc/self/stat), and the remote host that sshd or login recorded for that terminal
//! in utmp. Neither comes from the environment (SSH_CONNECTION, SSH_TTY), which the caller writes.
#![forbid(unsafe_code)]

/// utmp's record layout on Linux/glibc (64-bit and 32-bit alike): `ut_type` at 0, `ut_line` at
/// 8 (32 bytes), `ut_host` at 76 (256 bytes), 384 bytes in all.
const UTMP_RECORD: usize = 384;
const UT_LINE: std::ops::Range<usize> = 8..40;
const UT_HOST: std::ops::Range<usize> = 76..332;
const USER_PROCESS: i16 = 7;
const UTMP_PATH: &str = "/run/utmp";

/// `pts/3 from 203.0.113.5`, `pts/3`, or `no terminal`.
pub fn describe() -> String {
    let Some(tty) = controlling_terminal() else {
        return "no terminal".into();
    };
    match std::fs::read(UTMP_PATH)
        .ok()
        .and_then(|utmp| remote_host(&utmp, &tty))
    {
        Some(host) => format!("{tty} from {host}"),
        None => tty,
    }
}

/// The controlling terminal's name under /dev, from field 7 (tty_nr) of /proc/self/stat.
fn controlling_terminal() -> Option<String> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses; the fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let tty_nr: u32 = fields.get(4)?.parse().ok()?;
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => format!("tty {major}:{minor}"),
    })
}

/// The host of the logged-in session on `line`, when one was recorded.
fn remote_host(utmp: &[u8], line: &str) -> Option<String> {
    utmp.chunks_exact(UTMP_RECORD)
        .filter(|r| i16::from_ne_bytes([r[0], r[1]]) == USER_PROCESS)
        .filter(|r| c_string(&r[UT_LINE]) == line.as_bytes())
        .map(|r| String::from_utf8_lossy(c_string(&r[UT_HOST])).into_owned())
        .rfind(|host| !host.is_empty())
}

fn c_string(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: i16, line: &str, host: &str) -> Vec<u8> {
        let mut r = vec![0u8; UTMP_RECORD];
        r[0..2].copy_from_slice(&kind.to_ne_bytes());
        r[UT_LINE.start..UT_LINE.start + line.len()].copy_from_slice(line.as_bytes());
        r[UT_HOST.start..UT_HOST.start + host.len()].copy_from_slice(host.as_bytes());
        r
    }

    #[test]
    fn the_host_recorded_for_the_terminal_is_found() {
        let mut utmp = record(USER_PROCESS, "pts/1", "198.51.100.1");
        utmp.extend(record(8, "pts/3", "192.0.2.9"));
        utmp.extend(record(USER_PROCESS, "pts/3", "203.0.113.5"));
        assert_eq!(remote_host(&utmp, "pts/3").as_deref(), Some("203.0.113.5"));
        assert_eq!(remote_host(&utmp, "pts/2"), None);
        assert_eq!(remote_host(&utmp[..100], "pts/1"), None);
    }
}
