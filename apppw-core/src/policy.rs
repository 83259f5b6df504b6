//! Site policy: what an administrator decides in /etc/apppw/apppw.conf. Defaults live here;
//! `config.rs` reads the file.
#![forbid(unsafe_code)]

use crate::error::Error;
use crate::hash::HashParams;
use crate::scope::Scope;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Most active codes one user may hold.
    pub max_active_codes: u32,
    /// Argon2id cost for newly minted codes.
    pub hash_params: HashParams,
    /// Users who may create codes; with `allowed_groups`, both empty means everyone.
    pub allowed_users: Vec<String>,
    /// Members of these groups may create codes.
    pub allowed_groups: Vec<String>,
    /// Whether `new`, `revoke --all` and a widening `edit` ask a non-root caller to authenticate again (PAM
    /// service `apppw-ctl`).
    pub reauthenticate: bool,
    /// PAM services app passwords may be used for; empty means any (except apppw-ctl).
    pub allowed_services: Vec<String>,
    /// Longest lifetime of a code, in seconds: new codes expire after it at the latest.
    pub max_lifetime: Option<i64>,
    /// A code unused (or never used since creation) for this many seconds stops working.
    pub expire_unused: Option<i64>,
    /// A command run after every revocation and every edit that narrows a code (argv; `%u`
    /// becomes the code's owner), e.g. to flush Dovecot's auth cache so the change takes effect
    /// at once.
    pub revoke_hook: Vec<String>,
    /// Most codes a non-root user may create, rename or edit in 24 hours: it bounds the rows one
    /// user can add to the store (revoked codes and the event trail included). Revoking is never
    /// capped.
    pub max_changes_per_day: u32,
    /// Whether a password change through PAM (pam_apppw in the `password` stack) revokes every
    /// active code of the user.
    pub revoke_on_password_change: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_active_codes: 25,
            hash_params: HashParams::default(),
            allowed_users: Vec::new(),
            allowed_groups: Vec::new(),
            reauthenticate: true,
            allowed_services: Vec::new(),
            max_lifetime: None,
            expire_unused: None,
            revoke_hook: Vec::new(),
            max_changes_per_day: 50,
            revoke_on_password_change: false,
        }
    }
}

impl Policy {
    /// Whether `user`, a member of `groups`, may create codes.
    pub fn may_create(&self, user: &str, groups: &[String]) -> bool {
        (self.allowed_users.is_empty() && self.allowed_groups.is_empty())
            || self.allowed_users.iter().any(|u| u == user)
            || self.allowed_groups.iter().any(|g| groups.contains(g))
    }
}

impl Policy {
    /// Whether the site allows app passwords for `service` at all.
    pub fn allows_service(&self, service: Option<&str>) -> bool {
        self.allowed_services.is_empty()
            || service.is_some_and(|s| {
                self.allowed_services
                    .iter()
                    .any(|a| crate::scope::service_matches(a, s))
            })
    }

    /// Checks the limits a user asks for against the site policy and applies the lifetime cap,
    /// counted from the code's creation (`created`): returns the scope to store.
    pub fn settle_scope(&self, mut scope: Scope, created: i64) -> Result<Scope, Error> {
        if let Some(service) = scope
            .services
            .iter()
            .find(|s| !self.allows_service(Some(s)))
        {
            return Err(Error::ServiceNotAllowed {
                service: service.clone(),
                allowed: self.allowed_services.join(", "),
            });
        }
        if let Some(max) = self.max_lifetime {
            let latest = created + max;
            match scope.expires {
                Some(at) if at > latest => {
                    return Err(Error::LifetimeTooLong {
                        max_days: max / 86_400,
                    });
                }
                None => scope.expires = Some(latest),
                Some(_) => {}
            }
        }
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_may_create_unless_restricted() {
        let mut p = Policy::default();
        assert!(p.may_create("alice", &[]));
        p.allowed_groups = vec!["mail".into()];
        assert!(!p.may_create("alice", &["users".into()]));
        assert!(p.may_create("alice", &["users".into(), "mail".into()]));
        p.allowed_users = vec!["bob".into()];
        assert!(p.may_create("bob", &[]));
    }

    #[test]
    fn scopes_are_settled_against_the_policy() {
        let mut p = Policy::default();
        assert_eq!(
            p.settle_scope(Scope::default(), 0).unwrap(),
            Scope::default()
        );
        p.max_lifetime = Some(10 * 86_400);
        p.allowed_services = vec!["imap".into()];
        let settled = p.settle_scope(Scope::default(), 5).unwrap();
        assert_eq!(settled.expires, Some(5 + 10 * 86_400));
        let too_long = Scope {
            expires: Some(11 * 86_400),
            ..Scope::default()
        };
        assert!(
            p.settle_scope(too_long, 0)
                .unwrap_err()
                .to_string()
                .contains("at most 10 days")
        );
        let smtp = Scope {
            services: vec!["smtp".into()],
            ..Scope::default()
        };
        assert!(
            p.settle_scope(smtp, 0)
                .unwrap_err()
                .to_string()
                .contains("\"smtp\"")
        );
        assert!(
            p.allows_service(Some("imap"))
                && !p.allows_service(Some("pop3"))
                && !p.allows_service(None)
        );
    }
}
