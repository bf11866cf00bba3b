//! The `geolb` binary; everything lives in the library (see `geolb --help`).

fn main() -> std::process::ExitCode {
    geolb::cli::run()
}
