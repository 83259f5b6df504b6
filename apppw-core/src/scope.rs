//! Per-code limits: which PAM services a code works for, from which networks, and until when.
//! Each limit is chosen when the code is minted (or later with `edit`) and checked on every login,
//! after the code itself has verified, so only someone holding the code learns why it was refused.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::duration::parse_duration;
use crate::login::is_own_service;

/// An IP network in CIDR notation (`192.0.2.0/24`, `2001:db8::/48`; a bare address is a /32 or
/// /128).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        let bad = || format!("{text:?} is not a network such as 192.0.2.0/24 or 2001:db8::/48");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let written = IpAddr::from_str(addr).map_err(|_| bad())?;
        let max = if written.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        // An IPv4-mapped network written in IPv6 notation (::ffff:192.0.2.0/120) is stored as
        // the IPv4 network it means.
        let base = canonical(written);
        let prefix = match (written, base) {
            (IpAddr::V6(_), IpAddr::V4(_)) if prefix >= 96 => prefix - 96,
            (IpAddr::V6(_), IpAddr::V4(_)) => return Err(bad()),
            _ => prefix,
        };
        if mask(base, prefix) != base {
            return Err(format!(
                "{text:?} has host bits set; did you mean {}/{prefix}?",
                mask(base, prefix)
            ));
        }
        Ok(Network { base, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl Network {
    /// Whether every address of `other` is in this network.
    pub fn covers(&self, other: &Network) -> bool {
        self.prefix <= other.prefix && self.contains(other.base)
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        addr.is_ipv4() == self.base.is_ipv4() && mask(addr, self.prefix) == self.base
    }
}

/// IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) are the IPv4 address they carry.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u32::MAX << (32 - u32::from(prefix)))
            };
            IpAddr::V4(kept.into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - u32::from(prefix)))
            };
            IpAddr::V6(Ipv6Addr::from(kept))
        }
    }
}

/// PAM_RHOST as an address. Dovecot passes the client IP; other programs may pass a host name,
/// a bracketed or zoned IPv6 address, or nothing. Only a plain address can be placed in a
/// network, so anything else matches no network: a restricted code then refuses the login
/// rather than trust a name that DNS or the client controls.
pub fn parse_rhost(rhost: &str) -> Option<IpAddr> {
    let trimmed = rhost
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(rhost);
    IpAddr::from_str(trimmed).ok()
}

/// Checks a service name given to `--service` or `allowed_services`, and folds it to lower case:
/// libpam lower-cases the service name in `pam_start`, so `IMAP` could never match a login and
/// is stored as the `imap` that will.
pub fn parse_service(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        return Err(format!(
            "{name:?} is not a PAM service name (letters, digits, - _ .)"
        ));
    }
    let folded = name.to_ascii_lowercase();
    if is_own_service(&folded) {
        return Err(format!(
            "app passwords never work for the {folded} service, where apppw asks for the account password"
        ));
    }
    Ok(folded)
}

/// Whether a PAM service name (as libpam passes it) is `listed` (as stored). Compared without
/// regard to case, so that codes stored before names were folded still match.
pub fn service_matches(listed: &str, service: &str) -> bool {
    listed.eq_ignore_ascii_case(service)
}

/// When a code stops working, as typed: a duration from now (`90d`), a date (`2027-01-31`, at
/// 00:00 UTC), or an RFC 3339 time. Returns Unix seconds, which must lie in the future.
pub fn parse_expiry(text: &str, now: i64) -> Result<i64, String> {
    let at = if let Ok(seconds) = parse_duration(text) {
        now + seconds
    } else if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        date.midnight().assume_utc().unix_timestamp()
    } else if let Ok(moment) = OffsetDateTime::parse(text, &Rfc3339) {
        moment.unix_timestamp()
    } else {
        return Err(format!(
            "{text:?} is not an expiry: use a duration (90d), a date (2027-01-31) or an RFC 3339 time"
        ));
    };
    if at <= now {
        return Err(format!("{text:?} is already in the past"));
    }
    Ok(at)
}

/// The limits of one code. Empty lists mean "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub services: Vec<String>,
    pub networks: Vec<Network>,
    /// Unix seconds after which the code no longer works.
    pub expires: Option<i64>,
}

/// Why a code that verified was still refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The PAM service is not among the code's services.
    Service,
    /// PAM_RHOST is not an address in the code's networks (or is missing or a name).
    Network,
    /// The code expired.
    Expired,
    /// The code was not used for longer than the policy's `expire_unused`.
    Unused,
}

impl Limit {
    pub fn describe(&self) -> &'static str {
        match self {
            Limit::Service => "not valid for this service",
            Limit::Network => "used from outside its networks",
            Limit::Expired => "expired",
            Limit::Unused => "expired after going unused too long",
        }
    }
}

impl Scope {
    /// Serializes the lists for the store (space-separated; NULL when empty).
    pub fn services_column(&self) -> Option<String> {
        (!self.services.is_empty()).then(|| self.services.join(" "))
    }

    pub fn networks_column(&self) -> Option<String> {
        (!self.networks.is_empty()).then(|| {
            self.networks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        })
    }

    /// Reads the lists back. A value the store should never hold is an error (damaged store).
    pub fn from_columns(
        services: Option<&str>,
        networks: Option<&str>,
        expires: Option<i64>,
    ) -> Result<Scope, String> {
        let split = |s: Option<&str>| -> Vec<String> {
            s.map(|s| s.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        Ok(Scope {
            services: split(services),
            networks: split(networks)
                .iter()
                .map(|n| n.parse())
                .collect::<Result<_, _>>()?,
            expires,
        })
    }

    /// Whether `self` lets some login through that `before` refused: a service or network
    /// added (or the list lifted), an expiry removed or moved later. Widening a code is as
    /// sensitive as minting one; narrowing is not.
    pub fn widens(&self, before: &Scope) -> bool {
        let more_services = !before.services.is_empty()
            && (self.services.is_empty()
                || self
                    .services
                    .iter()
                    .any(|s| !before.services.iter().any(|b| service_matches(b, s))));
        let more_networks = !before.networks.is_empty()
            && (self.networks.is_empty()
                || self
                    .networks
                    .iter()
                    .any(|n| !before.networks.iter().any(|b| b.covers(n))));
        let later_expiry = match (before.expires, self.expires) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(old), Some(new)) => new > old,
        };
        more_services || more_networks || later_expiry
    }

    /// Checks a login against the code's own limits.
    pub fn check(&self, service: Option<&str>, rhost: Option<&str>, now: i64) -> Result<(), Limit> {
        if self.expires.is_some_and(|at| now >= at) {
            return Err(Limit::Expired);
        }
        if !self.services.is_empty()
            && !service.is_some_and(|s| self.services.iter().any(|a| service_matches(a, s)))
        {
            return Err(Limit::Service);
        }
        if !self.networks.is_empty() {
            let addr = rhost.and_then(parse_rhost);
            if !addr.is_some_and(|a| self.networks.iter().any(|n| n.contains(a))) {
                return Err(Limit::Network);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_what_they_should() {
        let v4 = net("192.0.2.0/24");
        assert!(v4.contains(ip("192.0.2.1")) && v4.contains(ip("192.0.2.255")));
        assert!(!v4.contains(ip("192.0.3.1")));
        assert!(
            v4.contains(ip("::ffff:192.0.2.9")),
            "IPv4-mapped IPv6 is the IPv4 address"
        );
        assert!(!v4.contains(ip("2001:db8::1")));
        let v6 = net("2001:db8::/48");
        assert!(v6.contains(ip("2001:db8:0:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("192.0.2.1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.5")));
        assert!(net("198.51.100.7").contains(ip("198.51.100.7")));
        assert!(!net("198.51.100.7").contains(ip("198.51.100.8")));
        assert_eq!(net("::ffff:192.0.2.0/120"), net("192.0.2.0/24"));
    }

    #[test]
    fn bad_networks_are_refused() {
        for bad in [
            "",
            "192.0.2.0/33",
            "192.0.2.1/24",
            "example.org/24",
            "2001:db8::/129",
            "192.0.2.0/-1",
            "::ffff:192.0.2.0/64",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad:?}");
        }
        assert!(
            "192.0.2.1/24"
                .parse::<Network>()
                .unwrap_err()
                .contains("192.0.2.0/24")
        );
    }

    #[test]
    fn rhosts_that_are_not_addresses_match_nothing() {
        let scope = Scope {
            networks: vec![net("0.0.0.0/0"), net("::/0")],
            ..Scope::default()
        };
        assert_eq!(scope.check(None, Some("192.0.2.1"), 0), Ok(()));
        assert_eq!(scope.check(None, Some("[2001:db8::1]"), 0), Ok(()));
        for rhost in [
            None,
            Some(""),
            Some("mail.example.org"),
            Some("192.0.2.1 "),
            Some("fe80::1%eth0"),
            Some("192.0.2"),
        ] {
            assert_eq!(
                scope.check(None, rhost, 0),
                Err(Limit::Network),
                "{rhost:?}"
            );
        }
    }

    #[test]
    fn services_and_expiry() {
        let scope = Scope {
            services: vec!["imap".into(), "smtp".into()],
            expires: Some(100),
            ..Scope::default()
        };
        assert_eq!(scope.check(Some("imap"), None, 99), Ok(()));
        assert_eq!(scope.check(Some("pop3"), None, 99), Err(Limit::Service));
        assert_eq!(scope.check(None, None, 99), Err(Limit::Service));
        assert_eq!(scope.check(Some("imap"), None, 100), Err(Limit::Expired));
        assert_eq!(Scope::default().check(None, None, i64::MAX), Ok(()));
    }

    #[test]
    fn columns_round_trip() {
        let scope = Scope {
            services: vec!["imap".into()],
            networks: vec![net("192.0.2.0/24"), net("2001:db8::/48")],
            expires: Some(5),
        };
        let back = Scope::from_columns(
            scope.services_column().as_deref(),
            scope.networks_column().as_deref(),
            scope.expires,
        );
        assert_eq!(back, Ok(scope));
        assert_eq!(Scope::default().services_column(), None);
    }

    #[test]
    fn expiry_forms() {
        let now = 1_800_000_000; // 2027-01-15T08:00:00Z
        assert_eq!(parse_expiry("90d", now), Ok(now + 90 * 86_400));
        assert_eq!(parse_expiry("2027-01-31", now), Ok(1_801_353_600));
        assert_eq!(parse_expiry("2027-01-16T00:00:00Z", now), Ok(1_800_057_600));
        assert!(
            parse_expiry("2026-01-01", now)
                .unwrap_err()
                .contains("past")
        );
        assert!(parse_expiry("soon", now).is_err());
        assert!(parse_expiry("90", now).is_err());
    }

    #[test]
    fn service_names() {
        assert_eq!(parse_service("imap"), Ok("imap".into()));
        assert_eq!(parse_service("IMAP"), Ok("imap".into()));
        assert!(parse_service("APPPW-CTL").is_err());
        assert!(parse_service("apppw-ctl").is_err());
        assert!(parse_service("apppw-web").is_err());
        assert!(parse_service("Apppw-Web").is_err());
        assert!(parse_service("im ap").is_err());
        assert!(parse_service("").is_err());
    }

    #[test]
    fn a_stored_upper_case_service_still_matches_what_libpam_passes() {
        let scope = Scope {
            services: vec!["IMAP".into()],
            ..Scope::default()
        };
        assert_eq!(scope.check(Some("imap"), None, 0), Ok(()));
    }

    #[test]
    fn widening_is_told_from_narrowing() {
        let scope = |services: &[&str], networks: &[&str], expires: Option<i64>| Scope {
            services: services.iter().map(ToString::to_string).collect(),
            networks: networks.iter().map(|n| net(n)).collect(),
            expires,
        };
        let before = scope(&["imap", "smtp"], &["192.0.2.0/24"], Some(100));
        for narrower in [
            scope(&["imap"], &["192.0.2.0/24"], Some(100)),
            scope(&["imap", "smtp"], &["192.0.2.128/25"], Some(50)),
            before.clone(),
        ] {
            assert!(!narrower.widens(&before), "{narrower:?}");
        }
        for wider in [
            scope(&[], &["192.0.2.0/24"], Some(100)),
            scope(&["imap", "pop3"], &["192.0.2.0/24"], Some(100)),
            scope(&["imap"], &[], Some(100)),
            scope(&["imap"], &["192.0.2.0/23"], Some(100)),
            scope(&["imap"], &["198.51.100.0/24"], Some(100)),
            scope(&["imap"], &["192.0.2.0/24"], None),
            scope(&["imap"], &["192.0.2.0/24"], Some(101)),
        ] {
            assert!(wider.widens(&before), "{wider:?}");
        }
        assert!(!scope(&["imap"], &[], None).widens(&Scope::default()));
    }
}
