//! Loading one cluster's rendered manifests the way `kubectl apply -k
//! clusters/<cluster>` would see them, plus its `install/` inputs. Everything the
//! stand-in knows about the render's layout (where a cluster's kustomization and
//! install inputs are, which clusters a render has) is in this file.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::TranslateError;
use super::objects::{
    DestinationRule, Gateway, IstioOperator, Kustomization, Namespace, TrafficExtension,
    VirtualService, WasmPlugin,
};

/// One object and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<T> {
    /// File relative to the rendered root (`mesh/default/virtualservice-reviews.yaml`),
    /// with ` (document N)` appended when the file holds several YAML documents.
    pub file: String,
    pub value: T,
}

impl<T> Loaded<T> {
    /// An error about `field` (a path like `spec.http[0].retries`) of this object.
    pub fn error(&self, field: &str, message: impl Into<String>) -> TranslateError {
        TranslateError {
            at: format!("{}: {field}", self.file),
            message: message.into(),
        }
    }
}

/// What `kubectl apply -k clusters/<cluster>` applies, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterManifests {
    /// The rendered root (the directory `geolb render` wrote).
    pub root: PathBuf,
    /// The cluster's name (`clusters/<cluster>`).
    pub cluster: String,
    pub gateways: Vec<Loaded<Gateway>>,
    pub virtual_services: Vec<Loaded<VirtualService>>,
    pub destination_rules: Vec<Loaded<DestinationRule>>,
    pub wasm_plugins: Vec<Loaded<WasmPlugin>>,
    pub traffic_extensions: Vec<Loaded<TrafficExtension>>,
    pub namespaces: Vec<Loaded<Namespace>>,
    /// Install inputs under `clusters/<cluster>/install/` (not applied by kustomize).
    pub install: InstallInputs,
}

/// `clusters/<cluster>/install/*.yaml`: what `istioctl install -f` and the control
/// plane's `istio` ConfigMap get. Kept typed for the multi-network translation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstallInputs {
    /// The cluster's IstioOperator (`istiooperator.yaml`) and, on multi-network meshes,
    /// its east-west gateway's (`eastwest-gateway.yaml`), in file name order.
    pub operators: Vec<Loaded<IstioOperator>>,
}

impl ClusterManifests {
    /// What the control plane serving `cluster` reads, plus the cluster's own objects
    /// and install inputs, as the render lays them out per control-plane mode:
    ///
    /// * multi-primary, and primary-remote primaries: `clusters/<cluster>/` includes
    ///   `../../mesh`; its install inputs are `clusters/<cluster>/install/*.yaml`;
    /// * managed meshes (a `clusters/<cluster>/vendor-console.md` note): the Istio
    ///   objects come from `control-plane/<mesh>/` (applied to the vendor's API server),
    ///   the cluster's own objects from `clusters/<cluster>/` when it has a
    ///   kustomization, and the install values are what the notes tell the user to
    ///   give the vendor's console ([`vendor_install`]);
    /// * primary-remote remotes (no `../../mesh`, a `controlPlaneClusters` annotation):
    ///   not modelled, an error says so.
    ///
    /// Kustomizations are followed as kustomize does (files, and directories with their
    /// own kustomization.yaml, recursively). Every object is parsed strictly: an unknown
    /// kind or field is an error naming the file and field path.
    pub fn load(rendered_root: &Path, cluster: &str) -> Result<ClusterManifests, TranslateError> {
        let mut out = ClusterManifests {
            root: rendered_root.to_path_buf(),
            cluster: cluster.to_string(),
            ..ClusterManifests::default()
        };
        let mut loader = Loader {
            root: rendered_root,
            seen_dirs: Vec::new(),
            ids: BTreeSet::new(),
        };
        let dir = cluster_dir(cluster);
        let note = dir.join(VENDOR_CONSOLE_NOTE);
        if rendered_root.join(&note).is_file() {
            let console = VendorConsole::read(rendered_root, &note)?;
            loader.kustomize(
                &PathBuf::from(CONTROL_PLANE_DIR).join(&console.mesh),
                &mut out,
            )?;
            if rendered_root
                .join(&dir)
                .join("kustomization.yaml")
                .is_file()
            {
                loader.kustomize(&dir, &mut out)?;
            }
            loader.install(&dir.join("install"), &mut out)?;
            out.install
                .operators
                .push(vendor_install(rendered_root, &console)?);
            return Ok(out);
        }
        loader.kustomize(&dir, &mut out)?;
        if out.destination_rules.is_empty() && out.virtual_services.is_empty() {
            let remote_of = out
                .namespaces
                .iter()
                .find_map(|n| n.value.metadata.annotations.get(CONTROL_PLANE_CLUSTERS));
            if let Some(primary) = remote_of {
                return Err(file_error(
                    &display(&dir),
                    format!(
                        "a primary-remote remote cluster (its control plane: {primary}); the \
                         stand-in does not model reading the primary's objects for it"
                    ),
                ));
            }
        }
        loader.install(&dir.join("install"), &mut out)?;
        Ok(out)
    }

    /// The manifests of another cluster of the same render (`self` again for its own).
    pub fn sibling(&self, cluster: &str) -> Result<ClusterManifests, TranslateError> {
        if cluster == self.cluster {
            return Ok(self.clone());
        }
        ClusterManifests::load(&self.root, cluster)
    }

    /// Every cluster of the render (`clusters/*`), sorted.
    pub fn rendered_clusters(&self) -> Result<Vec<String>, TranslateError> {
        let dir = self.root.join(CLUSTERS_DIR);
        let entries = std::fs::read_dir(&dir).map_err(|e| TranslateError {
            at: CLUSTERS_DIR.into(),
            message: format!("cannot list {}: {e}", dir.display()),
        })?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Where a render keeps its clusters.
const CLUSTERS_DIR: &str = "clusters";
/// Where a render keeps a managed mesh's Istio objects (`control-plane/<mesh>/`).
const CONTROL_PLANE_DIR: &str = "control-plane";
/// A managed mesh's cluster note: what the vendor's console must be given.
const VENDOR_CONSOLE_NOTE: &str = "vendor-console.md";
/// The istio-system annotation naming a remote cluster's control plane (Istio 1.30.3
/// pilot/pkg/serviceregistry/kube/controller/multicluster.go).
const CONTROL_PLANE_CLUSTERS: &str = "topology.istio.io/controlPlaneClusters";

/// The values a managed mesh's cluster note tells the user to give the vendor's
/// console, read from the note itself (its table rows and its meshNetworks block), so
/// the stand-in's vendor is configured with exactly what the user is told.
#[derive(Debug, Clone, Default, PartialEq)]
struct VendorConsole {
    file: String,
    mesh: String,
    cluster_id: String,
    mesh_id: String,
    hosts_control_plane: bool,
    network: Option<String>,
    control_plane_address: Option<String>,
    /// This cluster's network entry of meshNetworks, as YAML text.
    mesh_network: Option<String>,
}

impl VendorConsole {
    fn read(root: &Path, rel: &Path) -> Result<VendorConsole, TranslateError> {
        let file = display(rel);
        let text = std::fs::read_to_string(root.join(rel))
            .map_err(|e| file_error(&file, format!("cannot read: {e}")))?;
        let mesh = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("## Cluster ")?
                    .split_once(" of the managed mesh ")
            })
            .map(|(_, mesh)| mesh.trim().trim_matches('`').to_owned())
            .ok_or_else(|| {
                file_error(&file, "no `## Cluster ... of the managed mesh ...` heading")
            })?;
        // `| what | `value` | why |` rows: the first backticked text of the value column.
        let row = |name: &str| -> Option<String> {
            text.lines().find_map(|l| {
                let mut cells = l.split('|').map(str::trim).skip(1);
                if cells.next()? != name {
                    return None;
                }
                let value = cells.next()?;
                Some(value.split('`').nth(1).unwrap_or(value).to_owned())
            })
        };
        let mesh_network = text
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .map(str::to_owned);
        Ok(VendorConsole {
            mesh,
            cluster_id: row("Istio cluster ID")
                .ok_or_else(|| file_error(&file, "no `Istio cluster ID` row"))?,
            mesh_id: row("mesh ID").ok_or_else(|| file_error(&file, "no `mesh ID` row"))?,
            hosts_control_plane: row("role").is_some_and(|r| r.contains("control plane")),
            network: row("network"),
            control_plane_address: row("control plane address"),
            mesh_network,
            file,
        })
    }
}

/// The vendor's install of one managed cluster, as an IstioOperator with the values the
/// notes give: meshID, clusterName (the cluster ID), network; on the cluster that hosts
/// the control plane the mesh's meshNetworks (every note's network entry), on the
/// others the control plane's address as `remotePilotAddress`.
fn vendor_install(
    root: &Path,
    console: &VendorConsole,
) -> Result<Loaded<IstioOperator>, TranslateError> {
    let mut global = serde_json::json!({
        "meshID": console.mesh_id,
        "multiCluster": { "clusterName": console.cluster_id },
    });
    if let Some(network) = &console.network {
        global["network"] = network.as_str().into();
    }
    if console.hosts_control_plane {
        let networks = mesh_networks_of_notes(root, &console.mesh)?;
        if !networks.is_empty() {
            global["meshNetworks"] = serde_json::Value::Object(networks);
        }
    } else if let Some(address) = &console.control_plane_address {
        global["remotePilotAddress"] = address.as_str().into();
    }
    let profile = if console.hosts_control_plane {
        "default"
    } else {
        "remote"
    };
    let operator = serde_json::json!({
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "metadata": { "name": console.cluster_id, "namespace": "istio-system" },
        "spec": { "profile": profile, "values": { "global": global } },
    });
    let value = serde_norway::to_value(&operator)
        .map_err(|e| file_error(&console.file, format!("not an IstioOperator: {e}")))?;
    Ok(Loaded {
        file: console.file.clone(),
        value: typed(&console.file, "", value)?,
    })
}

/// The meshNetworks of managed mesh `mesh`: every cluster note's network entry.
fn mesh_networks_of_notes(
    root: &Path,
    mesh: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, TranslateError> {
    let mut notes: Vec<PathBuf> = std::fs::read_dir(root.join(CLUSTERS_DIR))
        .map_err(|e| file_error(CLUSTERS_DIR, format!("cannot list: {e}")))?
        .filter_map(Result::ok)
        .map(|e| {
            PathBuf::from(CLUSTERS_DIR)
                .join(e.file_name())
                .join(VENDOR_CONSOLE_NOTE)
        })
        .filter(|p| root.join(p).is_file())
        .collect();
    notes.sort();
    let mut networks = serde_json::Map::new();
    for note in notes {
        let other = VendorConsole::read(root, &note)?;
        let Some(entry) = other.mesh_network.filter(|_| other.mesh == mesh) else {
            continue;
        };
        let parsed: serde_json::Map<String, serde_json::Value> = serde_norway::from_str(&entry)
            .map_err(|e| {
                file_error(
                    &other.file,
                    format!("meshNetworks block is not a YAML map: {e}"),
                )
            })?;
        networks.extend(parsed);
    }
    Ok(networks)
}

/// `clusters/<cluster>` relative to the rendered root.
fn cluster_dir(cluster: &str) -> PathBuf {
    PathBuf::from(CLUSTERS_DIR).join(cluster)
}

struct Loader<'r> {
    root: &'r Path,
    /// Kustomization directories on the current path (cycle detection).
    seen_dirs: Vec<PathBuf>,
    /// `kind/namespace/name` of every applied object: kustomize refuses duplicates.
    ids: BTreeSet<String>,
}

/// A lexically normalized relative path (`clusters/a/../../mesh` → `mesh`), so error
/// messages name files the way a reader finds them.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn display(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

fn file_error(file: &str, message: impl Into<String>) -> TranslateError {
    TranslateError {
        at: file.to_string(),
        message: message.into(),
    }
}

/// Deserializes `value` strictly into `T`, reporting the failing field's path (for an
/// unknown field, the path of that field: `spec.trafficPolicy.tls`) after `prefix`.
pub(crate) fn typed<T: DeserializeOwned>(
    file: &str,
    prefix: &str,
    value: serde_norway::Value,
) -> Result<T, TranslateError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let message = e.inner().to_string();
        let path = match (prefix.is_empty(), path.is_empty()) {
            (true, _) => path,
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}.{path}"),
        };
        TranslateError {
            at: if path.is_empty() {
                file.to_string()
            } else {
                format!("{file}: {path}")
            },
            message,
        }
    })
}

/// The YAML documents of a file (empty documents skipped), each with its display name.
fn documents(
    root: &Path,
    rel: &Path,
) -> Result<Vec<(String, serde_norway::Value)>, TranslateError> {
    let name = display(rel);
    let text = std::fs::read_to_string(root.join(rel))
        .map_err(|e| file_error(&name, format!("cannot read: {e}")))?;
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let value = serde_norway::Value::deserialize(doc)
            .map_err(|e| file_error(&name, format!("not YAML: {e}")))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    let several = docs.len() > 1;
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let file = if several {
                format!("{name} (document {})", i + 1)
            } else {
                name.clone()
            };
            (file, v)
        })
        .collect())
}

fn header(file: &str, value: &serde_norway::Value) -> Result<(String, String), TranslateError> {
    let field = |key: &str| {
        value
            .get(key)
            .and_then(serde_norway::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                file_error(
                    &format!("{file}: {key}"),
                    format!("missing or not a string: every object needs `{key}`"),
                )
            })
    };
    Ok((field("apiVersion")?, field("kind")?))
}

/// The apiVersion geolb renders for `kind`, `None` for kinds the stand-in does not know.
fn api_version_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Gateway" | "VirtualService" | "DestinationRule" => "networking.istio.io/v1",
        "WasmPlugin" | "TrafficExtension" => "extensions.istio.io/v1alpha1",
        "Namespace" | "ConfigMap" => "v1",
        "IstioOperator" => "install.istio.io/v1alpha1",
        "Kustomization" => "kustomize.config.k8s.io/v1beta1",
        _ => return None,
    })
}

fn check_api_version(file: &str, api_version: &str, kind: &str) -> Result<(), TranslateError> {
    match api_version_of(kind) {
        None => Err(file_error(
            &format!("{file}: kind"),
            format!(
                "unknown kind `{kind}`: the istiod stand-in translates Gateway, VirtualService, DestinationRule, WasmPlugin, TrafficExtension, Namespace, ConfigMap istio and IstioOperator"
            ),
        )),
        Some(want) if want != api_version => Err(file_error(
            &format!("{file}: apiVersion"),
            format!("{kind} `{api_version}` is not the version geolb renders (`{want}`)"),
        )),
        Some(_) => Ok(()),
    }
}

impl Loader<'_> {
    /// Applies the kustomization in `dir` (relative to the root).
    fn kustomize(&mut self, dir: &Path, out: &mut ClusterManifests) -> Result<(), TranslateError> {
        let dir = normalize(dir);
        if self.seen_dirs.contains(&dir) {
            return Err(file_error(
                &display(&dir),
                "kustomization cycle: this directory includes itself",
            ));
        }
        let rel = dir.join("kustomization.yaml");
        if !self.root.join(&rel).is_file() {
            return Err(file_error(
                &display(&dir),
                "not a kustomization directory (no kustomization.yaml)",
            ));
        }
        let docs = documents(self.root, &rel)?;
        let [(file, value)] = <[_; 1]>::try_from(docs).map_err(|docs| {
            file_error(
                &display(&rel),
                format!("expected one Kustomization document, found {}", docs.len()),
            )
        })?;
        let (api_version, kind) = header(&file, &value)?;
        if kind != "Kustomization" {
            return Err(file_error(
                &format!("{file}: kind"),
                format!("expected Kustomization, found `{kind}`"),
            ));
        }
        check_api_version(&file, &api_version, &kind)?;
        let k: Kustomization = typed(&file, "", value)?;
        self.seen_dirs.push(dir.clone());
        for (i, resource) in k.resources.iter().enumerate() {
            let target = normalize(&dir.join(resource));
            let full = self.root.join(&target);
            if full.is_dir() {
                self.kustomize(&target, out)?;
            } else if full.is_file() {
                self.resource_file(&target, out)?;
            } else {
                return Err(file_error(
                    &format!("{file}: resources[{i}]"),
                    format!("`{resource}` is neither a file nor a directory"),
                ));
            }
        }
        self.seen_dirs.pop();
        Ok(())
    }

    /// One resource file: every document, by kind.
    fn resource_file(
        &mut self,
        rel: &Path,
        out: &mut ClusterManifests,
    ) -> Result<(), TranslateError> {
        for (file, value) in documents(self.root, rel)? {
            let (api_version, kind) = header(&file, &value)?;
            check_api_version(&file, &api_version, &kind)?;
            let id = |meta: &super::objects::Metadata| {
                format!("{kind}/{}/{}", meta.namespace(), meta.name)
            };
            let new_id = match kind.as_str() {
                "Gateway" => {
                    let v: Gateway = typed(&file, "", value)?;
                    let id = id(&v.metadata);
                    out.gateways.push(Loaded {
                        file: file.clone(),
                        value: v,
                    });
                    id
                }
                "VirtualService" => {
                    let v: VirtualService = typed(&file, "", value)?;
                    let id = id(&v.metadata);
                    out.virtual_services.push(Loaded {
                        file: file.clone(),
                        value: v,
                    });
                    id
                }
                "DestinationRule" => {
                    let v: DestinationRule = typed(&file, "", value)?;
                    let id = id(&v.metadata);
                    out.destination_rules.push(Loaded {
                        file: file.clone(),
                        value: v,
                    });
                    id
                }
                "WasmPlugin" => {
                    let v: WasmPlugin = typed(&file, "", value)?;
                    let id = id(&v.metadata);
                    out.wasm_plugins.push(Loaded {
                        file: file.clone(),
                        value: v,
                    });
                    id
                }
                "TrafficExtension" => {
                    let v: TrafficExtension = typed(&file, "", value)?;
                    let id = id(&v.metadata);
                    out.traffic_extensions.push(Loaded {
                        file: file.clone(),
                        value: v,
                    });
                    id
                }
                "Namespace" => {
                    let v: Namespace = typed(&file, "", value)?;
                    let id = format!("Namespace/{}", v.metadata.name);
                    out.namespaces.push(Loaded {
                        file: file.clone(),
                        value: v,
                    });
                    id
                }
                other => {
                    return Err(file_error(
                        &format!("{file}: kind"),
                        format!(
                            "`{other}` is not applied by kustomize in a geolb render (it belongs in install/)"
                        ),
                    ));
                }
            };
            if !self.ids.insert(new_id.clone()) {
                return Err(file_error(
                    &file,
                    format!("{new_id} is applied twice (kustomize refuses duplicate resources)"),
                ));
            }
        }
        Ok(())
    }

    /// `install/*.yaml` in file name order; a missing directory is no error.
    fn install(&mut self, dir: &Path, out: &mut ClusterManifests) -> Result<(), TranslateError> {
        let Ok(entries) = std::fs::read_dir(self.root.join(dir)) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        for path in files {
            let Some(name) = path.file_name() else {
                continue;
            };
            let rel = dir.join(name);
            for (file, value) in documents(self.root, &rel)? {
                let (api_version, kind) = header(&file, &value)?;
                check_api_version(&file, &api_version, &kind)?;
                match kind.as_str() {
                    "IstioOperator" => {
                        let v: IstioOperator = typed(&file, "", value)?;
                        out.install.operators.push(Loaded { file, value: v });
                    }
                    other => {
                        return Err(file_error(
                            &format!("{file}: kind"),
                            format!("`{other}` is not an install input the stand-in reads"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
