//! The filter module's SHA-256 pin: from the plan, or computed from the local copy
//! of a `file://` module (the only case where the generator can see the bytes).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::plan::Filter;

/// Where the module is looked for when the plan names no local copy.
pub const DEFAULT_LOCAL_MODULE: &str = "wasm-out/geolb_filter.wasm";

/// Why the module could not be pinned.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ModuleError {
    /// The local module could not be read.
    #[error("cannot read the filter module {path} to compute its sha256: {source}")]
    #[diagnostic(
        code(geolb::module::unreadable),
        help(
            "build it with scripts/build-wasm.sh, pass --wasm PATH, or set filter.sha256 in the plan"
        )
    )]
    Unreadable {
        /// The path tried.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A remote module without a pin (validation reports this first).
    #[error("filter.url {0} is not a file:// module and filter.sha256 is not set")]
    #[diagnostic(
        code(geolb::module::unpinned),
        help("set filter.sha256 to the module's SHA-256")
    )]
    Unpinned(String),
}

/// The SHA-256 to render: the plan's, else the hash of the local module.
/// `plan_dir` resolves a relative `localModule`; `override_path` is `--wasm`.
pub fn sha256(
    filter: &Filter,
    plan_dir: &Path,
    override_path: Option<&Path>,
) -> Result<String, ModuleError> {
    if let Some(sha) = &filter.sha256 {
        return Ok(sha.clone());
    }
    if !filter.url.starts_with("file://") {
        return Err(ModuleError::Unpinned(filter.url.clone()));
    }
    let path = match (override_path, &filter.local_module) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(local)) => plan_dir.join(local),
        (None, None) => PathBuf::from(DEFAULT_LOCAL_MODULE),
    };
    let bytes = std::fs::read(&path).map_err(|source| ModuleError::Unreadable {
        path: path.clone(),
        source,
    })?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_modules_are_hashed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.wasm"), b"abc").unwrap();
        let filter: Filter = serde_json::from_value(
            serde_json::json!({"url": "file:///opt/m.wasm", "localModule": "m.wasm"}),
        )
        .unwrap();
        assert_eq!(
            sha256(&filter, dir.path(), None).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let missing: Filter = serde_json::from_value(
            serde_json::json!({"url": "file:///opt/m.wasm", "localModule": "nope.wasm"}),
        )
        .unwrap();
        assert!(matches!(
            sha256(&missing, dir.path(), None),
            Err(ModuleError::Unreadable { .. })
        ));
    }
}
