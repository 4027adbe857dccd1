//! Per-worker random values for the exchange protocol: the 128-character state (Otoroshi's
//! `extendedToken` alphabet) and the UUIDv4-shaped `jti`. A ChaCha12 generator is
//! seeded once (from the OS or a given seed) and then never makes a syscall.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha12Rng;

/// Otoroshi's `extendedToken` alphabet: `A-Z a-z 0-9` plus `*$%)([]!=+-_:/;.><&` (81 chars).
/// None of them needs escaping in JSON; all are valid in an HTTP header value.
pub const STATE_ALPHABET: &[u8; 81] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789*$%)([]!=+-_:/;.><&";

/// Length of a state value.
pub const STATE_LEN: usize = 128;
/// Length of a `jti`.
pub const JTI_LEN: usize = 36;

/// Largest multiple of the alphabet size that fits in a byte: bytes at or above it are
/// rejected so that `byte % 81` is uniform.
const REJECT_FROM: u8 = (256 / STATE_ALPHABET.len() * STATE_ALPHABET.len()) as u8;

/// Byte → state character for every byte value (`STATE_ALPHABET[b % 81]`), so the draw loop is
/// one load per byte; only bytes below [`REJECT_FROM`] are kept.
const BYTE_TO_CHAR: [u8; 256] = {
    let mut map = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        map[b] = STATE_ALPHABET[b % STATE_ALPHABET.len()];
        b += 1;
    }
    map
};

/// A fast CSPRNG owned by one worker. Not `Sync` by design: one per thread.
pub struct StateGenerator {
    rng: ChaCha12Rng,
}

impl std::fmt::Debug for StateGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateGenerator { .. }")
    }
}

impl StateGenerator {
    /// A generator from a fixed seed (tests, reproducible benches).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        StateGenerator {
            rng: ChaCha12Rng::from_seed(seed),
        }
    }

    /// A generator seeded from the OS (one `getrandom` call). Called once per worker at start.
    pub fn from_os() -> Result<Self, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)?;
        Ok(Self::from_seed(seed))
    }

    /// Fills `out` with 128 characters drawn uniformly from [`STATE_ALPHABET`] (rejection
    /// sampling on bytes). Cost: 192 random bytes from ChaCha12 (three 64-byte pools, rarely a
    /// fourth), no syscall, no allocation.
    ///
    /// The draw loop is branch-free: every byte of a pool is mapped and written, and the write
    /// position only advances for accepted bytes; the scratch buffer has room for one pool past
    /// the end. Output and RNG consumption are those of the obvious loop that stops at the
    /// 128th accepted byte and drops the rest of that pool (see the test below).
    pub fn fill_state(&mut self, out: &mut [u8; STATE_LEN]) {
        const POOL: usize = 64;
        let mut buf = [0u8; STATE_LEN + POOL];
        let mut pool = [0u8; POOL];
        let mut n = 0;
        while n < STATE_LEN {
            self.rng.fill_bytes(&mut pool);
            for &b in &pool {
                // n < STATE_LEN at the start of a pool and grows by at most POOL within it.
                buf[n] = BYTE_TO_CHAR[usize::from(b)];
                n += usize::from(b < REJECT_FROM);
            }
        }
        out.copy_from_slice(&buf[..STATE_LEN]);
    }

    /// Fills `out` with a random UUIDv4 in its standard 36-character form
    /// (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, lowercase hex). Otoroshi's generator produces a
    /// 37-character look-alike; that quirk is deliberately not copied, since
    /// nobody can rely on the length of a random id.
    pub fn fill_jti(&mut self, out: &mut [u8; JTI_LEN]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        let mut pos = 0;
        for (i, b) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[pos] = b'-';
                pos += 1;
            }
            out[pos] = HEX[usize::from(b >> 4)];
            out[pos + 1] = HEX[usize::from(b & 0x0f)];
            pos += 2;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_otoroshis() {
        let mut sorted = STATE_ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 81);
        assert!(!STATE_ALPHABET.contains(&b'"') && !STATE_ALPHABET.contains(&b'\\'));
        assert_eq!(REJECT_FROM, 243);
    }

    /// The straightforward rejection loop `fill_state` must match byte for byte.
    fn reference_fill_state(g: &mut StateGenerator, out: &mut [u8; STATE_LEN]) {
        let mut pool = [0u8; 64];
        let mut used = pool.len();
        let mut i = 0;
        while i < STATE_LEN {
            if used == pool.len() {
                g.rng.fill_bytes(&mut pool);
                used = 0;
            }
            let b = pool[used];
            used += 1;
            if b < REJECT_FROM {
                out[i] = STATE_ALPHABET[usize::from(b) % STATE_ALPHABET.len()];
                i += 1;
            }
        }
    }

    #[test]
    fn branch_free_draw_matches_the_reference_loop() {
        for seed in 0..20u8 {
            let mut fast = StateGenerator::from_seed([seed; 32]);
            let mut slow = StateGenerator::from_seed([seed; 32]);
            let (mut a, mut b) = ([0; STATE_LEN], [0; STATE_LEN]);
            let (mut ja, mut jb) = ([0; JTI_LEN], [0; JTI_LEN]);
            for _ in 0..50 {
                fast.fill_state(&mut a);
                reference_fill_state(&mut slow, &mut b);
                assert_eq!(a, b);
                // Same RNG consumption: the next draws agree too.
                fast.fill_jti(&mut ja);
                slow.fill_jti(&mut jb);
                assert_eq!(ja, jb);
            }
        }
    }

    #[test]
    fn states_use_the_whole_alphabet_evenly() {
        let mut g = StateGenerator::from_seed([7; 32]);
        let mut counts = [0u32; 256];
        let mut state = [0u8; STATE_LEN];
        for _ in 0..1000 {
            g.fill_state(&mut state);
            for &b in &state {
                counts[usize::from(b)] += 1;
            }
        }
        // 128000 draws over 81 symbols: ~1580 each; a biased or broken mapping falls far out.
        for (b, &c) in counts.iter().enumerate() {
            if STATE_ALPHABET.contains(&(b as u8)) {
                assert!(
                    (1300..1900).contains(&c),
                    "{} drawn {c} times",
                    b as u8 as char
                );
            } else {
                assert_eq!(c, 0);
            }
        }
    }

    #[test]
    fn states_differ_and_seeds_matter() {
        let mut a = StateGenerator::from_seed([1; 32]);
        let mut b = StateGenerator::from_seed([1; 32]);
        let mut c = StateGenerator::from_os().unwrap();
        let (mut sa, mut sb, mut sc) = ([0; STATE_LEN], [0; STATE_LEN], [0; STATE_LEN]);
        a.fill_state(&mut sa);
        b.fill_state(&mut sb);
        c.fill_state(&mut sc);
        assert_eq!(sa, sb);
        assert_ne!(sa, sc);
        a.fill_state(&mut sa);
        assert_ne!(sa, sb);
    }

    #[test]
    fn jti_is_a_uuid_v4() {
        let mut g = StateGenerator::from_seed([3; 32]);
        let mut jti = [0u8; JTI_LEN];
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            g.fill_jti(&mut jti);
            let s = std::str::from_utf8(&jti).unwrap();
            let groups: Vec<&str> = s.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(s
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert_eq!(groups[2].as_bytes()[0], b'4');
            assert!(b"89ab".contains(&groups[3].as_bytes()[0]));
            seen.insert(jti);
        }
        assert_eq!(seen.len(), 200);
    }
}
