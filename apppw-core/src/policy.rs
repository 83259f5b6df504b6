//! Site policy: the knobs an administrator can turn. Defaults live here; the config file that
//! overrides them comes with the privilege-separation work.
#![forbid(unsafe_code)]

use crate::hash::HashParams;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Most active codes one user may hold.
    pub max_active_codes: u32,
    /// Argon2id cost for newly minted codes.
    pub hash_params: HashParams,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_active_codes: 25,
            hash_params: HashParams::default(),
        }
    }
}
