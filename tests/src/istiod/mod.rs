//! A stand-in for istiod: reads the manifests `geolb render` wrote for one cluster and
//! builds the Envoy configuration istiod would push to one proxy there (a sidecar, the
//! ingress gateway or the east-west gateway), for exactly the objects geolb renders.
//!
//! istiod cannot run on our machines; this is test support, not product code. Each
//! mapping cites the Istio 1.30.3 file it mirrors (docs/routing-contract.md says what
//! the filter relies on). Whatever it does not understand in a generated object is an
//! error ([`TranslateError`]), never ignored, so a generator change cannot silently
//! escape the end-to-end tests.
//!
//! ```ignore
//! let manifests = ClusterManifests::load(&rendered_root, "ack-hangzhou")?;
//! let registry = Registry::new(vec![Workload { .. }, ..]);   // Kubernetes stand-in
//! let proxy = Proxy::sidecar("productpage-v1", "default", &locality, "ack-hangzhou", "");
//! let translated = translate(&manifests, &registry, &proxy, &Environment::local())?;
//! let envoy = Envoy::start_translated(&translated);
//! let addr = envoy.listener_addr("0.0.0.0_9080");
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

pub mod agent;
pub mod clusters;
pub mod eastwest;
pub mod endpoints;
pub mod http_filters;
pub mod inbound;
pub mod load;
pub mod network;
pub mod objects;
pub mod routes;
pub mod tls;
pub mod translate;
pub mod wasm;

pub use endpoints::IstioEndpoint;
pub use load::{ClusterManifests, InstallInputs, Loaded};
pub use translate::{listener_name, translate};

/// Where one endpoint or proxy runs: Kubernetes node labels
/// `topology.kubernetes.io/region`, `topology.kubernetes.io/zone`,
/// `topology.istio.io/subzone` (empty = unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub subzone: String,
}

/// One pod behind a Kubernetes Service (the registry's unit): what istiod learns from
/// the Service, the EndpointSlice and the pod's node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The Service's host, fully qualified: `reviews.default.svc.cluster.local`.
    pub service: String,
    /// The Service port (the manifests' `port.number`).
    pub port: u16,
    /// Where the pod really answers on this machine (a test upstream, or the inbound
    /// listener of its sidecar stand-in when `sidecar` is true).
    pub address: SocketAddr,
    /// Pod labels (`app`, `version`, ...); istiod adds the topology labels itself
    /// (`AugmentLabels`), so do not put them here.
    pub labels: BTreeMap<String, String>,
    /// Cluster ID (`topology.istio.io/cluster`).
    pub cluster: String,
    /// Network ID (`topology.istio.io/network`); empty = single network.
    pub network: String,
    pub locality: Locality,
    /// The pod has an Istio sidecar: its endpoint carries `tlsMode: istio` and clients
    /// reach it with (m)TLS.
    pub sidecar: bool,
    /// The pod's service account: clients verify that the server's certificate carries
    /// its SPIFFE identity.
    pub service_account: String,
}

/// The Kubernetes side istiod watches: every Service endpoint of every cluster.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub workloads: Vec<Workload>,
    /// Per cluster ID, the load-balancer address Kubernetes gave that cluster's east-west
    /// gateway Service (`status.loadBalancer.ingress`); istiod takes a Service labelled
    /// `topology.istio.io/network` as a network gateway at that address.
    pub east_west_gateways: BTreeMap<String, String>,
}

/// Which Envoy istiod is building for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxyRole {
    /// A workload's sidecar: outbound listeners per service port (match mode CLIENT).
    #[default]
    Sidecar,
    /// A gateway deployment (ingress or east-west): listeners from the Gateway objects
    /// whose selector matches its labels.
    Gateway,
}

/// The proxy istiod pushes to.
#[derive(Clone, Debug, Default)]
pub struct Proxy {
    pub role: ProxyRole,
    /// Pod name (node id `sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`).
    pub name: String,
    pub namespace: String,
    /// Pod labels, as Kubernetes has them and the downward API shows them to istio-agent
    /// (WasmPlugin and Gateway selectors match these). A `topology.istio.io/locality` or
    /// `istio-locality` label sets the locality ([`agent::bootstrap_locality`]).
    pub labels: BTreeMap<String, String>,
    /// The Istio cluster ID of the pod's cluster, as istiod's registry knows it (the
    /// injector must give the proxy the same `CLUSTER_ID`: checked).
    pub cluster: String,
    /// Empty = single network.
    pub network: String,
    /// The topology labels of the pod's node (what istiod learns from Kubernetes).
    pub locality: Locality,
    /// The locality the platform's instance metadata gives istio-agent (GCP, AWS,
    /// Azure); `None` on ACK, on-premises and MetalLB clusters.
    pub platform_locality: Option<Locality>,
    /// The pod's service account (its SPIFFE identity
    /// `spiffe://cluster.local/ns/<namespace>/sa/<service account>`).
    pub service_account: String,
}

/// How a proxy's Envoy learns its locality (see [`agent`]): the three kinds of clusters
/// geolb meets. In all three istiod knows the node's locality from Kubernetes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeLocality {
    /// No `istio-locality` label and no GCP/AWS/Azure metadata (ACK, on-premises,
    /// MetalLB): the bootstrap has no locality.
    #[default]
    Absent,
    /// GCP/AWS/Azure instance metadata: the node's region and zone.
    Platform,
    /// The pod label `istio-locality: region.zone.subzone`.
    PodLabel,
}

impl NodeLocality {
    /// Every flavour.
    pub const ALL: [NodeLocality; 3] = [
        NodeLocality::Absent,
        NodeLocality::Platform,
        NodeLocality::PodLabel,
    ];
}

impl std::fmt::Display for NodeLocality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeLocality::Absent => "no node locality",
            NodeLocality::Platform => "locality from platform metadata",
            NodeLocality::PodLabel => "locality from the istio-locality pod label",
        })
    }
}

/// What the test machine maps the manifests' outside references to.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `file://` WasmPlugin URLs → the module on this machine (the stand-in checks the
    /// manifest's `sha256` against the module's, as istio-agent does for a download).
    pub wasm_files: BTreeMap<String, PathBuf>,
    /// `oci://` WasmPlugin URLs → the image on this machine (the stand-in checks the
    /// manifest's `sha256` against the image's manifest digest, as istio-agent does).
    pub wasm_images: BTreeMap<String, WasmImage>,
    /// Planned load-balancer addresses (`meshNetworks` gateways, `ip:port`) → where the
    /// stand-in Envoy for that gateway listens on this machine.
    pub addresses: BTreeMap<String, SocketAddr>,
    /// Envoy worker threads (`--concurrency`).
    pub concurrency: u32,
}

impl Registry {
    /// A registry of these workloads.
    pub fn new(workloads: Vec<Workload>) -> Registry {
        Registry {
            workloads,
            east_west_gateways: BTreeMap::new(),
        }
    }
}

/// An `oci://` module as this machine has it: the image's OCI layout (standing in for
/// the registry: its only image answers the URL) and the module file Envoy loads, which
/// must hold the image's `plugin.wasm` (istio-agent loads its extracted copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmImage {
    pub layout: PathBuf,
    pub module: PathBuf,
}

/// The `url` every example plan pins for the geolb module (`filter.url`).
pub const GEOLB_MODULE_URL: &str = "oci://registry.example.com/geolb/geolb-filter:0.1.0";

impl Environment {
    /// This machine: the example plans' module URL mapped to the image in `wasm-out/oci`
    /// and its module `wasm-out/geolb_filter.wasm` (panics with the build hint if either
    /// is missing), no gateway addresses, 2 workers.
    pub fn local() -> Environment {
        Environment::default()
            .with_wasm_image(
                GEOLB_MODULE_URL,
                crate::paths::geolb_image_layout(),
                crate::paths::geolb_wasm(),
            )
            .with_concurrency(2)
    }

    /// Maps a `file://` WasmPlugin `url` to a module file on this machine.
    pub fn with_wasm_file(mut self, url: &str, path: PathBuf) -> Environment {
        self.wasm_files.insert(url.to_string(), path);
        self
    }

    /// Maps an `oci://` WasmPlugin `url` to an image layout and the module file holding
    /// its `plugin.wasm`.
    pub fn with_wasm_image(mut self, url: &str, layout: PathBuf, module: PathBuf) -> Environment {
        self.wasm_images
            .insert(url.to_string(), WasmImage { layout, module });
        self
    }

    /// Sets Envoy's worker threads.
    pub fn with_concurrency(mut self, n: u32) -> Environment {
        self.concurrency = n;
        self
    }
}

impl Proxy {
    /// A workload's sidecar: labels `app` = the pod name up to its last `-`
    /// (`productpage-v1` → `productpage`) and `version` = the rest.
    pub fn sidecar(
        name: &str,
        namespace: &str,
        locality: &Locality,
        cluster: &str,
        network: &str,
    ) -> Proxy {
        let mut labels = BTreeMap::new();
        match name.rsplit_once('-') {
            Some((app, version)) => {
                labels.insert("app".to_string(), app.to_string());
                labels.insert("version".to_string(), version.to_string());
            }
            None => {
                labels.insert("app".to_string(), name.to_string());
            }
        }
        Proxy {
            role: ProxyRole::Sidecar,
            name: name.to_string(),
            namespace: namespace.to_string(),
            labels,
            cluster: cluster.to_string(),
            network: network.to_string(),
            locality: locality.clone(),
            platform_locality: None,
            service_account: DEFAULT_SERVICE_ACCOUNT.to_string(),
        }
    }

    /// Istio's default ingress gateway (`istio-ingressgateway` in `istio-system`, labels
    /// `istio: ingressgateway`, `app: istio-ingressgateway`).
    pub fn ingress_gateway(locality: &Locality, cluster: &str, network: &str) -> Proxy {
        Proxy {
            role: ProxyRole::Gateway,
            name: "istio-ingressgateway".to_string(),
            namespace: "istio-system".to_string(),
            labels: BTreeMap::from([
                ("istio".to_string(), "ingressgateway".to_string()),
                ("app".to_string(), "istio-ingressgateway".to_string()),
            ]),
            cluster: cluster.to_string(),
            network: network.to_string(),
            locality: locality.clone(),
            platform_locality: None,
            service_account: "istio-ingressgateway-service-account".to_string(),
        }
    }

    /// The proxy's SPIFFE identity (its workload certificate's SAN).
    pub fn spiffe_id(&self) -> String {
        tls::spiffe_id(&self.namespace, &self.service_account)
    }

    /// The proxy as it runs in a cluster of kind `flavour`: no platform locality and no
    /// locality label ([`NodeLocality::Absent`]), the node's region and zone from the
    /// platform, or the pod label `istio-locality` naming the node's locality.
    pub fn with_node_locality(mut self, flavour: NodeLocality) -> Proxy {
        self.platform_locality = None;
        self.labels.remove(agent::ISTIO_LOCALITY_LABEL);
        self.labels.remove(agent::TOPOLOGY_LOCALITY_LABEL);
        match flavour {
            NodeLocality::Absent => {}
            NodeLocality::Platform => self.platform_locality = Some(self.locality.clone()),
            NodeLocality::PodLabel => {
                self.labels.insert(
                    agent::ISTIO_LOCALITY_LABEL.to_string(),
                    agent::locality_label_value(&self.locality),
                );
            }
        }
        self
    }
}

/// The service account of a pod that names none (Kubernetes' `default`).
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

impl Locality {
    /// Region and zone (no subzone).
    pub fn new(region: &str, zone: &str) -> Locality {
        Locality {
            region: region.to_string(),
            zone: zone.to_string(),
            subzone: String::new(),
        }
    }
}

/// The Envoy configuration for one proxy, ready for [`crate::Envoy::start_translated`].
#[derive(Clone, Debug)]
pub struct Translated {
    /// The bootstrap (static listeners, clusters; node with locality and metadata).
    pub bootstrap: serde_json::Value,
    /// ECDS resources by file name (relative to the run directory): the WasmPlugin
    /// filters, delivered the way istiod does (config discovery), so a re-render can be
    /// pushed to a running Envoy.
    pub ecds: BTreeMap<String, serde_json::Value>,
    /// Listener names in the order built, with the port istio would bind
    /// (`0.0.0.0_9080` → 9080); Envoy binds 127.0.0.1:0 and the harness reads the port.
    pub listeners: Vec<(String, u16)>,
    pub concurrency: u32,
}

/// Something in the manifests the stand-in cannot translate, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslateError {
    /// File (relative to the rendered root) and field path, e.g.
    /// `mesh/default/destinationrule-reviews.yaml: spec.subsets[0].trafficPolicy.tls`.
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for TranslateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for TranslateError {}
