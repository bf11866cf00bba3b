//! The plan file: one reviewed description of a multi-region mesh.
//!
//! These types only describe the shape (serde + JSON Schema). Values that need
//! checking (CIDRs, names, references) stay text here so that `validate` can report
//! every problem at once with its location instead of stopping at the first.
//! Field by field documentation: `docs/plan.md`; schema: `generator/plan.schema.json`.

use std::collections::BTreeMap;

use geolb_policy::units::DurationText;
use geolb_policy::wire;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The only `apiVersion` this build reads.
pub const API_VERSION: &str = "geolb.io/v1alpha1";
/// The only `kind` a plan file has.
pub const KIND: &str = "Plan";
/// Istio minor version targeted when a mesh names none.
pub const DEFAULT_ISTIO_VERSION: &str = "1.30";

/// A multi-region mesh plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// Format version; must be `geolb.io/v1alpha1`.
    pub api_version: String,
    /// Must be `Plan`.
    pub kind: String,
    /// Service meshes (control-plane instances). Most plans have one; two meshes that
    /// discover each other's clusters must share one root CA.
    pub meshes: Vec<Mesh>,
    /// Cloud regions. Every region named elsewhere must be listed here.
    pub regions: Vec<Region>,
    /// Logical mesh networks (Istio `topology.istio.io/network`). Clusters on
    /// different networks reach each other through east-west gateways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Network>,
    /// VPCs (virtual private clouds) and their CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpcs: Vec<Vpc>,
    /// Subnets (Alibaba Cloud vSwitches) inside the VPCs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vswitches: Vec<VSwitch>,
    /// Groups of VPCs routed to each other (a cloud enterprise network, peering,
    /// transit router). Routes of connected VPCs must not collide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<Connection>,
    /// Kubernetes clusters of the mesh.
    pub clusters: Vec<Cluster>,
    /// Destination services the filter steers.
    pub services: Vec<Service>,
    /// Ingress gateways and the routes they serve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<IngressGateway>,
    /// How the geolb WebAssembly filter is deployed.
    pub filter: Filter,
}

/// One service mesh: a control-plane instance and the clusters it manages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mesh {
    /// Name of the mesh (DNS-1123 label); clusters refer to it.
    pub name: String,
    /// Istio `meshID`. Defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_id: Option<String>,
    /// Istio minor version targeted, e.g. `"1.30"` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio_version: Option<String>,
    /// How the control plane runs.
    pub control_plane: ControlPlaneMode,
    /// Where the mesh's root CA comes from. Multi-primary clusters and meshes that
    /// discover each other must share one root CA; write down how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    /// Clusters of other meshes this mesh discovers services of without managing
    /// them (remote secrets, "discovery only").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovers: Vec<String>,
}

/// Control-plane topology of a mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ControlPlaneMode {
    /// Every cluster runs its own istiod.
    MultiPrimary,
    /// Primary clusters run istiod; remote clusters use a primary's istiod through
    /// its east-west gateway.
    PrimaryRemote,
    /// A vendor runs the control plane (ASM, Mspider): clusters are data planes; a
    /// cluster may host it (role `primary`).
    Managed,
}

/// A cloud region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Region {
    /// Region name as the nodes' `topology.kubernetes.io/region` label carries it.
    pub name: String,
    /// Drained by the operator (a DR drill, maintenance): every service's share of the
    /// region moves down the region's failover chain over `filter.health.drainRamp`,
    /// and comes back the same way when the mark is removed. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drained: bool,
}

/// A logical mesh network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    /// Network ID (`topology.istio.io/network`).
    pub name: String,
}

/// A VPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vpc {
    /// VPC name.
    pub name: String,
    /// Region of the VPC.
    pub region: String,
    /// Address ranges (IPv4 and/or IPv6, canonical form such as `20.0.0.0/8`).
    pub cidrs: Vec<String>,
}

/// A vSwitch (subnet) of a VPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VSwitch {
    /// vSwitch name.
    pub name: String,
    /// The VPC it belongs to.
    pub vpc: String,
    /// Its range; must lie inside one of the VPC's CIDRs.
    pub cidr: String,
    /// Availability zone, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// VPCs routed to each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection {
    /// Name of the connection (e.g. the CEN instance).
    pub name: String,
    /// The connected VPCs (at least two).
    pub vpcs: Vec<String>,
}

/// A Kubernetes cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    /// Cluster name (DNS-1123 label): the folder `clusters/<name>/` and how the plan
    /// refers to the cluster.
    pub name: String,
    /// Istio cluster ID: the `values.global.multiCluster.clusterName` the mesh gives
    /// this cluster, which every proxy reports as `CLUSTER_ID` and the filter maps to
    /// the cluster's region. Default `name`. A managed mesh may set it to the cloud's
    /// cluster ID (docs/plan.md); it must then be written here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The mesh that manages it. May be omitted when the plan has one mesh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
    /// `primary` runs istiod; `remote` uses one elsewhere. Default `primary`, except
    /// in `managed` meshes where it is `remote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<ClusterRole>,
    /// Region of the cluster's nodes.
    pub region: String,
    /// Zone (`topology.kubernetes.io/zone`), if the nodes carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Subzone (`topology.istio.io/subzone`), if the nodes carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subzone: Option<String>,
    /// The VPC the nodes are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    /// The vSwitch the nodes are in (must belong to `vpc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vswitch: Option<String>,
    /// Pod CIDRs (one per IP family).
    pub pod_cidrs: Vec<String>,
    /// Service CIDRs (one per IP family).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_cidrs: Vec<String>,
    /// Container network plugin; decides which peer CIDRs the security group admits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni: Option<Cni>,
    /// Mesh network of the cluster. May be omitted when the plan declares at most one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The cluster's east-west gateway (required on multi-network meshes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub east_west_gateway: Option<GatewayAddress>,
    /// For a remote cluster: the address of the istiod it uses (`remotePilotAddress`).
    /// For a primary: the load-balancer address its istiod is exposed on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istiod_address: Option<String>,
    /// Load-balancer address of the ingress gateway, if planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_address: Option<String>,
    /// Address pools of the cluster's load-balancer implementation (MetalLB
    /// `IPAddressPool` style). Planned addresses must come from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_pools: Vec<AddressPool>,
}

/// Control-plane role of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterRole {
    /// Runs (or hosts) istiod.
    Primary,
    /// Uses an istiod elsewhere.
    Remote,
}

/// Container network plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Cni {
    /// Overlay: Pod IPs leave the node as Pod IPs; peers admit the Pod CIDRs.
    Flannel,
    /// Pods get vSwitch IPs; peers admit the vSwitch CIDRs.
    Terway,
}

/// A gateway's address and port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayAddress {
    /// IP address (or resolvable DNS name) other networks reach it on.
    pub address: String,
    /// Port; default 15443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// A load-balancer address pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressPool {
    /// Pool name.
    pub name: String,
    /// Ranges as MetalLB writes them: `10.64.30.71-10.64.30.73` or a CIDR.
    pub addresses: Vec<String>,
}

/// A destination service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// Kubernetes Service name.
    pub name: String,
    /// Namespace of the Service.
    pub namespace: String,
    /// Service port the routes and subset clusters use.
    pub port: u16,
    /// Where it runs: per version the clusters. Give versions when the pods carry a
    /// `version` label (each becomes a DestinationRule subset too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<Version>,
    /// Where it runs, when it has no versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Region rules: failover chains and distributions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// DestinationRule outlier detection (Istio field names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// DestinationRule connection pool (Istio field names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPool>,
    /// VirtualService retries of the region routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// Overrides of the filter's health tracking for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Active probes of each region (see docs/plan.md, "Active probes"): a strict
    /// subset per region in the DestinationRule, probed by one VM per proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
}

/// Active probes of a service's regions, sent to the service's `port`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    /// Path requested, e.g. `/healthz`.
    pub path: String,
    /// Time between two probes of a region (100ms..1h). Default `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationText>,
    /// A probe without an answer this long fails. Default `1s` (at most half the
    /// interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Status codes that pass. Default `[200]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_statuses: Option<Vec<u16>>,
    /// Passing probes in a row that let an ejected region back. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_after: Option<u32>,
    /// Failing probes in a row that eject a region. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_after: Option<u32>,
}

/// A version of a service and the clusters it runs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Version {
    /// Version name; the subset name and, by default, the `version` label value.
    pub name: String,
    /// Clusters running this version.
    pub clusters: Vec<String>,
    /// Pod labels that select the version. Default `{version: <name>}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Region rules of a service, as the filter's policy has them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Traffic {
    /// For a region, the ordered regions that take its traffic while it fails:
    /// `cn-hangzhou: [cn-shanghai]` reads "cn-hangzhou fails -> cn-shanghai".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failover: wire::FailoverChains,
    /// For a source region, weights 1..100 per target region summing to 100:
    /// `cn-hangzhou: {cn-hangzhou: 90, cn-shanghai: 10}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub distribute: wire::Weights,
    /// Regions drained for this service alone (see `regions[].drained`): each must be
    /// one where the service runs, and one must stay undrained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drain: Vec<String>,
}

/// Istio `OutlierDetection` (the fields geolb renders).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// 5xx responses in a row that eject a host. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_5xx_errors: Option<u32>,
    /// 502/503/504 (and connect failures) in a row that eject a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    /// Sweep interval. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationText>,
    /// Minimum ejection time. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<DurationText>,
    /// Percentage of hosts that may be ejected. Default 100, so a whole small region
    /// can be ejected and its traffic fail over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
    /// Below this share of healthy hosts outlier detection stops (Envoy panic
    /// threshold). Default 0 (never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_health_percent: Option<u32>,
}

/// Istio `ConnectionPoolSettings` (the fields geolb renders).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPool {
    /// TCP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpPool>,
    /// HTTP settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpPool>,
}

/// TCP connection pool settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpPool {
    /// Maximum connections to a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// TCP connect timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<DurationText>,
}

/// HTTP connection pool settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPool {
    /// Maximum pending HTTP/1.1 requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1_max_pending_requests: Option<u32>,
    /// Maximum active HTTP/2 requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_max_requests: Option<u32>,
    /// Requests per connection; 1 disables keep-alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u32>,
    /// Maximum outstanding retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Idle timeout of upstream connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<DurationText>,
}

/// Retries of the region routes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retries {
    /// Attempts. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Timeout of each attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<DurationText>,
    /// Envoy retry conditions. Default `connect-failure,refused-stream,unavailable,cancelled,503`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
}

/// The filter's passive health tracking: the policy's own type, so the plan and the
/// filter cannot disagree on a field (docs/policy.md, `health`).
pub type Health = geolb_policy::wire::HealthSettings;

/// An ingress gateway and the service routes it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressGateway {
    /// Name of the Gateway object.
    pub name: String,
    /// Namespace of the Gateway object and its VirtualService.
    pub namespace: String,
    /// Labels of the gateway pods. Default `{istio: ingressgateway}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// Namespace the gateway pods run in (where its WasmPlugin goes). Default `istio-system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_namespace: Option<String>,
    /// Listener port. Default 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Hosts served. Default `["*"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// HTTP routes to services.
    pub routes: Vec<GatewayRoute>,
}

/// Requests a gateway sends to one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayRoute {
    /// The plan service (its name; `name.namespace` when names repeat).
    pub service: String,
    /// Exact paths, e.g. `/productpage`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exact: Vec<String>,
    /// Path prefixes, e.g. `/static`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
}

/// Deployment of the geolb filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    /// Module location: `oci://` (an OCI image, docs/module-image.md), `https://` or
    /// `http://`. Not `file://`: nothing geolb renders puts a file into the proxies,
    /// and Istio does not verify a local module's sha256.
    pub url: String,
    /// SHA-256 the proxies verify the module against (64 lowercase hex digits):
    /// for `oci://` the image's manifest digest. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Name of the WasmPlugin objects. Default `geolb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the proxy does when the module cannot be loaded or crashes. Default
    /// `FAIL_OPEN`: traffic keeps flowing on the native locality settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_strategy: Option<FailStrategy>,
    /// Where in the filter chain it runs. Default `STATS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Order within the phase; higher runs first. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Request header the filter sets. Default `x-geolb-region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_header: Option<String>,
    /// Where `render` and `check` read the route secret the routing header's token is
    /// derived from. The secret itself never goes into the plan. Default: environment
    /// variable `GEOLB_ROUTE_SECRET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_secret: Option<RouteSecretSource>,
    /// Whether sidecars add `x-geolb-explain` to every response on its way back to the
    /// calling app: the share's region, the chosen region and the reason (debugging).
    /// Never for ingress gateways, whose callers are the internet. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explain: bool,
    /// App namespaces whose sidecars get the filter. Default: the services' namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Labels selecting the workloads in those namespaces. Default: all workloads.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workload_selector: BTreeMap<String, String>,
    /// Whether the ingress gateways get the filter too (source region pinned to
    /// their cluster's region). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateways: Option<bool>,
    /// Health tracking defaults for every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// The environment variables holding the route secret (docs/plan.md#routesecret).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSecretSource {
    /// Variable with the current secret (at least 32 characters): the filter sends
    /// its token. Default `GEOLB_ROUTE_SECRET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Variable with the previous secret, while rotating: the VirtualServices accept
    /// its token too, so proxies that still send it keep their region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_env: Option<String>,
}

/// Istio `failStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailStrategy {
    /// Requests fail while the plugin is broken.
    FailClose,
    /// The plugin is skipped while broken.
    FailOpen,
    /// A new plugin instance is created after a runtime error.
    FailReload,
}

/// Istio plugin phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// End of the chain, before the router.
    Unspecified,
    /// Before Istio's authentication filters.
    Authn,
    /// Before Istio's authorization filters.
    Authz,
    /// Before Istio's stats filter.
    Stats,
}

impl FailStrategy {
    /// Istio enum text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailClose => "FAIL_CLOSE",
            Self::FailOpen => "FAIL_OPEN",
            Self::FailReload => "FAIL_RELOAD",
        }
    }
}

/// The most YAML nodes (scalars, lists, mappings) a plan file may hold: a bound on the
/// memory a hostile plan costs. A service with versions, traffic rules and Istio
/// settings (the example's `reviews`) takes 53 nodes: room for about 18,000 of them.
pub const MAX_NODES: usize = 1_000_000;

/// How plan files are read: serde-saphyr's defaults with the node limit above.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_NODES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

impl Plan {
    /// Parse from YAML or JSON text (JSON is YAML). Errors carry line and column.
    pub fn from_text(text: &str) -> Result<Self, serde_saphyr::Error> {
        serde_saphyr::from_str_with_options(text, yaml_options())
    }
}

/// JSON Schema of the plan file, for editors and `generator/plan.schema.json`.
pub fn json_schema() -> schemars::Schema {
    schemars::schema_for!(Plan)
}
