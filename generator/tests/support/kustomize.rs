//! What `kubectl apply -k DIR` would apply, resolved in memory from a render: the
//! kustomization's `resources` (files, and folders with their own kustomization),
//! recursively. Only the subset of kustomize geolb renders; `tests/examples.rs` checks
//! it against the real `kubectl kustomize`.

use std::collections::BTreeSet;

use geolb::render::Manifests;
use serde_json::Value as Json;

use super::crd::parse_yaml_stream;

/// One applied object and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub file: String,
    pub doc: Json,
}

impl Object {
    /// `group/kind/namespace/name`, as kustomize identifies a resource.
    pub fn id(&self) -> String {
        let api = self.doc["apiVersion"].as_str().unwrap_or("");
        let group = api.rsplit_once('/').map_or("", |(g, _)| g);
        format!(
            "{group}/{}/{}/{}",
            self.doc["kind"].as_str().unwrap_or(""),
            self.doc["metadata"]["namespace"].as_str().unwrap_or(""),
            self.doc["metadata"]["name"].as_str().unwrap_or("")
        )
    }

    /// Whether an Istio control plane reads it (networking, extensions, security,
    /// telemetry APIs; install.istio.io is istioctl's input, never applied).
    pub fn is_istio_config(&self) -> bool {
        let api = self.doc["apiVersion"].as_str().unwrap_or("");
        api.split_once('/')
            .is_some_and(|(group, _)| group.ends_with(".istio.io") && group != "install.istio.io")
    }
}

/// Folders of a render that hold a kustomization.yaml.
pub fn folders(manifests: &Manifests) -> Vec<String> {
    manifests
        .keys()
        .filter_map(|k| k.strip_suffix("/kustomization.yaml"))
        .map(str::to_owned)
        .collect()
}

/// The objects `kubectl apply -k <dir>` applies (panics on a missing resource, a
/// cycle or a duplicate object: kustomize refuses those too).
pub fn build(manifests: &Manifests, dir: &str) -> Vec<Object> {
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    visit(manifests, dir, &mut Vec::new(), &mut out, &mut ids);
    out
}

fn visit(
    manifests: &Manifests,
    dir: &str,
    stack: &mut Vec<String>,
    out: &mut Vec<Object>,
    ids: &mut BTreeSet<String>,
) {
    assert!(
        !stack.contains(&dir.to_owned()),
        "kustomization cycle at {dir}"
    );
    stack.push(dir.to_owned());
    let file = format!("{dir}/kustomization.yaml");
    let text = manifests
        .get(&file)
        .unwrap_or_else(|| panic!("{dir} is not a kustomization folder"));
    let kustomization: Json = serde_saphyr::from_str(text).unwrap();
    for resource in kustomization["resources"].as_array().unwrap() {
        let path = normalize(&format!("{dir}/{}", resource.as_str().unwrap()));
        if manifests.contains_key(&format!("{path}/kustomization.yaml")) {
            visit(manifests, &path, stack, out, ids);
            continue;
        }
        let text = manifests
            .get(&path)
            .unwrap_or_else(|| panic!("{file}: resource {path} is not rendered"));
        for doc in parse_yaml_stream(text).unwrap().into_iter().flatten() {
            let object = Object {
                file: path.clone(),
                doc,
            };
            assert!(ids.insert(object.id()), "{}: applied twice", object.id());
            out.push(object);
        }
    }
    stack.pop();
}

/// `clusters/a/../../mesh` -> `mesh`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            ".." => {
                assert!(parts.pop().is_some(), "{path} leaves the render");
            }
            "." | "" => {}
            other => parts.push(other),
        }
    }
    parts.join("/")
}
