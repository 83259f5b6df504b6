//! Argon2id hashing of app passwords, as PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
//! The parameters travel inside each string, so codes minted under older settings keep verifying
//! after the administrator raises them.
#![forbid(unsafe_code)]

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::code::AppPassword;
use crate::error::Error;

/// Salt length in bytes (128 bits, the PHC recommendation).
pub const SALT_LEN: usize = 16;

/// Argon2id cost parameters for newly minted codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashParams {
    /// OWASP's first recommendation: m=19456 KiB (19 MiB), t=2, p=1.
    fn default() -> Self {
        HashParams {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashParams {
    fn hasher(&self) -> Result<Argon2<'static>, Error> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| Error::HashParams(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashes `code` with `salt` (from the caller's CSPRNG) into a PHC string.
pub fn hash_code(
    code: &AppPassword,
    params: &HashParams,
    salt: &[u8; SALT_LEN],
) -> Result<String, Error> {
    let salt = SaltString::encode_b64(salt).map_err(|e| Error::HashParams(e.to_string()))?;
    let hash = params
        .hasher()?
        .hash_password(code.as_bytes(), &salt)
        .map_err(|e| Error::HashParams(e.to_string()))?;
    Ok(hash.to_string())
}

/// Checks `code` against a stored PHC string. A string that is not a well-formed Argon2id hash is
/// an error (the store is damaged), never a match.
pub fn verify_code(code: &AppPassword, phc: &str) -> Result<bool, Error> {
    let parsed = PasswordHash::new(phc).map_err(|e| Error::BadStoredHash(e.to_string()))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(Error::BadStoredHash(format!(
            "algorithm {} is not argon2id",
            parsed.algorithm
        )));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(Error::BadStoredHash("salt or hash missing".into()));
    }
    match Argon2::default().verify_password(code.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(Error::BadStoredHash(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters keep unit tests fast; the defaults are exercised end to end.
    const CHEAP: HashParams = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn code(s: &str) -> AppPassword {
        AppPassword::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn right_code_verifies_and_wrong_one_does_not() {
        let phc = hash_code(&code("kq7mvz2c9hxtp4we"), &CHEAP, &[3; SALT_LEN]).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_code(&code("kq7mvz2c9hxtp4we"), &phc).unwrap());
        assert!(!verify_code(&code("kq7mvz2c9hxtp4wf"), &phc).unwrap());
    }

    #[test]
    fn default_parameters_are_owasp() {
        let phc = hash_code(&code("kq7mvz2c9hxtp4we"), &HashParams::default(), &[1; 16]).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn damaged_or_foreign_hashes_are_errors_not_matches() {
        let c = code("kq7mvz2c9hxtp4we");
        assert!(verify_code(&c, "").is_err());
        assert!(verify_code(&c, "$argon2id$garbage").is_err());
        let argon2i =
            "$argon2i$v=19$m=64,t=1,p=1$AwMDAwMDAwMDAwMDAwMDAw$aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ";
        assert!(verify_code(&c, argon2i).is_err());
    }

    #[test]
    fn impossible_parameters_are_refused() {
        let bad = HashParams {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        };
        assert!(hash_code(&code("kq7mvz2c9hxtp4we"), &bad, &[0; 16]).is_err());
    }
}
