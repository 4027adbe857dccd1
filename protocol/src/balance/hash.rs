//! The stable key hash of consistent hashing: xxHash64 (Yann Collet's XXH64, seed 0), written
//! out here so that its value never depends on a crate version, the host or the Rust release.
//!
//! Owns [`key_hash`] (the hash of a request's affinity key: a header, a cookie, the client
//! address) and [`xxhash64`] (the same function with a seed, which [`super::maglev`] uses to
//! place endpoint identities in its table). Several gateway hosts must send one key to the
//! same endpoint without talking to each other, so the value of these functions is part of the
//! wire contract between hosts: it is pinned by test vectors taken from the reference
//! implementation, and changing it is a breaking change (every sticky key moves once).
//!
//! `std::hash` is not usable for this: `DefaultHasher`'s algorithm is explicitly unspecified and
//! may change between Rust releases, and `RandomState` is seeded per process.
//!
//! Envoy hashes its hash-policy keys with the same function (xxHash64, seed 0), so a key maps
//! to the same 64-bit value in both.

/// XXH64's five primes (the xxHash specification, "XXH64 algorithm description").
const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

/// The 64-bit hash of an affinity key, STABLE across hosts, architectures, Rust versions and
/// releases of this crate: `xxhash64(bytes, 0)`.
///
/// Called once per request by the consistent-hashing policies, before
/// [`super::Maglev::lookup`]. Cost: about 1 ns per 8 bytes plus ~3 ns; no allocation, total
/// (any input, the empty slice included).
pub fn key_hash(bytes: &[u8]) -> u64 {
    xxhash64(bytes, 0)
}

/// xxHash64 of `bytes` with `seed` (the XXH64 specification; little-endian reads whatever the
/// host's byte order). Stable like [`key_hash`].
///
/// Called by [`key_hash`] and, twice per endpoint (seeds 0 and 1), by [`super::Maglev::build`].
/// Cost: one pass over `bytes`, 32 bytes per step; no allocation.
pub fn xxhash64(bytes: &[u8], seed: u64) -> u64 {
    let len = bytes.len() as u64;
    let mut data = bytes;
    let mut h = if data.len() >= 32 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        while let Some((stripe, rest)) = data.split_first_chunk::<32>() {
            v1 = round(v1, read_u64(&stripe[0..8]));
            v2 = round(v2, read_u64(&stripe[8..16]));
            v3 = round(v3, read_u64(&stripe[16..24]));
            v4 = round(v4, read_u64(&stripe[24..32]));
            data = rest;
        }
        let mut h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = merge(h, v1);
        h = merge(h, v2);
        h = merge(h, v3);
        merge(h, v4)
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(len);
    while let Some((lane, rest)) = data.split_first_chunk::<8>() {
        h ^= round(0, u64::from_le_bytes(*lane));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        data = rest;
    }
    if let Some((word, rest)) = data.split_first_chunk::<4>() {
        h ^= u64::from(u32::from_le_bytes(*word)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        data = rest;
    }
    for &byte in data {
        h ^= u64::from(byte).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    avalanche(h)
}

/// One accumulator round: `rotl(acc + lane·P2, 31)·P1`.
#[inline(always)]
fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

/// Folds one of the four accumulators into the hash (inputs of 32 bytes or more).
#[inline(always)]
fn merge(h: u64, acc: u64) -> u64 {
    (h ^ round(0, acc)).wrapping_mul(P1).wrapping_add(P4)
}

/// The final mix, so every input bit affects every output bit.
#[inline(always)]
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

/// Little-endian `u64` of the first 8 bytes (callers pass exactly 8; fewer read as 0, which
/// cannot happen with the stripe split above, and keeps the function free of panics).
#[inline(always)]
fn read_u64(bytes: &[u8]) -> u64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |b| u64::from_le_bytes(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input of the longer vectors: 0, 1, 2, … as bytes, so every path of the algorithm
    /// (32-byte stripes, 8-byte lanes, the 4-byte word, single bytes) is crossed by some length.
    fn counting(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    #[test]
    fn balance_key_hash_pinned_vectors() {
        // Outputs of the reference implementation (XXH64, seed 0). A change here moves every
        // sticky key on every host: never "update" these values to make the test pass.
        assert_eq!(key_hash(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(key_hash(b"a"), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(key_hash(b"abc"), 0x44BC_2CF5_AD77_0999);
        let vectors = [
            (4, 0xFFCE_D860_4453_CC1E),
            (7, 0x14CC_643F_630C_72D2),
            (8, 0x884A_1736_14B8_1B8D),
            (15, 0xA948_F5F0_F6AB_AC2D),
            (16, 0x44B6_EF2F_B841_69F7),
            (31, 0xC346_D2B5_9B4D_8EE1),
            (32, 0xCBF5_9C51_16FF_32B4),
            (33, 0x0C53_5D1A_CAFB_8EAD),
            (63, 0xE26A_A9E2_A95F_8E4F),
            (64, 0xF7C6_7301_DB67_13F0),
            (100, 0x6AC1_E580_3216_6597),
            (255, 0x0F7D_9750_7CAA_D693),
        ];
        for (len, expected) in vectors {
            assert_eq!(key_hash(&counting(len)), expected, "length {len}");
        }
    }

    #[test]
    fn balance_xxhash64_seeded_vectors() {
        // Maglev places an endpoint with seeds 0 (offset) and 1 (skip): both pinned, from the
        // reference implementation.
        let id = b"10.0.0.1:8080";
        assert_eq!(xxhash64(id, 0), 0xCB97_2177_068E_B685);
        assert_eq!(xxhash64(id, 1), 0x0DFC_E9EF_D349_B428);
        assert_eq!(key_hash(id), xxhash64(id, 0));
    }

    #[test]
    fn balance_key_hash_every_byte_matters() {
        // Flipping any one bit of a 40-byte key (stripes and tail) changes the hash.
        let base = counting(40);
        let h = key_hash(&base);
        for i in 0..base.len() {
            for bit in 0..8 {
                let mut k = base.clone();
                k[i] ^= 1 << bit;
                assert_ne!(key_hash(&k), h, "byte {i} bit {bit}");
            }
        }
        // A prefix never hashes like the whole (the length is mixed in).
        for len in 0..base.len() {
            assert_ne!(key_hash(&base[..len]), h);
        }
    }
}
