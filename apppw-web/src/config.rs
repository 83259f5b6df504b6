//! /etc/apppw/web.conf: what the front needs to know about the site. `key = value` lines, `#`
//! comments; an unknown key or a bad value is an error that names the line. Nothing here is
//! secret: the front holds no secret of its own.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/apppw/web.conf";

/// A mail server's name and port, for the Apple profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug)]
pub struct WebConfig {
    /// The page's origin as browsers see it behind the proxy, e.g. `https://mail.example.org`:
    /// every form's Origin header must equal it.
    pub origin: String,
    /// Where to listen for HTTP from the reverse proxy when systemd hands over no socket.
    pub listen: PathBuf,
    /// The helper's session socket (`apppw-ctl web-session`).
    pub helper: PathBuf,
    /// The name shown in titles and in the Apple profile.
    pub site_name: String,
    pub imap: Option<Server>,
    pub smtp: Option<Server>,
    /// Services offered in the create form when apppw.conf allows any (allowed_services empty).
    pub services: Vec<String>,
}

impl WebConfig {
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read {}: {e}; write it as apppw-web(8) shows",
                path.display()
            )
        })?;
        WebConfig::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<WebConfig, String> {
        let mut config = WebConfig {
            origin: String::new(),
            listen: PathBuf::from("/run/apppw-web/http.sock"),
            helper: PathBuf::from("/run/apppw-web/session.sock"),
            site_name: "Mail".into(),
            imap: None,
            smtp: None,
            services: vec!["imap".into(), "pop3".into(), "smtp".into()],
        };
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |what: String| format!("line {}: {what}", number + 1);
            let (key, value) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| at(format!("{line:?} is not `key = value`")))?;
            match key {
                "origin" => config.origin = parse_origin(value).map_err(at)?,
                "listen" => config.listen = absolute(value).map_err(at)?,
                "helper" => config.helper = absolute(value).map_err(at)?,
                "site_name" => config.site_name = value.to_owned(),
                "imap" => config.imap = Some(parse_server(value).map_err(at)?),
                "smtp" => config.smtp = Some(parse_server(value).map_err(at)?),
                "services" => {
                    config.services = value.split_whitespace().map(str::to_owned).collect();
                }
                other => {
                    return Err(at(format!(
                        "unknown setting {other:?} (known: origin, listen, helper, site_name, imap, smtp, services)"
                    )));
                }
            }
        }
        if config.origin.is_empty() {
            return Err("`origin` is missing: set it to the page's address as browsers see it, e.g. origin = https://mail.example.org".into());
        }
        Ok(config)
    }

    /// The host name browsers use, from the origin (for the profile's identifiers).
    pub fn host(&self) -> &str {
        self.origin
            .strip_prefix("https://")
            .unwrap_or(&self.origin)
            .split(':')
            .next()
            .unwrap_or_default()
    }
}

fn parse_origin(value: &str) -> Result<String, String> {
    let rest = value.strip_prefix("https://").ok_or_else(|| {
        format!("origin {value:?} must start with https:// (the page is served over TLS only)")
    })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "origin {value:?} must be scheme and host (and port) only, e.g. https://mail.example.org"
        ));
    }
    Ok(value.to_ascii_lowercase())
}

fn absolute(value: &str) -> Result<PathBuf, String> {
    if value.starts_with('/') {
        Ok(PathBuf::from(value))
    } else {
        Err(format!("{value:?} must be an absolute path"))
    }
}

fn parse_server(value: &str) -> Result<Server, String> {
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| format!("{value:?} must be HOST:PORT, e.g. mail.example.org:993"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(format!("{host:?} is not a host name"));
    }
    Ok(Server {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_parses() {
        let config = WebConfig::parse(
            "# site\norigin = https://Mail.Example.org\nsite_name = Example Mail\nimap = mail.example.org:993\nsmtp = mail.example.org:465\nservices = imap smtp\n",
        )
        .unwrap();
        assert_eq!(config.origin, "https://mail.example.org");
        assert_eq!(config.host(), "mail.example.org");
        assert_eq!(config.imap.unwrap().port, 993);
        assert_eq!(config.services, ["imap", "smtp"]);
    }

    #[test]
    fn bad_lines_name_what_is_wrong() {
        for (text, says) in [
            ("", "`origin` is missing"),
            ("origin = http://x", "https://"),
            ("origin = https://x/path", "scheme and host"),
            ("origin = https://x\nimap = x", "HOST:PORT"),
            ("origin = https://x\nlisten = run/x", "absolute"),
            (
                "origin = https://x\ncolour = red",
                "line 2: unknown setting",
            ),
        ] {
            let error = WebConfig::parse(text).unwrap_err();
            assert!(error.contains(says), "{text:?}: {error}");
        }
    }
}
