//! Site policy: what an administrator decides in /etc/apppw/apppw.conf. Defaults live here;
//! `config.rs` reads the file.
#![forbid(unsafe_code)]

use crate::hash::HashParams;

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
    /// Whether `new` and `revoke --all` ask a non-root caller to authenticate again (PAM
    /// service `apppw-ctl`).
    pub reauthenticate: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_active_codes: 25,
            hash_params: HashParams::default(),
            allowed_users: Vec::new(),
            allowed_groups: Vec::new(),
            reauthenticate: true,
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
}
