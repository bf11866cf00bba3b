//! AFL target `cluster_name`: see [`geolb_fuzz::cluster_name`].
fn main() {
    afl::fuzz!(|data: &[u8]| geolb_fuzz::cluster_name(data));
}
