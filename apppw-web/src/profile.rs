//! The Apple configuration profile (`.mobileconfig`) offered after minting: an unsigned XML
//! property list with one `com.apple.mail.managed` payload that sets up the IMAP and SMTP
//! account on an iPhone, iPad or Mac with the new code. It is made from the page's own POST and
//! never stored.
#![forbid(unsafe_code)]

use std::fmt::Write;

use rand::TryRngCore;
use rand::rngs::OsRng;

use crate::config::{Server, WebConfig};

pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";

pub struct Account<'a> {
    pub user: &'a str,
    pub label: &'a str,
    pub code: &'a str,
}

/// The profile, or `None` when web.conf names no IMAP or SMTP server.
pub fn mobileconfig(config: &WebConfig, account: &Account<'_>) -> Option<String> {
    let (imap, smtp) = (config.imap.as_ref()?, config.smtp.as_ref()?);
    let site = &config.site_name;
    let reverse: Vec<&str> = config.host().rsplit('.').collect();
    let id_base = format!("{}.apppw", reverse.join("."));
    let (outer, inner) = (uuid(), uuid());
    let description = format!("{site} ({})", account.label);
    let mut xml = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n",
        "<plist version=\"1.0\">\n<dict>\n<key>PayloadContent</key>\n<array>\n<dict>\n"
    ));
    string(&mut xml, "EmailAccountDescription", &description);
    string(&mut xml, "EmailAccountName", account.user);
    string(&mut xml, "EmailAccountType", "EmailTypeIMAP");
    server(&mut xml, "Incoming", imap, account.user);
    string(&mut xml, "IncomingPassword", account.code);
    server(&mut xml, "Outgoing", smtp, account.user);
    boolean(&mut xml, "OutgoingPasswordSameAsIncomingPassword", true);
    string(&mut xml, "PayloadDisplayName", &description);
    string(
        &mut xml,
        "PayloadIdentifier",
        &format!("{id_base}.mail.{inner}"),
    );
    string(&mut xml, "PayloadType", "com.apple.mail.managed");
    string(&mut xml, "PayloadUUID", &inner);
    integer(&mut xml, "PayloadVersion", 1);
    xml.push_str("</dict>\n</array>\n");
    string(
        &mut xml,
        "PayloadDescription",
        &format!("Sets up your {site} mail with an app password made for this device."),
    );
    string(&mut xml, "PayloadDisplayName", &description);
    string(&mut xml, "PayloadIdentifier", &format!("{id_base}.{outer}"));
    boolean(&mut xml, "PayloadRemovalDisallowed", false);
    string(&mut xml, "PayloadType", "Configuration");
    string(&mut xml, "PayloadUUID", &outer);
    integer(&mut xml, "PayloadVersion", 1);
    xml.push_str("</dict>\n</plist>\n");
    Some(xml)
}

fn server(xml: &mut String, side: &str, server: &Server, user: &str) {
    string(
        xml,
        &format!("{side}MailServerAuthentication"),
        "EmailAuthPassword",
    );
    string(xml, &format!("{side}MailServerHostName"), &server.host);
    integer(
        xml,
        &format!("{side}MailServerPortNumber"),
        u64::from(server.port),
    );
    boolean(xml, &format!("{side}MailServerUseSSL"), true);
    string(xml, &format!("{side}MailServerUsername"), user);
}

fn string(xml: &mut String, key: &str, value: &str) {
    let _ = writeln!(xml, "<key>{key}</key>\n<string>{}</string>", escape(value));
}

fn integer(xml: &mut String, key: &str, value: u64) {
    let _ = writeln!(xml, "<key>{key}</key>\n<integer>{value}</integer>");
}

fn boolean(xml: &mut String, key: &str, value: bool) {
    let _ = writeln!(xml, "<key>{key}</key>\n<{value}/>");
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A random (version 4) UUID.
fn uuid() -> String {
    let mut b = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut b)
        .expect("the operating system's random number generator failed");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::sessions::hex(&b).to_ascii_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_escapes_what_it_is_given_and_needs_both_servers() {
        let mut config = WebConfig::parse(
            "origin = https://mail.example.org\nimap = mail.example.org:993\nsmtp = mail.example.org:465\n",
        )
        .unwrap();
        let account = Account {
            user: "alice",
            label: "<Phone & \"tab\">",
            code: "abcd efgh ijkl mnop",
        };
        let xml = mobileconfig(&config, &account).unwrap();
        assert!(xml.contains("&lt;Phone &amp; &quot;tab&quot;&gt;"));
        assert!(!xml.contains("<Phone"));
        assert!(xml.contains("<string>org.example.mail.apppw.mail."));
        assert!(xml.contains("<integer>993</integer>") && xml.contains("<integer>465</integer>"));
        config.smtp = None;
        assert!(mobileconfig(&config, &account).is_none());
    }
}
