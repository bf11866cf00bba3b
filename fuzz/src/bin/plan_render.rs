//! AFL target `plan_render`: see [`geolb_fuzz::plan_render`].
fn main() {
    afl::fuzz!(|data: &[u8]| geolb_fuzz::plan_render(data));
}
