//! What a proxy tells istiod about itself: the sidecar injector's environment
//! (`ISTIO_META_*`) and the bootstrap `node` istio-agent writes from it, from the pod's
//! labels and from the platform it runs on.
//!
//! * **Locality** (Istio 1.30.3 pkg/bootstrap/config.go `GetNodeMetaData`): istio-agent
//!   writes `node.locality` from the pod label `topology.istio.io/locality` or
//!   `istio-locality` (`model.GetLocalityLabel`, pkg/model/proxy.go), with `.` turned into
//!   `/` unless it has a `/` already (`SanitizeLocalityLabel`) and split into
//!   region/zone/subzone (`ConvertLocality`); without the label, from the platform's
//!   instance metadata (pkg/bootstrap/platform/{gcp,aws,azure}.go `Locality`: region and
//!   zone, never a subzone); on any other platform (ACK, on-premises, MetalLB) the
//!   locality stays empty: the bootstrap template (tools/packaging/common/
//!   envoy_bootstrap.json) then writes `"locality": {}`. It never reads the node's
//!   topology labels: those reach istiod only, through the Kubernetes registry.
//! * **istiod's view** of the proxy's locality (pilot/pkg/xds/ads.go `setTopologyLabels`
//!   and pilot/pkg/serviceregistry/kube/controller/controller.go `getPodLocality`): the
//!   pod's locality label when set (sanitized the same way), else the node's topology
//!   labels. istiod computes its endpoint priorities from this, whatever the bootstrap
//!   says.
//! * **Metadata** (pkg/model/proxy.go `NodeMetadata`, all strings): `CLUSTER_ID` and
//!   `NETWORK` from the injector's `ISTIO_META_CLUSTER_ID` / `ISTIO_META_NETWORK`
//!   (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml and
//!   gateway-injection-template.yaml: `values.global.multiCluster.clusterName`, default
//!   `Kubernetes`, and `values.global.network` when set; pkg/kube/inject/webhook.go
//!   `parseInjectEnvs`: an injection path `/inject/cluster/<c>/net/<n>` overrides both),
//!   `MESH_ID` from `values.global.meshID`, `LABELS` = the pod's labels as the downward
//!   API shows them (`readPodLabels`; the locality label replaced by its sanitized form),
//!   `NAMESPACE`, `NAME` (the pod), `ISTIO_VERSION`.
//!
//! Simplified: no `PROXY_CONFIG`, `INSTANCE_IPS`, `POD_PORTS`, `PLATFORM_METADATA` and
//! the other fields the filter does not read.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::endpoints::locality_json;
use super::load::ClusterManifests;
use super::network::install_values;
use super::{Locality, Proxy, ProxyRole, TranslateError};

/// The pod label istio-agent and istiod read a locality override from first.
pub const TOPOLOGY_LOCALITY_LABEL: &str = "topology.istio.io/locality";
/// The older locality label (`model.LocalityLabel`), read when the first is absent.
pub const ISTIO_LOCALITY_LABEL: &str = "istio-locality";
/// The injector's cluster ID when `values.global.multiCluster.clusterName` is unset.
pub const DEFAULT_CLUSTER_ID: &str = "Kubernetes";
/// `ISTIO_VERSION` in the node metadata: the Istio release the stand-in mirrors.
pub const ISTIO_VERSION: &str = "1.30.3";

/// `model.GetLocalityLabel`: `topology.istio.io/locality`, else `istio-locality`.
pub fn locality_label(labels: &BTreeMap<String, String>) -> Option<&str> {
    labels
        .get(TOPOLOGY_LOCALITY_LABEL)
        .or_else(|| labels.get(ISTIO_LOCALITY_LABEL))
        .map(String::as_str)
}

/// `model.SanitizeLocalityLabel`: Kubernetes label values cannot hold `/`, so `.`
/// separates the parts; a value that already has a `/` is taken as it is.
pub fn sanitize_locality_label(label: &str) -> String {
    if label.contains('/') {
        label.to_string()
    } else {
        label.replace('.', "/")
    }
}

/// `model.ConvertLocality` (`label.SplitLocalityLabel`): `region/zone/subzone`, missing
/// parts empty, parts after the third ignored.
pub fn convert_locality(locality: &str) -> Locality {
    if locality.is_empty() {
        return Locality::default();
    }
    let mut parts = locality.split('/');
    Locality {
        region: parts.next().unwrap_or_default().to_string(),
        zone: parts.next().unwrap_or_default().to_string(),
        subzone: parts.next().unwrap_or_default().to_string(),
    }
}

/// The value of the `istio-locality` label a pod would carry for `l`
/// (`region.zone.subzone`, trailing empty parts left out).
pub fn locality_label_value(l: &Locality) -> String {
    let mut parts = vec![l.region.as_str(), l.zone.as_str(), l.subzone.as_str()];
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts.join(".")
}

/// The locality istio-agent writes into the bootstrap `node.locality`, and the pod
/// labels it sends as `LABELS` (the locality label sanitized).
pub fn bootstrap_locality(proxy: &Proxy) -> (Locality, BTreeMap<String, String>) {
    let mut labels = proxy.labels.clone();
    match locality_label(&proxy.labels).filter(|l| !l.is_empty()) {
        Some(label) => {
            let sanitized = sanitize_locality_label(label);
            let locality = convert_locality(&sanitized);
            labels.insert(ISTIO_LOCALITY_LABEL.to_string(), sanitized);
            (locality, labels)
        }
        None => (
            proxy
                .platform_locality
                .as_ref()
                .map(|l| Locality {
                    region: l.region.clone(),
                    zone: l.zone.clone(),
                    subzone: String::new(),
                })
                .unwrap_or_default(),
            labels,
        ),
    }
}

/// The proxy's locality as istiod knows it from the registry: the pod's locality label
/// (sanitized) when set, else its node's topology labels.
pub fn istiod_locality(proxy: &Proxy) -> Locality {
    match locality_label(&proxy.labels).filter(|l| !l.is_empty()) {
        Some(label) => convert_locality(&sanitize_locality_label(label)),
        None => proxy.locality.clone(),
    }
}

/// The `ISTIO_META_*` the injector gives the cluster's proxies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectedEnv {
    /// `ISTIO_META_CLUSTER_ID`.
    pub cluster_id: String,
    /// `ISTIO_META_NETWORK`; empty = not set.
    pub network: String,
    /// `ISTIO_META_MESH_ID`; empty = not set.
    pub mesh_id: String,
    /// Where the values came from (for errors).
    pub at: String,
}

/// `parseInjectEnvs`: `/inject/k1/v1/k2/v2...` → `cluster` and `net` values.
fn injection_path_envs(path: &str) -> BTreeMap<String, String> {
    let trimmed = path.trim_end_matches('/');
    let mut parts = trimmed.splitn(3, '/');
    let (_, _, rest) = (parts.next(), parts.next(), parts.next());
    let mut out = BTreeMap::new();
    let Some(rest) = rest else {
        return out;
    };
    let items: Vec<&str> = rest.split('/').collect();
    for pair in items.chunks(2) {
        if let [k, v] = pair {
            out.insert((*k).to_string(), v.replace("--slash--", "/"));
        }
    }
    out
}

/// The injector's environment for proxies of the cluster of `m`, from its install
/// values; `None` when the render has no install values for it (the cluster's Istio is
/// installed elsewhere, e.g. by a managed control plane), in which case the proxy's own
/// registry identity (`Proxy::cluster`, `Proxy::network`) stands for it.
pub fn injected_env(m: &ClusterManifests) -> Result<Option<InjectedEnv>, TranslateError> {
    let Some(op) = install_values(m)? else {
        return Ok(None);
    };
    let values = op.value.spec.values.as_ref();
    let global = values.and_then(|v| v.global.as_ref());
    let mut env = InjectedEnv {
        cluster_id: global
            .and_then(|g| g.multi_cluster.as_ref())
            .map(|mc| mc.cluster_name.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| DEFAULT_CLUSTER_ID.to_string()),
        network: global.and_then(|g| g.network.clone()).unwrap_or_default(),
        mesh_id: global.and_then(|g| g.mesh_id.clone()).unwrap_or_default(),
        at: format!("{}: spec.values.global", op.file),
    };
    if let Some(path) = values
        .and_then(|v| v.istiod_remote.as_ref())
        .map(|r| r.injection_path.as_str())
    {
        let envs = injection_path_envs(path);
        if let Some(c) = envs.get("cluster") {
            env.cluster_id = c.clone();
            env.at = format!("{}: spec.values.istiodRemote.injectionPath", op.file);
        }
        if let Some(n) = envs.get("net") {
            env.network = n.clone();
        }
    }
    Ok(Some(env))
}

/// Checks that the proxy is what the cluster's injector makes of it: its registry
/// cluster ID is the injected `CLUSTER_ID` and its network the injected `NETWORK`. A
/// test proxy that disagrees would get a translation no real cluster has.
pub fn check_injected(env: Option<&InjectedEnv>, proxy: &Proxy) -> Result<(), TranslateError> {
    let Some(env) = env else {
        return Ok(());
    };
    if proxy.cluster != env.cluster_id {
        return Err(TranslateError {
            at: env.at.clone(),
            message: format!(
                "proxy {} is in registry cluster `{}` but the cluster's injector gives it CLUSTER_ID `{}`",
                proxy.name, proxy.cluster, env.cluster_id
            ),
        });
    }
    if proxy.network != env.network {
        return Err(TranslateError {
            at: env.at.clone(),
            message: format!(
                "proxy {} is on network `{}` but the cluster's injector gives it NETWORK `{}`",
                proxy.name, proxy.network, env.network
            ),
        });
    }
    Ok(())
}

/// The bootstrap `node` istio-agent writes: id `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`
/// (`router~` for gateways), cluster `<app>.<ns>` (the `app` label, else the pod name),
/// the locality per [`bootstrap_locality`], and the metadata (module doc). `env` is the
/// injector's environment; `None` = the proxy's registry cluster and network.
pub fn node(proxy: &Proxy, env: Option<&InjectedEnv>) -> Value {
    let kind = match proxy.role {
        ProxyRole::Sidecar => "sidecar",
        ProxyRole::Gateway => "router",
    };
    let ns = &proxy.namespace;
    let app = proxy.labels.get("app").unwrap_or(&proxy.name);
    let (locality, labels) = bootstrap_locality(proxy);
    let (cluster_id, network, mesh_id) = match env {
        Some(e) => (
            e.cluster_id.as_str(),
            e.network.as_str(),
            e.mesh_id.as_str(),
        ),
        None => (proxy.cluster.as_str(), proxy.network.as_str(), ""),
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("CLUSTER_ID".into(), json!(cluster_id));
    if !network.is_empty() {
        metadata.insert("NETWORK".into(), json!(network));
    }
    if !mesh_id.is_empty() {
        metadata.insert("MESH_ID".into(), json!(mesh_id));
    }
    metadata.insert("LABELS".into(), json!(labels));
    metadata.insert("NAMESPACE".into(), json!(ns));
    metadata.insert("NAME".into(), json!(proxy.name));
    metadata.insert("ISTIO_VERSION".into(), json!(ISTIO_VERSION));
    json!({
        "id": format!("{kind}~127.0.0.1~{}.{ns}~{ns}.svc.cluster.local", proxy.name),
        "cluster": format!("{app}.{ns}"),
        "locality": locality_json(&locality),
        "metadata": metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(labels: &[(&str, &str)], platform: Option<Locality>) -> Proxy {
        Proxy {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            locality: Locality::new("node-region", "node-zone"),
            platform_locality: platform,
            ..Proxy::default()
        }
    }

    #[test]
    fn without_label_or_platform_the_node_has_no_locality_but_istiod_knows_the_nodes() {
        let p = proxy(&[("app", "x")], None);
        assert_eq!(bootstrap_locality(&p).0, Locality::default());
        assert_eq!(
            istiod_locality(&p),
            Locality::new("node-region", "node-zone")
        );
        assert_eq!(node(&p, None)["locality"], json!({}));
    }

    #[test]
    fn platform_metadata_gives_region_and_zone_never_a_subzone() {
        let mut platform = Locality::new("r", "z");
        platform.subzone = "s".into();
        let p = proxy(&[], Some(platform));
        assert_eq!(bootstrap_locality(&p).0, Locality::new("r", "z"));
    }

    #[test]
    fn the_pod_label_wins_over_the_platform_and_is_sanitized() {
        let p = proxy(
            &[("istio-locality", "r.z.s")],
            Some(Locality::new("p", "q")),
        );
        let (l, labels) = bootstrap_locality(&p);
        assert_eq!(
            (l.region.as_str(), l.zone.as_str(), l.subzone.as_str()),
            ("r", "z", "s")
        );
        assert_eq!(labels["istio-locality"], "r/z/s");
        assert_eq!(istiod_locality(&p), l);
        // topology.istio.io/locality first; a value with `/` is kept as it is.
        let p = proxy(
            &[
                ("istio-locality", "a.b"),
                ("topology.istio.io/locality", "c/d.e"),
            ],
            None,
        );
        assert_eq!(bootstrap_locality(&p).0, Locality::new("c", "d.e"));
        assert_eq!(
            locality_label_value(&Locality::new("cn-hangzhou", "")),
            "cn-hangzhou"
        );
    }

    #[test]
    fn an_injection_path_overrides_cluster_and_network() {
        let envs = injection_path_envs("/inject/cluster/c2/net/n--slash--2/");
        assert_eq!(envs["cluster"], "c2");
        assert_eq!(envs["net"], "n/2");
        assert!(injection_path_envs("/inject").is_empty());
    }
}
