//! The proxies' dice. The core takes its randomness as input; this is the generator
//! the filter rolls it with, and `geolb simulate`'s proxies roll the same one, so a
//! simulated proxy's ramps and partial shares fall as a real one's do.

/// One xorshift64* step from `state` (never 0): the next state, and the high half of
/// the multiplied state, its well-mixed part.
pub fn roll(state: u64) -> (u64, u32) {
    let mut x = state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    let number = u32::try_from(x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32).unwrap_or(0);
    (x, number)
}

#[cfg(test)]
mod tests {
    use super::roll;

    #[test]
    fn a_roll_is_the_xorshift64_star_step() {
        // From the algorithm by hand: 1 -> 1 ^ (1 << 25) = 33554433.
        assert_eq!(roll(1), (33_554_433, 1_206_177_355));
    }

    #[test]
    fn rolls_spread_over_the_range_and_never_stick_at_zero() {
        let (mut state, mut sum, mut below_half) = (0x9E37_79B9_7F4A_7C15_u64, 0u64, 0u32);
        for _ in 0..100_000 {
            let (next, number) = roll(state);
            assert_ne!(next, 0);
            state = next;
            sum += u64::from(number);
            below_half += u32::from(number < u32::MAX / 2);
        }
        let mean = sum / 100_000;
        assert!(
            mean.abs_diff(u64::from(u32::MAX / 2)) < u64::from(u32::MAX / 100),
            "{mean}"
        );
        assert!((49_000..51_000).contains(&below_half), "{below_half}");
    }
}
