//! The app password itself: its alphabet, how a fresh one is drawn, how it is shown, how typed
//! input is normalized back to it, and the short lookup tag that finds its row.
//!
//! A code is 16 symbols from Crockford's base32 alphabet in lower case (`0-9a-z` without `i l o u`),
//! so it carries 80 bits. The alphabet has no two symbols that look alike; the look-alikes a person
//! may type instead (`o` for `0`, `i`/`l` for `1`) are mapped on input, and case, spaces and dashes
//! are ignored.
#![forbid(unsafe_code)]

use std::fmt;

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U4;
use rand::{CryptoRng, Rng};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Symbols of a code, in the order a 5-bit value indexes them.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Number of symbols in a code.
pub const CODE_LEN: usize = 16;

/// Typed input longer than this cannot be a code even with generous spacing; it is refused before
/// any work is done on it (a 1 MB token costs nothing).
const MAX_INPUT_LEN: usize = 64;

/// Bits of the lookup tag. With 20 bits a wrong token reaches an Argon2id verification with
/// probability (active codes of the user) / 2^20, and a stolen store gives away 20 of 80 bits.
pub const TAG_BITS: u32 = 20;

/// An app password in canonical form (16 lower-case alphabet symbols). The bytes are wiped when
/// the value is dropped; `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct AppPassword([u8; CODE_LEN]);

impl AppPassword {
    /// Draws a fresh code from `rng`, which must be a cryptographically secure generator (the CLI
    /// passes the operating system's).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut symbols = [0u8; CODE_LEN];
        for symbol in &mut symbols {
            // 32 symbols: a uniform index needs exactly 5 bits, no rejection sampling.
            *symbol = ALPHABET[usize::from(rng.random::<u8>() & 0x1f)];
        }
        AppPassword(symbols)
    }

    /// Normalizes what a person typed. Returns `None` for anything that is not a well-formed code
    /// after removing spaces and dashes, folding case and mapping look-alikes: such input simply
    /// matches nothing.
    pub fn parse(input: &[u8]) -> Option<Self> {
        if input.len() > MAX_INPUT_LEN {
            return None;
        }
        let mut symbols = [0u8; CODE_LEN];
        let mut len = 0;
        let mut well_formed = true;
        for &byte in input {
            let symbol = match byte.to_ascii_lowercase() {
                b' ' | b'-' | b'\t' => continue,
                b'o' => b'0',
                b'i' | b'l' => b'1',
                other if ALPHABET.contains(&other) => other,
                _ => {
                    well_formed = false;
                    break;
                }
            };
            if len == CODE_LEN {
                well_formed = false;
                break;
            }
            symbols[len] = symbol;
            len += 1;
        }
        let code = AppPassword(symbols);
        (well_formed && len == CODE_LEN).then_some(code)
    }

    /// The canonical bytes, which are what gets hashed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The lookup tag: the first [`TAG_BITS`] bits of a domain-separated BLAKE2b of the code. It
    /// narrows a login to (almost always) one row, so a login costs one Argon2id verification
    /// however many codes exist, while leaving 60 bits for an attacker who steals the store.
    pub fn lookup_tag(&self) -> u32 {
        let digest = Blake2b::<U4>::new()
            .chain_update(b"apppw lookup tag v1\0")
            .chain_update(self.0)
            .finalize();
        u32::from_be_bytes(digest.into()) >> (32 - TAG_BITS)
    }

    /// The code as it is shown once to its owner: four groups of four, e.g. `kq7m vz2c 9hxt p4we`.
    /// The result is wiped on drop.
    pub fn display_grouped(&self) -> zeroize::Zeroizing<String> {
        let mut shown = zeroize::Zeroizing::new(String::with_capacity(CODE_LEN + 3));
        for (i, chunk) in self.0.chunks(4).enumerate() {
            if i > 0 {
                shown.push(' ');
            }
            for &b in chunk {
                shown.push(char::from(b));
            }
        }
        shown
    }
}

/// Whether `text` might carry a code somewhere inside it: a run of [`CODE_LEN`] or more symbols
/// of the alphabet (look-alikes and either case included) in which everything but ASCII letters
/// and digits is skipped, as a person's near miss would have them (`<code>@example.org`,
/// `user <code>`, the code with a dot, a no-break space or an en dash in it). Used to withhold such text from logs; a long ordinary name can be
/// withheld too, which costs a log reader a name and never a code.
pub fn may_hide_a_code(text: &[u8]) -> bool {
    let mut run = 0;
    for &byte in text {
        let lower = byte.to_ascii_lowercase();
        if ALPHABET.contains(&lower) || matches!(lower, b'o' | b'i' | b'l') {
            run += 1;
            if run >= CODE_LEN {
                return true;
            }
        } else if byte.is_ascii_alphanumeric() {
            // `u`, the one ASCII letter outside the alphabet.
            run = 0;
        }
    }
    false
}

impl fmt::Debug for AppPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn sample() -> AppPassword {
        AppPassword::generate(&mut StdRng::seed_from_u64(7))
    }

    #[test]
    fn generated_codes_use_only_the_alphabet_and_differ() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = AppPassword::generate(&mut rng);
        let b = AppPassword::generate(&mut rng);
        assert!(a.as_bytes().iter().all(|c| ALPHABET.contains(c)));
        assert_ne!(a, b);
    }

    #[test]
    fn every_symbol_is_reachable() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut seen = [false; 256];
        for _ in 0..200 {
            for &c in AppPassword::generate(&mut rng).as_bytes() {
                seen[usize::from(c)] = true;
            }
        }
        assert!(ALPHABET.iter().all(|&c| seen[usize::from(c)]));
    }

    #[test]
    fn grouped_display_parses_back() {
        let code = sample();
        let shown = code.display_grouped();
        assert_eq!(shown.len(), 19);
        assert_eq!(shown.split(' ').count(), 4);
        assert_eq!(AppPassword::parse(shown.as_bytes()), Some(code));
    }

    #[test]
    fn case_spaces_dashes_and_lookalikes_are_forgiven() {
        let canonical = AppPassword::parse(b"kq7mvz2c9hxtp4we").unwrap();
        for typed in [
            &b"KQ7M VZ2C 9HXT P4WE"[..],
            b"kq7m-vz2c-9hxt-p4we",
            b" kq7m\tvz2c 9hxt p4we ",
        ] {
            assert_eq!(AppPassword::parse(typed).as_ref(), Some(&canonical));
        }
        let with_ones = AppPassword::parse(b"1111 0000 2222 3333").unwrap();
        assert_eq!(AppPassword::parse(b"IlI1 oOo0 2222 3333"), Some(with_ones));
    }

    #[test]
    fn malformed_input_is_no_code() {
        for bad in [
            &b""[..],
            b"kq7m vz2c 9hxt p4w",     // 15 symbols
            b"kq7m vz2c 9hxt p4wee",   // 17 symbols
            b"kq7m vz2c 9hxt p4wu",    // u is not in the alphabet
            b"kq7m vz2c 9hxt p4w\xc3", // not ASCII
            b"kq7m_vz2c_9hxt_p4we",
        ] {
            assert_eq!(
                AppPassword::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(AppPassword::parse(&vec![b'a'; 1 << 20]), None);
    }

    #[test]
    fn near_misses_that_hide_a_code_are_spotted() {
        let code = "kq7mvz2c9hxtp4we";
        for hiding in [
            code.to_string(),
            format!("{code}@example.org"),
            "kq7m vz2c.9hxt p4we".to_string(),
            format!("user {code}"),
            "KQ7M-VZ2C-9HXT-P4WE".to_string(),
            "kq7m_vz2c_9hxt_p4we".to_string(),
            "kq7m\u{a0}vz2c\u{2013}9hxt p4we".to_string(),
        ] {
            assert!(may_hide_a_code(hiding.as_bytes()), "{hiding}");
        }
        for plain in [
            "alice",
            "alice@example.org",
            "mail-user",
            "kq7mvz2c9hxtp4w",
            "kq7mvz2cu9hxtp4we",
        ] {
            assert!(!may_hide_a_code(plain.as_bytes()), "{plain}");
        }
    }

    #[test]
    fn lookup_tag_is_stable_and_short() {
        let code = AppPassword::parse(b"kq7mvz2c9hxtp4we").unwrap();
        assert_eq!(code.lookup_tag(), code.clone().lookup_tag());
        assert!(code.lookup_tag() < 1 << TAG_BITS);
        let other = AppPassword::parse(b"kq7mvz2c9hxtp4wf").unwrap();
        assert_ne!(code.lookup_tag(), other.lookup_tag());
    }

    #[test]
    fn debug_never_shows_the_code() {
        let code = sample();
        let shown = code.display_grouped();
        let debug = format!("{code:?}");
        assert!(!debug.contains(&shown[..4]));
    }
}
