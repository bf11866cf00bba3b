//! A plan file as the end-to-end tests see it: rendered with the geolb library into a
//! directory (what `geolb render` writes), and the Kubernetes side derived from the same
//! plan — where each service version runs ([`Placement`]), the registry istiod would
//! watch once test apps stand in for the pods ([`RenderedPlan::registry`]), and the proxies
//! (sidecars, the ingress gateway) with their cluster's locality. Nothing of the topology
//! is written twice: the plan is the only source.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use geolb::plan::{Cluster, Plan};
use geolb::topology::Topology;

use crate::istiod::{
    DEFAULT_SERVICE_ACCOUNT, Environment, Locality, NodeLocality, Proxy, ProxyRole, Registry,
    Workload,
};

/// The namespace Istio's gateways run in unless the plan says otherwise.
const GATEWAY_NAMESPACE: &str = "istio-system";

/// A plan and the directory its manifests were rendered into.
#[derive(Debug)]
pub struct RenderedPlan {
    pub plan: Plan,
    /// The plan file.
    pub path: PathBuf,
    root: PathBuf,
    /// How the proxies' Envoys learn their locality ([`RenderedPlan::with_node_locality`]).
    pub node_locality: NodeLocality,
    /// Keeps a temporary output directory alive (removed on drop).
    _temp: Option<tempfile::TempDir>,
}

/// One version of one service in one cluster: a pod that a test app stands in for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Placement {
    /// Plan service name (`reviews`).
    pub service: String,
    pub namespace: String,
    pub port: u16,
    /// Version name (`v1`), `None` for a service without versions.
    pub version: Option<String>,
    /// Pod labels: `app: <service>` plus the version's labels (default `version: <name>`).
    pub labels: BTreeMap<String, String>,
    pub cluster: String,
}

impl Placement {
    /// The Service host istiod knows: `reviews.default.svc.cluster.local`.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.namespace)
    }

    /// Whether this is `service` (any version) or `service` at `version`.
    pub fn is(&self, service: &str, version: Option<&str>) -> bool {
        self.service == service && (version.is_none() || self.version.as_deref() == version)
    }
}

impl RenderedPlan {
    /// Renders `manifests/examples/<scenario>/plan.yaml` (a committed example) into a
    /// temporary directory.
    pub fn example(scenario: &str) -> RenderedPlan {
        let path = example_plan(scenario);
        let temp = tempfile::Builder::new()
            .prefix(&format!("geolb-render-{scenario}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let root = temp.path().to_path_buf();
        let mut rendered = RenderedPlan::render_into(&path, &root);
        rendered._temp = Some(temp);
        rendered
    }

    /// Renders the committed example `scenario` with its plan text changed by `edit`
    /// (the edited plan and the manifests in one temporary directory).
    pub fn example_edited(scenario: &str, edit: impl FnOnce(&str) -> String) -> RenderedPlan {
        let original = example_plan(scenario);
        let text = std::fs::read_to_string(&original)
            .unwrap_or_else(|e| panic!("read {}: {e}", original.display()));
        let edited = edit(&text);
        assert_ne!(edited, text, "the edit changed nothing");
        let temp = tempfile::Builder::new()
            .prefix(&format!("geolb-render-{scenario}-edited-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let path = temp.path().join("plan.yaml");
        std::fs::write(&path, edited).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let mut rendered = RenderedPlan::render_into(&path, &temp.path().join("out"));
        rendered._temp = Some(temp);
        rendered
    }

    /// Renders the plan at `path` into `out` (created; files overwritten) with the geolb
    /// library, as `geolb render PLAN -o OUT` does.
    pub fn render_into(path: &Path, out: &Path) -> RenderedPlan {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let plan =
            Plan::from_text(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        let files = geolb::render_file(
            path,
            geolb::render::ExtensionApi::Wasmplugin,
            &geolb::secret::RouteSecrets::example().unwrap(),
        )
        .unwrap_or_else(|e| panic!("render {}:\n{e}", path.display()));
        for (relative, content) in &files {
            let file = out.join(relative);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)
                    .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            }
            std::fs::write(&file, content)
                .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        }
        RenderedPlan {
            plan,
            path: path.to_path_buf(),
            root: out.to_path_buf(),
            node_locality: NodeLocality::default(),
            _temp: None,
        }
    }

    /// The proxies ([`RenderedPlan::sidecar`], [`RenderedPlan::ingress_gateway`]) run on
    /// clusters of kind `flavour` (default [`NodeLocality::Absent`], as on ACK).
    pub fn with_node_locality(mut self, flavour: NodeLocality) -> RenderedPlan {
        self.node_locality = flavour;
        self
    }

    /// The rendered root (`mesh/`, `clusters/<name>/`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every rendered file under `mesh/<namespace>/`, sorted (the Istio objects, not the
    /// kustomization that lists them).
    pub fn mesh_objects(&self) -> Vec<PathBuf> {
        let mesh = self.root.join("mesh");
        let mut files = Vec::new();
        for namespace in read_dir(&mesh) {
            if namespace.is_dir() {
                files.extend(read_dir(&namespace));
            }
        }
        files.sort();
        files
    }

    /// Takes the rendered mesh object `relative` (`mesh/<namespace>/<file>`) out of what
    /// is applied: removes the file and its `mesh/kustomization.yaml` entry, which must
    /// be there.
    pub fn unapply(&self, relative: &Path) {
        let listed_as = relative
            .strip_prefix("mesh")
            .unwrap_or_else(|_| panic!("{} is not under mesh/", relative.display()));
        let kustomization = self.root.join("mesh/kustomization.yaml");
        let listed = std::fs::read_to_string(&kustomization)
            .unwrap_or_else(|e| panic!("read {}: {e}", kustomization.display()));
        let entry = format!("- \"{}\"\n", listed_as.display());
        assert!(listed.contains(&entry), "{entry:?} not in:\n{listed}");
        std::fs::write(&kustomization, listed.replace(&entry, ""))
            .unwrap_or_else(|e| panic!("write {}: {e}", kustomization.display()));
        let file = self.root.join(relative);
        std::fs::remove_file(&file).unwrap_or_else(|e| panic!("remove {}: {e}", file.display()));
    }

    /// Takes every rendered WasmPlugin out of what is applied: the mesh without geolb,
    /// Istio's own locality failover with the same routes and outlier detection.
    pub fn unapply_wasm_plugins(&self) {
        let mut removed = 0;
        for file in self.mesh_objects() {
            let Ok(relative) = file.strip_prefix(&self.root) else {
                continue;
            };
            let is_plugin = relative
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("wasmplugin-"));
            if is_plugin {
                self.unapply(relative);
                removed += 1;
            }
        }
        assert!(removed > 0, "the plan rendered no WasmPlugin");
    }

    /// The plan's cluster called `name`.
    pub fn cluster(&self, name: &str) -> &Cluster {
        self.plan
            .clusters
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("the plan has no cluster {name}"))
    }

    /// The Istio cluster ID of the plan's cluster `name` (what its install values give
    /// the injector as `values.global.multiCluster.clusterName`, and istiod's registry
    /// puts in `topology.istio.io/cluster`): the only place the tests derive it.
    pub fn cluster_id(&self, name: &str) -> String {
        geolb::topology::Topology::cluster_id(self.cluster(name)).to_owned()
    }

    /// The cluster's region of a placement (or of any cluster).
    pub fn region_of(&self, cluster: &str) -> &str {
        &self.cluster(cluster).region
    }

    /// Node locality of pods in `cluster`: its region, zone and subzone.
    pub fn locality(&self, cluster: &str) -> Locality {
        let c = self.cluster(cluster);
        Locality {
            region: c.region.clone(),
            zone: c.zone.clone().unwrap_or_default(),
            subzone: c.subzone.clone().unwrap_or_default(),
        }
    }

    /// The cluster's network ID (empty = single network), as the generator decides it.
    pub fn network(&self, cluster: &str) -> String {
        Topology::new(&self.plan)
            .network_of(self.cluster(cluster))
            .unwrap_or_default()
            .to_string()
    }

    /// Every (service, version, cluster) of the plan, in plan order.
    pub fn placements(&self) -> Vec<Placement> {
        let mut out = Vec::new();
        for s in &self.plan.services {
            let app = BTreeMap::from([("app".to_string(), s.name.clone())]);
            let place =
                |version: Option<String>, labels: BTreeMap<String, String>, cluster: &str| {
                    Placement {
                        service: s.name.clone(),
                        namespace: s.namespace.clone(),
                        port: s.port,
                        version,
                        labels,
                        cluster: cluster.to_string(),
                    }
                };
            for cluster in &s.clusters {
                out.push(place(None, app.clone(), cluster));
            }
            for v in &s.versions {
                let mut labels = app.clone();
                if v.labels.is_empty() {
                    labels.insert("version".into(), v.name.clone());
                } else {
                    labels.extend(v.labels.clone());
                }
                for cluster in &v.clusters {
                    out.push(place(Some(v.name.clone()), labels.clone(), cluster));
                }
            }
        }
        out
    }

    /// The registry istiod would watch: one workload per placement that `address_of`
    /// gives an address (where the test app answers); `None` = scaled to zero. Test apps
    /// run without a sidecar (plain HTTP).
    pub fn registry(
        &self,
        mut address_of: impl FnMut(&Placement) -> Option<SocketAddr>,
    ) -> Registry {
        let workloads = self
            .placements()
            .into_iter()
            .filter_map(|p| {
                let address = address_of(&p)?;
                Some(Workload {
                    service: p.host(),
                    port: p.port,
                    address,
                    labels: p.labels.clone(),
                    cluster: self.cluster_id(&p.cluster),
                    network: self.network(&p.cluster),
                    locality: self.locality(&p.cluster),
                    sidecar: false,
                    service_account: crate::istiod::DEFAULT_SERVICE_ACCOUNT.to_string(),
                })
            })
            .collect();
        // Each planned east-west gateway address is where the cloud's (or MetalLB's)
        // load balancer puts the gateway Service.
        let east_west_gateways = self
            .plan
            .clusters
            .iter()
            .filter_map(|c| {
                let gw = c.east_west_gateway.as_ref()?;
                Some((self.cluster_id(&c.name), gw.address.clone()))
            })
            .collect();
        Registry {
            workloads,
            east_west_gateways,
        }
    }

    /// The sidecar of `service`'s `version` pod in `cluster`.
    pub fn sidecar(&self, service: &str, version: Option<&str>, cluster: &str) -> Proxy {
        let p = self
            .placements()
            .into_iter()
            .find(|p| p.is(service, version) && p.cluster == cluster)
            .unwrap_or_else(|| panic!("the plan runs no {service} {version:?} in {cluster}"));
        let name = match &p.version {
            Some(v) => format!("{service}-{v}-0"),
            None => format!("{service}-0"),
        };
        Proxy {
            role: ProxyRole::Sidecar,
            name,
            namespace: p.namespace.clone(),
            labels: p.labels.clone(),
            cluster: self.cluster_id(cluster),
            network: self.network(cluster),
            locality: self.locality(cluster),
            platform_locality: None,
            service_account: DEFAULT_SERVICE_ACCOUNT.to_string(),
        }
        .with_node_locality(self.node_locality)
    }

    /// The ingress gateway pod of the plan's first gateway in `cluster` (labels = its
    /// selector, default `istio: ingressgateway`, as the generator renders it).
    pub fn ingress_gateway(&self, cluster: &str) -> Proxy {
        let gw = self
            .plan
            .gateways
            .first()
            .unwrap_or_else(|| panic!("the plan has no ingress gateway"));
        let labels = if gw.selector.is_empty() {
            BTreeMap::from([("istio".to_string(), "ingressgateway".to_string())])
        } else {
            gw.selector.clone()
        };
        Proxy {
            role: ProxyRole::Gateway,
            name: "istio-ingressgateway-0".into(),
            namespace: gw
                .workload_namespace
                .clone()
                .unwrap_or_else(|| GATEWAY_NAMESPACE.to_string()),
            labels,
            cluster: self.cluster_id(cluster),
            network: self.network(cluster),
            locality: self.locality(cluster),
            platform_locality: None,
            service_account: "istio-ingressgateway-service-account".to_string(),
        }
        .with_node_locality(self.node_locality)
    }

    /// This machine: the plan's filter URL is the module `scripts/build-wasm.sh` built
    /// (an `oci://` URL: its image in `wasm-out/oci`).
    pub fn environment(&self, concurrency: u32) -> Environment {
        let url = self.plan.filter.url.as_str();
        let env = Environment::default().with_concurrency(concurrency);
        if url.starts_with("oci://") {
            env.with_wasm_image(url, crate::paths::geolb_image_layout(), crate::geolb_wasm())
        } else {
            env.with_wasm_file(url, crate::geolb_wasm())
        }
    }
}

/// `manifests/examples/<scenario>/plan.yaml` in the repository.
pub fn example_plan(scenario: &str) -> PathBuf {
    crate::repo_root()
        .join("manifests/examples")
        .join(scenario)
        .join("plan.yaml")
}

/// The entries of the directory `dir`.
fn read_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .path()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_a_places_reviews_v1_in_hangzhou_and_v2_in_shanghai() {
        let a = RenderedPlan::example("a-failover-distribution");
        assert!(
            a.root()
                .join("clusters/ack-hangzhou/vendor-console.md")
                .is_file()
        );
        let reviews: Vec<(Option<String>, String, String)> = a
            .placements()
            .into_iter()
            .filter(|p| p.service == "reviews")
            .map(|p| {
                let region = a.region_of(&p.cluster).to_string();
                (p.version, p.cluster, region)
            })
            .collect();
        assert_eq!(
            reviews,
            [
                (
                    Some("v1".into()),
                    "ack-hangzhou".into(),
                    "cn-hangzhou".into()
                ),
                (
                    Some("v2".into()),
                    "ack-shanghai".into(),
                    "cn-shanghai".into()
                ),
            ]
        );
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        let registry = a.registry(|p| p.is("reviews", Some("v2")).then_some(addr));
        let [only] = registry.workloads.as_slice() else {
            panic!("{registry:?}")
        };
        assert_eq!(only.service, "reviews.default.svc.cluster.local");
        assert_eq!(only.labels.get("version").map(String::as_str), Some("v2"));
        assert_eq!(only.locality.region, "cn-shanghai");
        let gw = a.ingress_gateway("ack-hangzhou");
        assert_eq!(
            (
                gw.namespace.as_str(),
                gw.labels.get("istio").map(String::as_str)
            ),
            ("istio-system", Some("ingressgateway"))
        );
    }
}
