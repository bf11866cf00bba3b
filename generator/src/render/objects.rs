//! The templates' inputs: one `Serialize` struct per kind of rendered object, named as
//! the Istio and Kubernetes APIs name their fields. A template only places these values;
//! the `yaml` filter writes their nested parts with sorted keys, so field order here
//! does not reach the output.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::{ConnectionPool, OutlierDetection};
use geolb_policy::wire;

/// `kustomization.yaml.j2`.
#[derive(Serialize)]
pub(super) struct Kustomization {
    pub resources: std::collections::BTreeSet<String>,
}

/// `destinationrule.yaml.j2`.
#[derive(Serialize)]
pub(super) struct DestinationRule {
    pub name: String,
    pub namespace: String,
    pub host: String,
    pub traffic_policy: TrafficPolicy,
    pub subsets: Vec<Subset>,
}

/// A DestinationRule subset.
#[derive(Serialize)]
pub(super) struct Subset {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub traffic_policy: Option<TrafficPolicy>,
}

/// Istio `TrafficPolicy` (the fields geolb renders).
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct TrafficPolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    pub outlier_detection: OutlierDetection,
}

/// Istio `LoadBalancerSettings`: locality load balancing only.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct LoadBalancer {
    pub locality_lb_setting: LocalityLbSetting,
}

/// Istio `LocalityLoadBalancerSetting`.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct LocalityLbSetting {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<Failover>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failover_priority: Vec<String>,
}

/// One `from` region's native failover target.
#[derive(Serialize, Clone)]
pub(super) struct Failover {
    pub from: String,
    pub to: String,
}

/// `virtualservice.yaml.j2`: a service's routes or an ingress gateway's.
#[derive(Serialize)]
pub(super) struct VirtualService {
    pub name: String,
    pub namespace: String,
    pub hosts: Vec<String>,
    pub gateways: Vec<String>,
    /// The routing header every route removes before the app sees it.
    pub header: String,
    pub routes: Vec<HttpRoute>,
}

/// One `http` route with its single destination.
#[derive(Serialize, Clone)]
pub(super) struct HttpRoute {
    pub name: String,
    #[serde(rename = "match")]
    pub matches: Vec<MatchBlock>,
    pub host: String,
    pub port: u16,
    /// Empty: the service's endpoints of every region.
    pub subset: String,
    pub retries: Option<Retry>,
}

/// Istio `HTTPMatchRequest` (the conditions geolb renders; all must hold).
#[derive(Serialize, Clone, Default)]
pub(super) struct MatchBlock {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<StringMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
}

/// Istio `StringMatch`.
#[derive(Serialize, Clone)]
#[serde(rename_all = "lowercase")]
pub(super) enum StringMatch {
    Exact(String),
    Prefix(String),
    Regex(String),
}

/// Istio `HTTPRetry`.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct Retry {
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_remote_localities: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<String>,
}

/// `gateway.yaml.j2`.
#[derive(Serialize)]
pub(super) struct Gateway {
    pub name: String,
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    pub servers: Vec<Server>,
}

/// Istio `Server`.
#[derive(Serialize)]
pub(super) struct Server {
    pub port: ServerPort,
    pub hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTls>,
}

/// Istio `Port`.
#[derive(Serialize)]
pub(super) struct ServerPort {
    pub number: u16,
    pub name: &'static str,
    pub protocol: &'static str,
}

/// Istio `ServerTLSSettings`: the mode only.
#[derive(Serialize)]
pub(super) struct ServerTls {
    pub mode: &'static str,
}

/// `wasmplugin.yaml.j2` and `trafficextension.yaml.j2`.
#[derive(Serialize)]
pub(super) struct Extension<'p> {
    pub name: String,
    pub namespace: String,
    pub selector: BTreeMap<String, String>,
    pub url: String,
    pub sha256: Option<String>,
    pub plugin_name: String,
    pub fail_strategy: &'static str,
    pub phase: &'static str,
    pub priority: i32,
    pub policy: &'p wire::Policy,
}

/// `namespace.yaml.j2`.
#[derive(Serialize)]
pub(super) struct Namespace {
    pub name: &'static str,
    pub labels: BTreeMap<&'static str, String>,
    pub annotations: BTreeMap<&'static str, String>,
}

/// `istiooperator.yaml.j2`.
#[derive(Serialize)]
pub(super) struct IstioOperator {
    pub name: String,
    pub profile: &'static str,
    pub primary_remote: bool,
    pub values: InstallValues,
}

/// IstioOperator `spec.values` (operator/pkg/apis/values_types.proto field names).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InstallValues {
    pub global: GlobalValues,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub istiod_remote: Option<IstiodRemoteValues>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GlobalValues {
    #[serde(rename = "meshID")]
    pub mesh_id: String,
    pub multi_cluster: MultiClusterValues,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_istiod: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_pilot_address: Option<String>,
    /// Network name -> its endpoints and gateways (the chart adds the `networks:` key).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mesh_networks: BTreeMap<String, MeshNetwork>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MultiClusterValues {
    pub cluster_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IstiodRemoteValues {
    pub injection_path: String,
}

/// One network of meshNetworks (istio/api mesh/v1alpha1/network.proto).
#[derive(Serialize)]
pub(super) struct MeshNetwork {
    pub endpoints: Vec<NetworkEndpoint>,
    pub gateways: Vec<NetworkGateway>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NetworkEndpoint {
    pub from_registry: String,
}

#[derive(Serialize)]
pub(super) struct NetworkGateway {
    pub address: String,
    pub port: u16,
}

/// `eastwest-gateway.yaml.j2`.
#[derive(Serialize)]
pub(super) struct EastWestGateway {
    pub network: Option<String>,
    pub port: u16,
    pub service_annotations: BTreeMap<&'static str, String>,
}

/// `vendor-console.md.j2`.
#[derive(Serialize)]
pub(super) struct VendorConsole {
    pub cluster: String,
    pub cluster_id: String,
    pub mesh: String,
    pub mesh_id: String,
    pub hosts_control_plane: bool,
    pub region: String,
    pub node_labels: BTreeMap<&'static str, String>,
    pub network: Option<String>,
    pub east_west_gateway: Option<String>,
    pub istiod_address: Option<String>,
    pub ingress_address: Option<String>,
    /// This cluster's network entry of meshNetworks (multi-network meshes).
    pub mesh_network: BTreeMap<String, MeshNetwork>,
    pub has_kustomization: bool,
}
