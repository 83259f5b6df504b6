//! The pages, as askama templates (apppw-web/templates/), and how a code from the helper's
//! `list --json` is shown. Every value is escaped by askama; nothing here talks to anyone.
#![forbid(unsafe_code)]

use askama::Template;
use serde_json::Value;

/// What every page has around its content.
pub struct Frame {
    pub site: String,
    pub title: String,
    /// The signed-in user (shows the sign-out form).
    pub user: Option<String>,
    pub token: String,
    /// What PAM or apppw-ctl said along the way.
    pub messages: Vec<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub frame: Frame,
    pub user: String,
}

#[derive(Template)]
#[template(path = "step.html")]
pub struct StepPage {
    pub frame: Frame,
    pub prompt: String,
    pub echo: bool,
}

#[derive(Template)]
#[template(path = "list.html")]
pub struct ListPage {
    pub frame: Frame,
    pub codes: Vec<CodeRow>,
}

pub struct ServiceOption {
    pub name: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "form.html")]
pub struct FormPage {
    pub frame: Frame,
    pub action: &'static str,
    pub id: Option<i64>,
    pub label: String,
    pub services: Vec<ServiceOption>,
    pub networks: String,
    pub expires: String,
    pub expires_shown: String,
    pub expiry_default: &'static str,
    pub ask_password: bool,
    pub submit: &'static str,
}

#[derive(Template)]
#[template(path = "code.html")]
pub struct CodePage {
    pub frame: Frame,
    pub label: String,
    pub code: String,
    pub groups: Vec<String>,
    pub profile: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub frame: Frame,
    pub text: String,
    pub link: &'static str,
    pub link_text: &'static str,
}

/// One code as the list shows it.
pub struct CodeRow {
    pub id: i64,
    pub label: String,
    pub limits: String,
    pub created: String,
    pub last_used: String,
    pub uses: i64,
    pub services: Vec<String>,
    pub networks: Vec<String>,
    pub expires: Option<String>,
}

impl CodeRow {
    /// From one element of `list --json`; `None` if it is not shaped like one.
    pub fn from_json(code: &Value) -> Option<CodeRow> {
        let strings = |key: &str| -> Vec<String> {
            code[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let services = strings("services");
        let networks = strings("networks");
        let expires = code["expires"].as_str().map(when);
        let mut limits = Vec::new();
        limits.push(if services.is_empty() {
            "any service".to_owned()
        } else {
            services.join(", ")
        });
        if !networks.is_empty() {
            limits.push(format!("from {}", networks.join(", ")));
        }
        if let Some(at) = &expires {
            limits.push(format!("until {at}"));
        }
        let last = &code["last_used"];
        let last_used = match last["time"].as_str() {
            None => "never".to_owned(),
            Some(time) => {
                let mut text = when(time);
                if let Some(service) = last["service"].as_str() {
                    text.push_str(&format!(" via {service}"));
                }
                if let Some(rhost) = last["rhost"].as_str() {
                    text.push_str(&format!(" from {rhost}"));
                }
                text
            }
        };
        Some(CodeRow {
            id: code["id"].as_i64()?,
            label: code["label"].as_str()?.to_owned(),
            limits: limits.join("; "),
            created: when(code["created"].as_str()?),
            last_used,
            uses: code["use_count"].as_i64().unwrap_or(0),
            services,
            networks,
            expires,
        })
    }
}

/// `2026-11-27T12:34:56Z` as `2026-11-27 12:34 UTC`.
fn when(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

/// A code as `new` shows it (`abcd efgh ijkl mnop`), in its groups.
pub fn groups(code: &str) -> Vec<String> {
    code.split(' ').map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_code_reads_plainly() {
        let code = serde_json::json!({
            "id": 7, "label": "Phone", "created": "2026-11-27T12:34:56Z",
            "services": ["imap", "smtp"], "networks": ["192.0.2.0/24"],
            "expires": "2027-01-31T00:00:00Z", "use_count": 3,
            "last_used": {"time": "2026-11-28T08:00:00Z", "service": "imap", "rhost": "192.0.2.7", "host": "mx"}
        });
        let row = CodeRow::from_json(&code).unwrap();
        assert_eq!(
            row.limits,
            "imap, smtp; from 192.0.2.0/24; until 2027-01-31 00:00 UTC"
        );
        assert_eq!(row.created, "2026-11-27 12:34 UTC");
        assert_eq!(
            row.last_used,
            "2026-11-28 08:00 UTC via imap from 192.0.2.7"
        );
        assert!(CodeRow::from_json(&serde_json::json!({"id": "x"})).is_none());
    }

    #[test]
    fn pages_escape_what_users_wrote() {
        let page = MessagePage {
            frame: Frame {
                site: "<Site>".into(),
                title: "t".into(),
                user: Some("a&b".into()),
                token: "tok".into(),
                messages: vec!["<script>".into()],
                error: None,
            },
            text: "\"quoted\"".into(),
            link: "/",
            link_text: "back",
        };
        let html = page.render().unwrap();
        assert!(
            html.contains("&#60;Site&#62;") || html.contains("&lt;Site&gt;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(!html.contains("a&b"));
    }
}
