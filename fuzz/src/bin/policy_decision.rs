//! AFL target `policy_decision`: see [`geolb_fuzz::policy_decision`].
fn main() {
    afl::fuzz!(|data: &[u8]| geolb_fuzz::policy_decision(data));
}
