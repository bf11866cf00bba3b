//! The Kubernetes objects `geolb render` writes, typed field by field.
//!
//! Every struct denies unknown fields and covers exactly what the generator's templates
//! (`generator/templates/*.yaml.j2`) can emit, so a new field in a rendered object fails
//! the load with its file and field path instead of being ignored by the stand-in.
//! Field names follow the Istio/Kubernetes YAML (camelCase); the meaning of each field
//! is Istio's (`istio/api` protos), cited where the translation uses it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `metadata` of a namespaced object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Metadata {
    /// The namespace, `default` when absent (what `kubectl apply` would use).
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

/// `networking.istio.io/v1` Gateway.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gateway {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: GatewaySpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// Pod labels of the gateway workloads this Gateway configures.
    pub selector: BTreeMap<String, String>,
    pub servers: Vec<Server>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub port: ServerPort,
    pub hosts: Vec<String>,
    #[serde(default)]
    pub tls: Option<ServerTls>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPort {
    pub number: u16,
    pub name: String,
    /// `HTTP`, `TLS` (case-insensitive in Istio).
    pub protocol: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// `AUTO_PASSTHROUGH` (east-west gateway) or `PASSTHROUGH` (istiod exposure).
    pub mode: String,
}

/// `networking.istio.io/v1` VirtualService.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualService {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: VirtualServiceSpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualServiceSpec {
    pub hosts: Vec<String>,
    /// Absent = `[mesh]`: the sidecars only.
    #[serde(default)]
    pub gateways: Option<Vec<String>>,
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    /// TLS routes by SNI (only the istiod exposure renders them).
    #[serde(default)]
    pub tls: Vec<TlsRoute>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRoute {
    #[serde(default)]
    pub name: Option<String>,
    /// OR of match blocks; empty = every request.
    #[serde(default, rename = "match")]
    pub matches: Vec<HttpMatch>,
    pub route: Vec<RouteDestination>,
    #[serde(default)]
    pub headers: Option<HeaderOperations>,
    #[serde(default)]
    pub retries: Option<Retries>,
}

/// One match block: every condition in it must hold.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpMatch {
    #[serde(default)]
    pub uri: Option<StringMatch>,
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatch>,
    /// The request method (`:method` header match).
    #[serde(default)]
    pub method: Option<StringMatch>,
}

/// Istio `StringMatch` (a oneof); geolb renders `exact`, `prefix` and (method) `regex`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StringMatch {
    #[serde(default)]
    pub exact: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
}

/// A [`StringMatch`] with its oneof resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match<'a> {
    Exact(&'a str),
    Prefix(&'a str),
    Regex(&'a str),
}

impl StringMatch {
    /// The one condition it holds, `None` if it holds none or both.
    pub fn get(&self) -> Option<Match<'_>> {
        match (&self.exact, &self.prefix, &self.regex) {
            (Some(e), None, None) => Some(Match::Exact(e)),
            (None, Some(p), None) => Some(Match::Prefix(p)),
            (None, None, Some(r)) => Some(Match::Regex(r)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDestination {
    pub destination: Destination,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub host: String,
    #[serde(default)]
    pub port: Option<PortSelector>,
    #[serde(default)]
    pub subset: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSelector {
    pub number: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderOperations {
    #[serde(default)]
    pub request: Option<HeaderRemoval>,
}

/// geolb only removes request headers (the routing header).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRemoval {
    pub remove: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retries {
    pub attempts: u32,
    #[serde(default)]
    pub retry_on: Option<String>,
    #[serde(default)]
    pub retry_remote_localities: Option<bool>,
    #[serde(default)]
    pub per_try_timeout: Option<String>,
    #[serde(default)]
    pub retry_ignore_previous_hosts: Option<bool>,
    #[serde(default)]
    pub backoff: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsRoute {
    #[serde(rename = "match")]
    pub matches: Vec<TlsMatch>,
    pub route: Vec<RouteDestination>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsMatch {
    #[serde(default)]
    pub port: Option<u16>,
    pub sni_hosts: Vec<String>,
}

/// `networking.istio.io/v1` DestinationRule.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationRule {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: DestinationRuleSpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    pub host: String,
    #[serde(default)]
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default)]
    pub subsets: Vec<Subset>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Subset {
    pub name: String,
    /// Endpoint labels (augmented with the topology labels) the subset selects;
    /// empty = every endpoint of the service.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficPolicy {
    #[serde(default)]
    pub connection_pool: Option<ConnectionPool>,
    #[serde(default)]
    pub load_balancer: Option<LoadBalancer>,
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPool {
    #[serde(default)]
    pub tcp: Option<TcpPool>,
    #[serde(default)]
    pub http: Option<HttpPool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpPool {
    #[serde(default)]
    pub max_connections: Option<u32>,
    #[serde(default)]
    pub connect_timeout: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpPool {
    #[serde(default)]
    pub http1_max_pending_requests: Option<u32>,
    #[serde(default)]
    pub http2_max_requests: Option<u32>,
    #[serde(default)]
    pub max_requests_per_connection: Option<u32>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub idle_timeout: Option<String>,
}

/// geolb renders only `localityLbSetting` (no `simple`, no consistent hash).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancer {
    pub locality_lb_setting: LocalityLbSetting,
}

/// geolb never renders `distribute` here (weights live in the filter's policy).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalityLbSetting {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub failover: Vec<Failover>,
    #[serde(default)]
    pub failover_priority: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutlierDetection {
    #[serde(default, rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
    #[serde(default)]
    pub min_health_percent: Option<u32>,
}

/// `extensions.istio.io/v1alpha1` WasmPlugin.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WasmPlugin {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: WasmPluginSpec,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WasmPluginSpec {
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    pub url: String,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    pub plugin_name: String,
    #[serde(default)]
    pub fail_strategy: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default, rename = "type")]
    pub plugin_type: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: Vec<TrafficSelector>,
    /// A `google.protobuf.Struct`: any JSON object.
    #[serde(default)]
    pub plugin_config: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `extensions.istio.io/v1alpha1` TrafficExtension (Istio 1.30+; `geolb render
/// --extension-api trafficextension`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficExtension {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: TrafficExtensionSpec,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficExtensionSpec {
    #[serde(default)]
    pub selector: Option<WorkloadSelector>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default, rename = "match")]
    pub matches: Vec<TrafficSelector>,
    pub wasm: TrafficExtensionWasm,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficExtensionWasm {
    pub url: String,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    pub plugin_name: String,
    #[serde(default)]
    pub fail_strategy: Option<String>,
    #[serde(default, rename = "type")]
    pub plugin_type: Option<String>,
    #[serde(default)]
    pub plugin_config: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSelector {
    pub match_labels: BTreeMap<String, String>,
}

/// A `match` entry; geolb renders the mode only (no `ports`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSelector {
    pub mode: String,
}

/// `v1` Namespace (geolb labels `istio-system` with its network).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Namespace {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
}

/// `meshNetworks` (istio/api `mesh/v1alpha1/network.proto`) as install values carry it:
/// the networks by name (`values.global.meshNetworks`; the istiod chart wraps them in
/// `networks:` for the mesh ConfigMap, manifests/charts/istio-control/istio-discovery/
/// templates/configmap.yaml).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct MeshNetworks {
    pub networks: BTreeMap<String, Network>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub endpoints: Vec<NetworkEndpoints>,
    #[serde(default)]
    pub gateways: Vec<NetworkGateway>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkEndpoints {
    pub from_registry: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkGateway {
    /// The planned load-balancer IP ([`super::Environment::addresses`] maps it).
    pub address: String,
    pub port: u16,
}

/// `install.istio.io/v1alpha1` IstioOperator: a cluster's install values, or the
/// east-west gateway (`profile: empty` with one ingress gateway component).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IstioOperator {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: IstioOperatorSpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IstioOperatorSpec {
    #[serde(default)]
    pub revision: Option<String>,
    pub profile: String,
    #[serde(default)]
    pub components: Option<Components>,
    #[serde(default)]
    pub values: Option<Values>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Components {
    pub ingress_gateways: Vec<GatewayComponent>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayComponent {
    pub name: String,
    /// The gateway pods' labels (Gateway selectors match these).
    pub label: BTreeMap<String, String>,
    pub enabled: bool,
    #[serde(default)]
    pub k8s: Option<GatewayK8s>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayK8s {
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub service_annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub service: Option<GatewayService>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayService {
    pub ports: Vec<ServicePort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    pub target_port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Values {
    #[serde(default)]
    pub global: Option<GlobalValues>,
    #[serde(default)]
    pub istiod_remote: Option<IstiodRemote>,
    #[serde(default)]
    pub gateways: Option<GatewaysValues>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalValues {
    #[serde(default, rename = "meshID")]
    pub mesh_id: Option<String>,
    #[serde(default)]
    pub multi_cluster: Option<MultiCluster>,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub mesh_networks: Option<MeshNetworks>,
    #[serde(default)]
    pub remote_pilot_address: Option<String>,
    /// Primary-remote primaries: istiod also serves remote clusters.
    #[serde(default)]
    pub external_istiod: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MultiCluster {
    pub cluster_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IstiodRemote {
    pub injection_path: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaysValues {
    #[serde(rename = "istio-ingressgateway")]
    pub istio_ingressgateway: IngressGatewayValues,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressGatewayValues {
    pub injection_template: String,
}

/// `kustomize.config.k8s.io/v1beta1` Kustomization, as geolb writes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Kustomization {
    pub api_version: String,
    pub kind: String,
    pub resources: Vec<String>,
}
