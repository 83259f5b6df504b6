//! Minting: draw a code, hash it, store it. The code is returned once to the caller to show and is
//! never stored or logged.
#![forbid(unsafe_code)]

use rand::{CryptoRng, Rng};

use crate::code::AppPassword;
use crate::error::Error;
use crate::hash::{SALT_LEN, hash_code};
use crate::label::Label;
use crate::policy::Policy;
use crate::scope::Scope;
use crate::store::{Changer, NewCode, Owner, Store};

/// A code drawn whose lookup tag another active code of the user already has is thrown away and
/// drawn again; with at most a few dozen codes per user and 2^20 tags, a second try is rare and
/// a ninth practically impossible.
const MAX_DRAWS: u32 = 8;

pub struct Minted {
    pub id: i64,
    pub code: AppPassword,
    pub created: i64,
}

/// Who asks for a code, for whom, and what it is called.
pub struct MintRequest<'a> {
    pub owner: Owner<'a>,
    pub label: &'a Label,
    /// Limits, already settled against the policy (`Policy::settle_scope`).
    pub scope: &'a Scope,
}

pub fn mint<R: CryptoRng + ?Sized>(
    store: &mut Store,
    request: &MintRequest<'_>,
    policy: &Policy,
    by: &Changer<'_>,
    rng: &mut R,
) -> Result<Minted, Error> {
    for _ in 0..MAX_DRAWS {
        let code = AppPassword::generate(rng);
        let mut salt = [0u8; SALT_LEN];
        rng.fill(&mut salt[..]);
        let hash = zeroize::Zeroizing::new(hash_code(&code, &policy.hash_params, &salt)?);
        let new = NewCode {
            owner: request.owner,
            label: request.label,
            scope: request.scope,
            lookup_tag: code.lookup_tag(),
            hash: &hash,
        };
        if let Some(id) = store.insert(&new, policy.max_active_codes, by)? {
            return Ok(Minted {
                id,
                code,
                created: by.now,
            });
        }
    }
    Err(Error::TagSpaceExhausted(MAX_DRAWS))
}
