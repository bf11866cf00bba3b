//! The one hash the core uses: stable across builds and targets, so that every VM of
//! a proxy and the generator agree on fingerprints and shared-data keys.

/// 64-bit FNV-1a: tiny, stable across builds and targets (fingerprints, shared-data keys).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
