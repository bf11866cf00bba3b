//! Where the harness finds its tools: the Envoy binary and the wasm modules.
//!
//! Everything is looked up relative to the repository root, so the tests work from any
//! working directory. Missing pieces fail with the command that provides them.

use std::path::{Path, PathBuf};

/// The wasm module of the real filter, built by `scripts/build-wasm.sh`.
pub const GEOLB_WASM: &str = "geolb_filter.wasm";
/// The real filter's OCI image layout (in the wasm directory), by `scripts/build-wasm.sh`.
pub const OCI_LAYOUT: &str = "oci";
/// Its manifest digest, `sha256:<hex>`, by `scripts/build-wasm.sh`.
pub const OCI_DIGEST: &str = "geolb_filter.oci-digest";
/// The empty proxy-wasm filter (benchmark baseline), built by `scripts/build-wasm.sh`.
pub const EMPTY_WASM: &str = "empty_filter.wasm";

/// The repository root: the nearest ancestor holding `Cargo.toml` and `scripts/setup.sh`,
/// searched from the `CARGO_MANIFEST_DIR` cargo sets when running tests, then from this
/// crate's compile-time directory, then from the working directory. (The run-time value
/// comes first because cargo may reuse a build made from another checkout.)
pub fn repo_root() -> PathBuf {
    let starts = [
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
        std::env::current_dir().ok(),
    ];
    for start in starts.into_iter().flatten() {
        if let Some(root) = start
            .ancestors()
            .find(|d| d.join("Cargo.toml").is_file() && d.join("scripts/setup.sh").is_file())
        {
            return root.to_path_buf();
        }
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The real Envoy binary: `$GEOLB_ENVOY` if set, else the one `scripts/setup.sh` installs
/// into `.venv/lib/python3*/site-packages/envoy/_bin/envoy` (not the Python wrapper).
pub fn try_envoy_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("GEOLB_ENVOY") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("GEOLB_ENVOY={} is not a file", p.display()))
        };
    }
    let lib = repo_root().join(".venv").join("lib");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(&lib)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
                .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates.pop().ok_or_else(|| {
        format!(
            "no Envoy binary found under {} and GEOLB_ENVOY is not set: run scripts/setup.sh",
            lib.display()
        )
    })
}

/// Like [`try_envoy_binary`], panicking with the hint on failure.
pub fn envoy_binary() -> PathBuf {
    try_envoy_binary().unwrap_or_else(|e| panic!("{e}"))
}

/// The directory the wasm modules are read from: `$GEOLB_WASM_DIR` or `<repo>/wasm-out`.
pub fn wasm_dir() -> PathBuf {
    std::env::var_os("GEOLB_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("wasm-out"))
}

/// A wasm module in [`wasm_dir`] by file name (e.g. a test-only build the lead adds),
/// or an error naming the command that builds it.
pub fn try_wasm_module(file_name: &str) -> Result<PathBuf, String> {
    let p = wasm_dir().join(file_name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "wasm module {} is missing: run scripts/build-wasm.sh",
            p.display()
        ))
    }
}

/// Like [`try_wasm_module`], panicking with the hint on failure.
pub fn wasm_module(file_name: &str) -> PathBuf {
    try_wasm_module(file_name).unwrap_or_else(|e| panic!("{e}"))
}

/// `wasm-out/geolb_filter.wasm` (panics with a hint if it was not built).
pub fn geolb_wasm() -> PathBuf {
    wasm_module(GEOLB_WASM)
}

/// `wasm-out/oci`: the OCI image layout of the real filter, written by
/// `scripts/build-wasm.sh` (panics with a hint if it was not built).
pub fn geolb_image_layout() -> PathBuf {
    let dir = wasm_dir().join(OCI_LAYOUT);
    if !dir.join("index.json").is_file() {
        panic!(
            "OCI image layout {} is missing: run scripts/build-wasm.sh",
            dir.display()
        );
    }
    dir
}

/// `wasm-out/geolb_filter.oci-digest`: the image's manifest digest (`sha256:<hex>`).
pub fn geolb_image_digest() -> String {
    let file = wasm_dir().join(OCI_DIGEST);
    std::fs::read_to_string(&file)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/build-wasm.sh", file.display()))
}

/// `wasm-out/empty_filter.wasm` (panics with a hint if it was not built).
pub fn empty_wasm() -> PathBuf {
    wasm_module(EMPTY_WASM)
}
