//! The policy as it travels: the JSON a WasmPlugin's `pluginConfig` carries.
//!
//! These types only describe the shape. [`crate::CompiledPolicy::try_from`] turns them
//! into the validated form the filter routes with; nothing else reads them.
//! Field by field documentation: `docs/policy.md` (generated schema:
//! `policy/policy.schema.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::units::{DurationText, WholeNumber};

/// The only `apiVersion` this build understands.
pub const API_VERSION: &str = "geolb.io/v1alpha1";

/// Routing header the generated VirtualServices match when the policy names none.
pub const DEFAULT_ROUTING_HEADER: &str = "x-geolb-region";

/// Per region, the ordered regions that take its traffic while it is unhealthy:
/// `cn-hangzhou: [cn-shanghai]`. The plan's `traffic.failover` is this type too.
pub type FailoverChains = BTreeMap<String, Vec<String>>;

/// Per source region, integer weights (1..100, summing to 100) per target region:
/// `cn-hangzhou: {cn-hangzhou: 90, cn-shanghai: 10}`. The plan's `traffic.distribute`
/// is this type too.
pub type Weights = BTreeMap<String, BTreeMap<String, WholeNumber>>;

/// A complete geolb policy for one proxy (sidecar or gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Format version; must be `geolb.io/v1alpha1`.
    pub api_version: String,
    /// Every region of the mesh. Anything else that names a region must name one of these.
    pub regions: Vec<String>,
    /// Request header the filter sets to the chosen region (replacing any client value).
    /// Default `x-geolb-region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_header: Option<String>,
    /// The mesh's route token (URL-safe base64, 22..64 characters). The filter sets
    /// the routing header to `<region>.<routeToken>`, the only values the generated
    /// VirtualServices route by, so a client that does not know the token cannot pick
    /// a region where the filter is not the one setting the header. Required: without
    /// it routing would be by the bare region, which any client can send.
    pub route_token: String,
    /// Pins the source region, before `clusterRegions` and the node's locality are
    /// consulted (a proxy that must route as another region, or a hand-written policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_region: Option<String>,
    /// The mesh's clusters: Istio cluster ID (`values.global.multiCluster.clusterName`,
    /// which the injector gives every proxy as `node.metadata.CLUSTER_ID`) -> the
    /// cluster's region. How a proxy learns its region where Envoy's node carries no
    /// locality (istio-agent writes one only from the `istio-locality` pod label or
    /// GCP/AWS/Azure metadata), so one policy serves every cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cluster_regions: BTreeMap<String, String>,
    /// When `:authority` names no service, find it from the cluster of the route Envoy
    /// selected (Istio's `outbound|PORT|SUBSET|HOST`): for ingress gateways, whose
    /// requests carry an external Host. Costs one property read for such requests, so
    /// it is off by default (sidecars' requests to services outside the policy pay
    /// nothing). Default `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub service_from_route: bool,
    /// Adds the response header `x-geolb-explain` on the way back to the calling app:
    /// the region whose share the request was, the region it went to, and why
    /// (`share=cn-hangzhou; region=cn-shanghai; reason=failover`). For debugging at
    /// sidecars only: any other proxy refuses a policy with it, because at an ingress
    /// gateway it would tell every client the mesh's regions. Default `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub explain: bool,
    /// Regions the operator drained for every service that runs there (a DR drill,
    /// maintenance): their shares move down their own failover chains over
    /// `health.drainRamp`, and come back the same way when the mark is removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drain: Vec<String>,
    /// Health tracking defaults for every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSettings>,
    /// The destination services this policy steers. At least one.
    pub services: Vec<Service>,
}

/// One destination service and its region rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// Name used in stats and logs, e.g. `reviews.default`.
    pub name: String,
    /// Hosts matched against `:authority`. A Kubernetes FQDN such as
    /// `reviews.default.svc.cluster.local` also matches `reviews`, `reviews.default`,
    /// `reviews.default.svc`, each with or without `:port`.
    pub hosts: Vec<String>,
    /// Regions where the service runs, each with a generated subset.
    pub regions: Vec<String>,
    /// For a region, the ordered regions that take its traffic while it is unhealthy.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failover: FailoverChains,
    /// For a source region, integer weights (1..100, summing to 100) per target region.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub distribute: Weights,
    /// Regions drained for this service alone (see the policy's `drain`); each must
    /// be one of its `regions`, and at least one of them must stay undrained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drain: Vec<String>,
    /// Overrides of the policy-wide health settings for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSettings>,
    /// Active probes of the service's regions; without it, health is learnt from
    /// live traffic alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSettings>,
}

/// Active health probes: one prober per proxy sends `GET path` to each region of the
/// service every `interval`, through the cluster of the region's strict subset
/// (`outbound|PORT|geolb-probe-<region>|HOST`, HOST the service's first host), which
/// holds that region's endpoints and no others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeSettings {
    /// Path requested, starting with `/`, e.g. `/healthz`.
    pub path: String,
    /// The service port (as the probe clusters are named).
    pub port: WholeNumber,
    /// Time between two probes of a region (100ms..1h). Default `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationText>,
    /// A probe without an answer this long fails (at least 1ms, below `interval`).
    /// Default `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Status codes that pass. Default `[200]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_statuses: Option<Vec<WholeNumber>>,
    /// Passing probes in a row that let an ejected region back (its recovery ramp
    /// starts then, not before its ejection time ends). 1..100, default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_after: Option<WholeNumber>,
    /// Failing probes in a row that eject a region. 1..100, default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_after: Option<WholeNumber>,
}

/// Passive health tracking, modelled on Envoy outlier detection. Unset fields take the
/// policy-wide value, then the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthSettings {
    /// Consecutive failures that eject a region. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<WholeNumber>,
    /// First ejection length; the n-th ejection in a row lasts n times this. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<DurationText>,
    /// Upper bound of an ejection. Default `300s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_time: Option<DurationText>,
    /// After an ejection ends, the region's share ramps from 0 to full over this time
    /// (no thundering herd); a failure meanwhile ejects it again at once. `0s` disables
    /// the ramp. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_ramp: Option<DurationText>,
    /// How long a drained region's share takes to move off, and to come back when the
    /// drain is lifted. A proxy that starts with the region drained applies it at once.
    /// `0s`: at once. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_ramp: Option<DurationText>,
    /// The window over which a region's failure rate sheds part of its share (graded
    /// spill, below ejection): a region failing a fraction f of its requests keeps
    /// `1 - 1.4 f` of its share, at least 5%. `0s` turns it off. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spill_window: Option<DurationText>,
    /// Response codes that count as a failure of the region. Default `[502, 503, 504]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_status_codes: Option<Vec<WholeNumber>>,
    /// Envoy response flags (short names) that count as a failure whatever the code.
    /// Default `["UF", "UH", "UR", "UC"]`: connect failure, no healthy upstream, reset,
    /// connection termination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_response_flags: Option<Vec<String>>,
}

/// Leaves a `false` flag out of the serialized policy (it is the default).
fn is_false(flag: &bool) -> bool {
    !flag
}
