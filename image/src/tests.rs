use std::io::Read;

use super::*;

/// A tiny module: the Wasm header and a few payload bytes.
fn module(payload: &[u8]) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend_from_slice(payload);
    m
}

fn manifest_of(image: &Image) -> Manifest {
    serde_json::from_slice(&image.blobs()[image.manifest_digest()]).unwrap()
}

fn layer_of(image: &Image) -> &[u8] {
    let manifest = manifest_of(image);
    assert_eq!(manifest.layers.len(), 1);
    &image.blobs()[&manifest.layers[0].digest]
}

/// Every file under `dir`, relative path -> content.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn the_same_module_gives_the_same_bytes_and_digest() {
    let m = module(b"same");
    let (a, b) = (
        Image::build(&m, "0.1.0").unwrap(),
        Image::build(&m, "0.1.0").unwrap(),
    );
    assert_eq!(a.manifest_digest(), b.manifest_digest());
    assert_eq!(a.index_json(), b.index_json());
    assert_eq!(a.blobs(), b.blobs());
    let dir = tempfile::tempdir().unwrap();
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    a.write_layout(&da).unwrap();
    b.write_layout(&db).unwrap();
    let ta = tree(&da);
    assert_eq!(ta, tree(&db));
    assert_eq!(ta.len(), 5, "{:?}", ta.keys()); // oci-layout, index.json, 3 blobs
    assert_eq!(ta["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
}

#[test]
fn another_module_gives_another_digest_and_the_tag_only_changes_the_index() {
    let a = Image::build(&module(b"a"), "0.1.0").unwrap();
    let b = Image::build(&module(b"b"), "0.1.0").unwrap();
    assert_ne!(a.manifest_digest(), b.manifest_digest());
    let retagged = Image::build(&module(b"a"), "0.2.0").unwrap();
    assert_eq!(a.manifest_digest(), retagged.manifest_digest());
    assert_eq!(a.blobs(), retagged.blobs());
    assert_ne!(a.index_json(), retagged.index_json());
}

/// Guards the format: any change to the tar, the gzip stream, the config or the
/// manifest changes this digest, and with it every `oci://` pin (scripts/bless.sh).
#[test]
fn the_format_is_pinned() {
    let image = Image::build(&module(b"pinned"), "0.1.0").unwrap();
    assert_eq!(
        image.manifest_digest(),
        "sha256:bf63bcde1f119040b54ac87d5068dca1be15d15c6e35d09ec797671b0265f161"
    );
}

#[test]
fn the_layer_ungzips_and_untars_to_exactly_plugin_wasm() {
    let m = module(&[7; 3000]);
    let image = Image::build(&m, "0.1.0").unwrap();
    let layer = layer_of(&image);
    // gzip header: magic, deflate, no flags (no file name), mtime 0, OS unknown.
    assert_eq!(&layer[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&layer[4..8], &[0, 0, 0, 0]);
    assert_eq!(layer[9], 255);
    let mut tar_bytes = Vec::new();
    GzDecoder::new(layer).read_to_end(&mut tar_bytes).unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut entries = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        entries.push((e.path().unwrap().into_owned(), h, content));
    }
    assert_eq!(entries.len(), 1);
    let (path, h, content) = &entries[0];
    assert_eq!(path, Path::new(MODULE_FILE_NAME));
    assert_eq!(content, &m);
    assert_eq!(h.entry_type(), tar::EntryType::Regular);
    assert_eq!(
        (
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap()
        ),
        (0o644, 0, 0, 0)
    );
    assert_eq!(h.username_bytes(), Some(&b""[..]));
    assert_eq!(h.groupname_bytes(), Some(&b""[..]));
    // The config's diff id is the uncompressed layer's digest.
    let manifest = manifest_of(&image);
    let config: serde_json::Value =
        serde_json::from_slice(&image.blobs()[&manifest.config.digest]).unwrap();
    assert_eq!(
        config["rootfs"],
        serde_json::json!({"type": "layers", "diff_ids": [digest_of(&tar_bytes)]})
    );
}

#[test]
fn the_manifest_digest_is_the_manifest_blob_s_sha256_and_the_index_points_at_it() {
    let image = Image::build(&module(b"index"), "1.2.3").unwrap();
    let index: Index = serde_json::from_slice(image.index_json()).unwrap();
    assert_eq!(index.schema_version, 2);
    assert_eq!(index.media_type.as_deref(), Some(INDEX_MEDIA_TYPE));
    assert_eq!(index.manifests.len(), 1);
    let d = &index.manifests[0];
    let manifest_blob = &image.blobs()[&d.digest];
    assert_eq!(d.digest, image.manifest_digest());
    assert_eq!(digest_of(manifest_blob), image.manifest_digest());
    assert_eq!(d.size, manifest_blob.len() as u64);
    assert_eq!(d.media_type, MANIFEST_MEDIA_TYPE);
    assert_eq!(d.annotations[REF_NAME_ANNOTATION], "1.2.3");
    let manifest = manifest_of(&image);
    assert_eq!(manifest.media_type.as_deref(), Some(MANIFEST_MEDIA_TYPE));
    assert_eq!(manifest.config.media_type, CONFIG_MEDIA_TYPE);
    assert_eq!(manifest.layers[0].media_type, LAYER_MEDIA_TYPE);
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        let blob = &image.blobs()[&d.digest];
        assert_eq!(
            (digest_of(blob), blob.len() as u64),
            (d.digest.clone(), d.size)
        );
    }
    assert_eq!(image.blobs().len(), 3);
}

#[test]
fn a_written_layout_reads_back_as_istio_would_extract_it() {
    let m = module(b"round trip");
    let image = Image::build(&m, "0.1.0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    image.write_layout(&layout).unwrap();
    // Writing again replaces the layout (no staging directory left behind).
    Image::build(&module(b"other"), "0.1.0")
        .unwrap()
        .write_layout(&layout)
        .unwrap();
    image.write_layout(&layout).unwrap();
    assert!(!dir.path().join("oci.tmp").exists());
    assert_eq!(tree(&layout).len(), 5);
    for tag in [None, Some("0.1.0")] {
        let read = read_layout(&layout, tag).unwrap();
        assert_eq!(read.module, m);
        assert_eq!(read.manifest_digest, image.manifest_digest());
        assert_eq!(
            format!("sha256:{}", read.manifest_digest_hex()),
            image.manifest_digest()
        );
        assert_eq!(read.tag.as_deref(), Some("0.1.0"));
    }
    let e = read_layout(&layout, Some("9.9.9")).unwrap_err().to_string();
    assert!(e.contains("no image tagged 9.9.9 (tags: 0.1.0)"), "{e}");
}

#[test]
fn a_tampered_blob_is_refused() {
    let image = Image::build(&module(b"tamper"), "0.1.0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    image.write_layout(&layout).unwrap();
    let manifest = manifest_of(&image);
    let layer_path = blob_path(&layout, &manifest.layers[0]).unwrap();
    let mut bytes = std::fs::read(&layer_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&layer_path, bytes).unwrap();
    let e = read_layout(&layout, None).unwrap_err().to_string();
    assert!(e.contains("content has digest"), "{e}");
}

#[test]
fn istio_s_other_variants_are_read_and_non_wasm_images_refused() {
    let m = module(b"artifact");
    let blobs = BTreeMap::from([
        (digest_of(b"{}"), b"{}".to_vec()),
        (digest_of(&m), m.clone()),
    ]);
    let artifact = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        config: descriptor("application/vnd.module.wasm.config.v1+json", b"{}"),
        layers: vec![
            descriptor("application/vnd.module.wasm.config.v1+json", b"{}"),
            descriptor(WASM_ARTIFACT_LAYER_MEDIA_TYPE, &m),
        ],
        annotations: BTreeMap::new(),
    };
    let fetch = |d: &Descriptor| Ok(blobs[&d.digest].clone());
    assert_eq!(module_of(&artifact, fetch).unwrap(), m);
    // One layer of the artifact type: not two layers, so neither variant.
    let mut one = artifact.clone();
    one.layers.remove(0);
    let e = module_of(&one, fetch).unwrap_err().to_string();
    assert!(e.contains("needs 2 layers"), "{e}");
    // A compat layer holding something that is not Wasm.
    let not_wasm = gzip(&layer_tar(b"hello").unwrap()).unwrap();
    let compat = Manifest {
        layers: vec![descriptor(LAYER_MEDIA_TYPE, &not_wasm)],
        ..artifact
    };
    let e = module_of(&compat, |_| Ok(not_wasm.clone()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a Wasm binary"), "{e}");
}

#[test]
fn tags_outside_the_distribution_grammar_are_refused() {
    for bad in ["", ".x", "a:b", "a/b", &"x".repeat(129)] {
        assert!(Image::build(&module(b""), bad).is_err(), "{bad:?}");
    }
    for good in ["0.1.0", "latest", "_x", "v1.2.3-rc.1"] {
        assert!(Image::build(&module(b""), good).is_ok(), "{good:?}");
    }
}
