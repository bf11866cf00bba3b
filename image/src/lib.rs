//! The geolb filter module as an OCI image, written as an OCI image layout (the
//! directory skopeo, crane and oras read: `oci-layout`, `index.json`, `blobs/sha256/`)
//! and read back the way Istio's image fetcher reads a pulled image.
//!
//! The image is the Wasm image specification's *compat* variant: a plain OCI image whose
//! one layer is a tar+gzip holding `plugin.wasm` (why: docs/module-image.md). Every byte
//! is a function of the module and the tag, and the tag lives only in `index.json`, so
//! the same module always has the same manifest digest: the value a WasmPlugin's
//! `sha256` pins for an `oci://` URL.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder, read::GzDecoder};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The file Istio looks for in the last layer.
pub const MODULE_FILE_NAME: &str = "plugin.wasm";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The tag of a manifest in `index.json` (what `skopeo copy oci:DIR:TAG` selects).
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

// Variants the reader accepts because Istio does (not written here).
const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const WASM_ARTIFACT_LAYER_MEDIA_TYPE: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// Fixed: another level (or another deflate implementation) gives other bytes, so another
/// layer digest and manifest digest.
const GZIP_LEVEL: u32 = 9;
/// gzip's "unknown" OS byte, so the header does not depend on the build machine.
const GZIP_OS_UNKNOWN: u8 = 255;
const MODULE_MODE: u32 = 0o644;
/// Istio's default cap on a module (`MaxWasmBinarySizeBytes`, 256 MiB).
const MAX_MODULE_BYTES: u64 = 256 << 20;
const WASM_MAGIC: &[u8] = b"\0asm";

/// Why an image could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: {source}")]
    Archive {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// An OCI content descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest (OCI, or Docker schema 2 when read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `index.json` of a layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// The image configuration: only the required fields, no timestamps.
#[derive(Serialize)]
struct ImageConfig<'a> {
    architecture: &'a str,
    os: &'a str,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutVersion {
    image_layout_version: String,
}

/// The image of one module, in memory.
#[derive(Clone, Debug)]
pub struct Image {
    tag: String,
    manifest_digest: String,
    index: Vec<u8>,
    /// digest -> content: config, layer, manifest.
    blobs: BTreeMap<String, Vec<u8>>,
}

impl Image {
    /// The image of `module`, tagged `tag` in the index.
    pub fn build(module: &[u8], tag: &str) -> Result<Image, Error> {
        check_tag(tag)?;
        let tar = layer_tar(module)?;
        let layer = gzip(&tar)?;
        // Go's names for WebAssembly on WASI preview 1, as the image spec asks for
        // GOOS/GOARCH values. Istio does not look at the platform of a single manifest.
        let config = to_json(
            "image config",
            &ImageConfig {
                architecture: "wasm",
                os: "wasip1",
                rootfs: RootFs {
                    kind: "layers",
                    diff_ids: vec![digest_of(&tar)],
                },
            },
        )?;
        let manifest = to_json(
            "manifest",
            &Manifest {
                schema_version: 2,
                media_type: Some(MANIFEST_MEDIA_TYPE.into()),
                config: descriptor(CONFIG_MEDIA_TYPE, &config),
                layers: vec![descriptor(LAYER_MEDIA_TYPE, &layer)],
                annotations: BTreeMap::from([
                    (
                        "org.opencontainers.image.title".into(),
                        "geolb-filter".into(),
                    ),
                    (
                        "org.opencontainers.image.description".into(),
                        "geolb proxy-wasm HTTP filter (Wasm image compat variant: plugin.wasm)"
                            .into(),
                    ),
                    (
                        "org.opencontainers.image.licenses".into(),
                        env!("CARGO_PKG_LICENSE").into(),
                    ),
                ]),
            },
        )?;
        let mut manifest_descriptor = descriptor(MANIFEST_MEDIA_TYPE, &manifest);
        manifest_descriptor
            .annotations
            .insert(REF_NAME_ANNOTATION.into(), tag.into());
        let manifest_digest = manifest_descriptor.digest.clone();
        let index = to_json(
            "index",
            &Index {
                schema_version: 2,
                media_type: Some(INDEX_MEDIA_TYPE.into()),
                manifests: vec![manifest_descriptor],
            },
        )?;
        let blobs = [config, layer, manifest]
            .into_iter()
            .map(|b| (digest_of(&b), b))
            .collect();
        Ok(Image {
            tag: tag.into(),
            manifest_digest,
            index,
            blobs,
        })
    }

    /// `sha256:<hex>` of the manifest: what a registry and Istio call the image's digest.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The bytes of `index.json`.
    pub fn index_json(&self) -> &[u8] {
        &self.index
    }

    /// Every blob (config, layer, manifest) by digest.
    pub fn blobs(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.blobs
    }

    /// Writes the layout to `dir`, replacing what was there: staged in `<dir>.tmp` and
    /// renamed, so `dir` never holds a half-written image or stale blobs.
    pub fn write_layout(&self, dir: &Path) -> Result<(), Error> {
        let name = dir
            .file_name()
            .ok_or_else(|| Error::Invalid(format!("{} is not a directory name", dir.display())))?;
        let mut staged_name = name.to_os_string();
        staged_name.push(".tmp");
        let staged = dir.with_file_name(staged_name);
        if staged.exists() {
            std::fs::remove_dir_all(&staged).map_err(io_at(&staged))?;
        }
        let blob_dir = staged.join("blobs").join("sha256");
        std::fs::create_dir_all(&blob_dir).map_err(io_at(&blob_dir))?;
        let layout = to_json(
            "oci-layout",
            &LayoutVersion {
                image_layout_version: "1.0.0".into(),
            },
        )?;
        write(&staged.join("oci-layout"), &layout)?;
        for (digest, bytes) in &self.blobs {
            write(&blob_dir.join(digest_hex(digest)?), bytes)?;
        }
        write(&staged.join("index.json"), &self.index)?;
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io_at(dir))?;
        }
        std::fs::rename(&staged, dir).map_err(io_at(dir))
    }
}

/// An image read from a layout.
#[derive(Clone, Debug)]
pub struct LayoutImage {
    /// Its `org.opencontainers.image.ref.name` in `index.json`, if any.
    pub tag: Option<String>,
    /// `sha256:<hex>` of the manifest blob (checked against the blob's bytes).
    pub manifest_digest: String,
    pub manifest: Manifest,
    /// The module Istio would extract.
    pub module: Vec<u8>,
}

impl LayoutImage {
    /// The manifest digest without `sha256:` (the form of a WasmPlugin's `sha256`).
    pub fn manifest_digest_hex(&self) -> &str {
        self.manifest_digest
            .strip_prefix("sha256:")
            .unwrap_or(&self.manifest_digest)
    }
}

/// Reads the image tagged `tag` (or the only image) of the layout in `dir`, checking
/// every blob against its digest and size, and extracts the module as Istio does.
pub fn read_layout(dir: &Path, tag: Option<&str>) -> Result<LayoutImage, Error> {
    let layout_file = dir.join("oci-layout");
    let layout: LayoutVersion = from_json(&layout_file, &read(&layout_file)?)?;
    if layout.image_layout_version != "1.0.0" {
        return Err(Error::Invalid(format!(
            "{}: image layout version {}, expected 1.0.0",
            layout_file.display(),
            layout.image_layout_version
        )));
    }
    let index_file = dir.join("index.json");
    let index: Index = from_json(&index_file, &read(&index_file)?)?;
    let tag_of = |d: &Descriptor| d.annotations.get(REF_NAME_ANNOTATION).cloned();
    let chosen = match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|d| tag_of(d).as_deref() == Some(t)),
        None if index.manifests.len() == 1 => index.manifests.first(),
        None => None,
    };
    let Some(desc) = chosen else {
        let tags: Vec<String> = index.manifests.iter().filter_map(tag_of).collect();
        return Err(Error::Invalid(format!(
            "{}: no image {} (tags: {})",
            index_file.display(),
            tag.map_or("(untagged, the only one)".to_string(), |t| format!(
                "tagged {t}"
            )),
            tags.join(", ")
        )));
    };
    if desc.media_type != MANIFEST_MEDIA_TYPE && desc.media_type != DOCKER_MANIFEST_MEDIA_TYPE {
        return Err(Error::Invalid(format!(
            "{}: {} is a {}, not an image manifest",
            index_file.display(),
            desc.digest,
            desc.media_type
        )));
    }
    let manifest_bytes = read_blob(dir, desc)?;
    let manifest: Manifest = from_json(&blob_path(dir, desc)?, &manifest_bytes)?;
    let module = module_of(&manifest, |d| read_blob(dir, d))?;
    Ok(LayoutImage {
        tag: tag_of(desc),
        manifest_digest: desc.digest.clone(),
        manifest,
        module,
    })
}

/// The module in an image, by Istio 1.30's rules (pkg/wasm/imagefetcher.go): a Docker
/// schema 2 manifest's last layer must be a Docker tar+gzip layer holding `plugin.wasm`;
/// otherwise the last layer is an OCI tar+gzip layer holding it (compat variant), or
/// the image has exactly two layers, one of them the raw module (OCI artifact variant).
pub fn module_of(
    manifest: &Manifest,
    mut blob: impl FnMut(&Descriptor) -> Result<Vec<u8>, Error>,
) -> Result<Vec<u8>, Error> {
    let last = manifest
        .layers
        .last()
        .ok_or_else(|| Error::Invalid("the image has no layers".into()))?;
    let module = if manifest.media_type.as_deref() == Some(DOCKER_MANIFEST_MEDIA_TYPE) {
        if last.media_type != DOCKER_LAYER_MEDIA_TYPE {
            return Err(Error::Invalid(format!(
                "Docker image: last layer is {}, expected {DOCKER_LAYER_MEDIA_TYPE}",
                last.media_type
            )));
        }
        plugin_from_layer(&blob(last)?)?
    } else {
        let compat = if last.media_type == LAYER_MEDIA_TYPE {
            plugin_from_layer(&blob(last)?)
        } else {
            Err(Error::Invalid(format!(
                "last layer is {}, expected {LAYER_MEDIA_TYPE}",
                last.media_type
            )))
        };
        match compat {
            Ok(m) => m,
            Err(compat) => {
                let wasm_layer = manifest
                    .layers
                    .iter()
                    .find(|l| l.media_type == WASM_ARTIFACT_LAYER_MEDIA_TYPE);
                match (manifest.layers.len(), wasm_layer) {
                    (2, Some(l)) => blob(l)?,
                    _ => {
                        return Err(Error::Invalid(format!(
                            "not a Wasm image: as compat variant: {compat}; as OCI artifact: \
                             needs 2 layers, one of {WASM_ARTIFACT_LAYER_MEDIA_TYPE}"
                        )));
                    }
                }
            }
        }
    };
    if !module.starts_with(WASM_MAGIC) {
        return Err(Error::Invalid(
            "the extracted module is not a Wasm binary".into(),
        ));
    }
    Ok(module)
}

/// The first entry named `plugin.wasm` (in any directory) of a tar+gzip layer.
fn plugin_from_layer(layer: &[u8]) -> Result<Vec<u8>, Error> {
    let archive_err = |source| Error::Archive {
        what: "reading the layer as tar+gzip",
        source,
    };
    let mut archive = tar::Archive::new(GzDecoder::new(layer).take(MAX_MODULE_BYTES));
    for entry in archive.entries().map_err(archive_err)? {
        let mut entry = entry.map_err(archive_err)?;
        let is_module = entry
            .path()
            .map_err(archive_err)?
            .file_name()
            .is_some_and(|n| n == MODULE_FILE_NAME);
        if is_module {
            let mut module = Vec::new();
            entry.read_to_end(&mut module).map_err(archive_err)?;
            return Ok(module);
        }
    }
    Err(Error::Invalid(format!(
        "{MODULE_FILE_NAME} not found in the layer"
    )))
}

/// A tar holding only `plugin.wasm`: mode 0644, uid/gid 0, no user or group names,
/// mtime 0 (the ustar header has nothing else that varies).
fn layer_tar(module: &[u8]) -> Result<Vec<u8>, Error> {
    let tar_err = |source| Error::Archive {
        what: "writing the layer's tar",
        source,
    };
    let mut header = tar::Header::new_ustar();
    header.set_path(MODULE_FILE_NAME).map_err(tar_err)?;
    header.set_size(module.len() as u64);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(MODULE_MODE);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, module).map_err(tar_err)?;
    builder.into_inner().map_err(tar_err)
}

/// gzip with a fixed level, header mtime 0, no file name, OS "unknown".
fn gzip(data: &[u8]) -> Result<Vec<u8>, Error> {
    let gz_err = |source| Error::Archive {
        what: "gzipping the layer",
        source,
    };
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(Vec::new(), Compression::new(GZIP_LEVEL));
    encoder.write_all(data).map_err(gz_err)?;
    encoder.finish().map_err(gz_err)
}

/// Tags as the OCI distribution spec allows them.
fn check_tag(tag: &str) -> Result<(), Error> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{tag:?} is not an image tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"
        )))
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: digest_of(bytes),
        size: bytes.len() as u64,
        annotations: BTreeMap::new(),
    }
}

/// The hex of a `sha256:` digest, refusing anything else (it becomes a file name).
fn digest_hex(digest: &str) -> Result<&str, Error> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| Error::Invalid(format!("{digest:?} is not sha256:<64 hex digits>")))
}

fn blob_path(dir: &Path, d: &Descriptor) -> Result<PathBuf, Error> {
    Ok(dir
        .join("blobs")
        .join("sha256")
        .join(digest_hex(&d.digest)?))
}

fn read_blob(dir: &Path, d: &Descriptor) -> Result<Vec<u8>, Error> {
    let path = blob_path(dir, d)?;
    let bytes = read(&path)?;
    if bytes.len() as u64 != d.size {
        return Err(Error::Invalid(format!(
            "{}: {} bytes, the descriptor says {}",
            path.display(),
            bytes.len(),
            d.size
        )));
    }
    let actual = digest_of(&bytes);
    if actual != d.digest {
        return Err(Error::Invalid(format!(
            "{}: content has digest {actual}",
            path.display()
        )));
    }
    Ok(bytes)
}

fn to_json<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|source| Error::Json {
        what: what.into(),
        source,
    })
}

fn from_json<T: for<'de> Deserialize<'de>>(path: &Path, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(io_at(path))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(io_at(path))
}

#[cfg(test)]
mod tests;
