//! Builds the Envoy configuration istiod would push to a client sidecar for ONE service
//! under geolb's routing contract (docs/routing-contract.md), as a readable, commented
//! static bootstrap (YAML), written by hand (the istiod stand-in in `istiod/` builds the
//! plan-to-traffic tests' configuration from rendered manifests instead). Golden copies
//! live in `tests/fixtures/`.
//!
//! What is rendered, for service `reviews.default.svc.cluster.local:9080` and regions
//! R1..Rn:
//! * `node`: id/cluster like a sidecar, `metadata.CLUSTER_ID`, and the locality as
//!   istio-agent writes it for [`MeshConfig::node_locality`] (default: from platform
//!   metadata, `{region, zone}` = the proxy's own; none on ACK-like clusters; from the
//!   `istio-locality` pod label, also in `metadata.LABELS`).
//! * One listener with an HTTP connection manager and an access log; HTTP filters: the
//!   wasm filter (optional; by default delivered by ECDS from a watched file, as Istio
//!   delivers a WasmPlugin) then the router.
//! * Routes (VirtualService): one per region, `x-geolb-region` exact `R` →
//!   `outbound|9080|geolb-R|reviews.default.svc.cluster.local`, removing the header
//!   before the app; then the last route without header match (the fail-open path) →
//!   `outbound|9080||reviews.default.svc.cluster.local`. The retries geolb's VirtualService renders on each.
//! * Clusters (DestinationRule): per region the subset cluster, `prefer-R` (all
//!   endpoints, R at priority 0, the rest at priority 1) or `strict-R` (R only); the
//!   default cluster with Istio's locality failover relative to the proxy's locality.
//!   Each with outlier detection (Istio's mapping), `healthy_panic_threshold: 0`.
//!
//! Build a [`MeshConfig`], tweak its public fields, and hand it to
//! [`crate::Envoy::start`], which renders it with real paths and ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::istiod::NodeLocality;
use crate::upstream::{ROUTING_HEADER, Upstream};

/// Subset name prefix: region R's subset is `geolb-R`.
pub use geolb::render::SUBSET_PREFIX;

/// One region: its name, zone and endpoints (fake upstreams).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionSpec {
    pub name: String,
    /// Locality zone of its endpoints; default `<name>-a`.
    pub zone: String,
    pub endpoints: Vec<SocketAddr>,
}

impl RegionSpec {
    /// A region with zone `<name>-a`.
    pub fn new(name: &str, endpoints: impl IntoIterator<Item = SocketAddr>) -> RegionSpec {
        RegionSpec {
            name: name.to_string(),
            zone: format!("{name}-a"),
            endpoints: endpoints.into_iter().collect(),
        }
    }
}

/// `failure_policy` of the wasm PluginConfig (Istio `failStrategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    FailOpen,
    FailClosed,
    FailReload,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "FAIL_OPEN",
            FailurePolicy::FailClosed => "FAIL_CLOSED",
            FailurePolicy::FailReload => "FAIL_RELOAD",
        }
    }
}

/// How the wasm filter's configuration reaches Envoy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// ECDS from a watched file (how Istio delivers a WasmPlugin). Supports
    /// [`crate::Envoy::update_plugin_config`] without a restart. Default.
    Ecds,
    /// Inline in the listener (static). Needed for `envoy --mode validate`.
    Inline,
}

/// The wasm HTTP filter (what istiod builds from a WasmPlugin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmFilter {
    /// Name of the HTTP filter and of its ECDS resource. ECDS stats are
    /// `extension_config_discovery.http_filter.<filter_name>.*`.
    pub filter_name: String,
    /// `PluginConfig.name` (Istio: `<namespace>.<WasmPlugin name>`).
    pub plugin_name: String,
    /// `PluginConfig.root_id` (Istio: the WasmPlugin's `pluginName`).
    pub root_id: String,
    /// `vm_config.vm_id`; Istio leaves it empty.
    pub vm_id: String,
    /// Absolute path of the `.wasm` module.
    pub module: PathBuf,
    /// The plugin configuration (JSON text), sent as a `google.protobuf.StringValue` like
    /// Istio's `pluginConfig`.
    pub plugin_config: String,
    pub failure_policy: FailurePolicy,
    pub delivery: Delivery,
}

impl WasmFilter {
    /// A filter running `module` with `plugin_config`: filter name `geolb`, plugin name
    /// `istio-system.geolb`, root id `geolb`, empty vm id, FAIL_OPEN, ECDS delivery.
    pub fn new(module: PathBuf, plugin_config: &str) -> WasmFilter {
        WasmFilter {
            filter_name: "geolb".into(),
            plugin_name: "istio-system.geolb".into(),
            root_id: "geolb".into(),
            vm_id: String::new(),
            module,
            plugin_config: plugin_config.to_string(),
            failure_policy: FailurePolicy::FailOpen,
            delivery: Delivery::Ecds,
        }
    }

    /// `wasm-out/geolb_filter.wasm` with `plugin_config` (panics with a hint if not built).
    pub fn geolb(plugin_config: &str) -> WasmFilter {
        WasmFilter::new(crate::paths::geolb_wasm(), plugin_config)
    }

    /// `wasm-out/empty_filter.wasm` (does nothing; rejects the config `reject`).
    pub fn empty() -> WasmFilter {
        WasmFilter::new(crate::paths::empty_wasm(), "{}")
    }

    /// Sets the failure policy.
    pub fn failure_policy(mut self, p: FailurePolicy) -> WasmFilter {
        self.failure_policy = p;
        self
    }

    /// Sets the delivery.
    pub fn delivery(mut self, d: Delivery) -> WasmFilter {
        self.delivery = d;
        self
    }
}

/// Which endpoints a region's subset cluster holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubsetStyle {
    /// All endpoints: R at priority 0, every other region at priority 1 (recommended).
    PreferRegion,
    /// Only R's endpoints.
    StrictRegion,
}

/// The route retry policy (Istio's default one when `Some`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `num_retries` (Istio default 2).
    pub num_retries: u32,
    /// Adds `envoy.retry_priorities.previous_priorities`: istiod renders it for
    /// `retryRemoteLocalities: true` (retry.go `ConvertPolicy`), which geolb's
    /// VirtualService always sets; lets a retry reach priority 1 before priority 0's
    /// host is ejected.
    pub previous_priorities: bool,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            num_retries: 2,
            previous_priorities: true,
        }
    }
}

/// Where a [`RouteWitness`] sits in the HTTP filter chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitnessPosition {
    /// Before the wasm filter: it sees the route selected with the headers as they arrived.
    BeforeWasm,
    /// After the wasm filter, before the router.
    AfterWasm,
}

/// TEST ONLY (Envoy facts): a native Envoy filter that reads the route in its
/// `decodeHeaders` and leaves proof of what it read. It is
/// `envoy.filters.http.header_mutation` with an empty filter-level config; every route
/// of the service carries a per-route config for it (`typed_per_filter_config`, keyed by
/// [`RouteWitness::filter_name`]) that sets the request header [`RouteWitness::header`] to
/// the route's name. The filter applies the per-route config of the route it resolved,
/// so the app receives the name of the route the filter saw (absent: it saw none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteWitness {
    /// The HTTP filter's name (the key of its per-route configs).
    pub filter_name: String,
    /// The request header it sets to the route's name.
    pub header: String,
    pub position: WitnessPosition,
}

impl RouteWitness {
    /// A witness named `filter_name` that sets `header`.
    pub fn new(filter_name: &str, header: &str, position: WitnessPosition) -> RouteWitness {
        RouteWitness {
            filter_name: filter_name.into(),
            header: header.into(),
            position,
        }
    }
}

/// Outlier detection as Istio maps a DestinationRule's `outlierDetection`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutlierDetection {
    pub consecutive_5xx: u32,
    pub interval_ms: u64,
    pub base_ejection_time_ms: u64,
    pub max_ejection_percent: u32,
}

impl Default for OutlierDetection {
    /// consecutive_5xx 1, interval 1 s, base ejection 1 s, max ejection 100 %.
    fn default() -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: 1,
            interval_ms: 1000,
            base_ejection_time_ms: 1000,
            max_ejection_percent: 100,
        }
    }
}

/// Everything that shapes one test Envoy. Construct with [`MeshConfig::new`] or
/// [`MeshConfig::for_upstreams`], then set fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshConfig {
    /// Short service name (`reviews`).
    pub service: String,
    pub namespace: String,
    /// Service port (9080).
    pub port: u16,
    /// `node.locality.region` of the proxy (default: the first region).
    pub proxy_region: String,
    /// `node.locality.zone` of the proxy (default: `<proxy_region>-a`).
    pub proxy_zone: String,
    pub node_id: String,
    pub node_cluster: String,
    /// `node.metadata.CLUSTER_ID` (the injector's `values.global.multiCluster.clusterName`;
    /// default `Kubernetes`, its default).
    pub cluster_id: String,
    /// `node.metadata.NETWORK` (the injector's `values.global.network`), when set.
    pub network: Option<String>,
    /// How istio-agent learns the locality it writes into `node.locality`
    /// ([`crate::istiod::agent`]); `proxy_region`/`proxy_zone` stay what istiod knows
    /// (the default cluster's failover is relative to them). Default
    /// [`NodeLocality::Platform`].
    pub node_locality: NodeLocality,
    /// The service's regions, in order (routes are rendered in this order).
    pub regions: Vec<RegionSpec>,
    /// The wasm filter before the router; `None` = bare Envoy (no wasm).
    pub wasm: Option<WasmFilter>,
    /// Native filters that prove which route they read (Envoy facts only; default none).
    pub route_witnesses: Vec<RouteWitness>,
    /// TEST ONLY (Envoy facts): `(name, value)` = a native
    /// `envoy.filters.http.header_mutation` right before the router that sets the request
    /// header `name: value` on every request (a native filter does not clear the route
    /// cache when it changes a header). Default none.
    pub native_header_set: Option<(String, String)>,
    pub subset_style: SubsetStyle,
    /// Adds the strict probe cluster of each region (a plan with `probe`).
    pub probe_clusters: bool,
    /// Route retry policy; `None` = no retries.
    pub retry: Option<RetryPolicy>,
    pub outlier: OutlierDetection,
    pub connect_timeout_ms: u64,
    /// `common_lb_config.update_merge_window`; `None` = Envoy's default (1 s), as Istio.
    pub update_merge_window_ms: Option<u64>,
    /// Cluster `lb_policy` (Istio's default is LEAST_REQUEST).
    pub lb_policy: String,
    /// If set, a catch-all virtual host `*` routes other authorities to this address
    /// (Istio's `allow_any` → PassthroughCluster); else they get Envoy's 404.
    pub passthrough: Option<SocketAddr>,
    /// More authorities the service's virtual host accepts, after [`MeshConfig::domains`]'
    /// own: an ingress gateway's external names (Istio's Gateway `hosts`), which name no
    /// service in the policy, so the filter finds the service by the route's cluster.
    pub extra_domains: Vec<String>,
    /// `--concurrency` (worker threads = wasm VMs serving requests).
    pub concurrency: u32,
    /// `-l` log level.
    pub log_level: String,
    /// Listener `connection_balance_config: exact_balance`: concurrent connections are
    /// spread evenly over the workers (two open connections = two workers).
    pub exact_balance: bool,
}

impl MeshConfig {
    /// Defaults: service reviews.default:9080, proxy in the first region, no wasm,
    /// prefer-R subsets, Istio's default retries, outlier detection per
    /// [`OutlierDetection::default`], connect timeout 250 ms, concurrency 2.
    pub fn new(regions: Vec<RegionSpec>) -> MeshConfig {
        let proxy_region = regions
            .first()
            .map(|r| r.name.clone())
            .unwrap_or_else(|| "cn-hangzhou".into());
        MeshConfig {
            service: "reviews".into(),
            namespace: "default".into(),
            port: 9080,
            proxy_zone: format!("{proxy_region}-a"),
            proxy_region,
            node_id: "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local".into(),
            node_cluster: "productpage.default".into(),
            cluster_id: crate::istiod::agent::DEFAULT_CLUSTER_ID.into(),
            network: None,
            node_locality: NodeLocality::Platform,
            regions,
            wasm: None,
            route_witnesses: Vec::new(),
            native_header_set: None,
            subset_style: SubsetStyle::PreferRegion,
            probe_clusters: false,
            retry: Some(RetryPolicy::default()),
            outlier: OutlierDetection::default(),
            connect_timeout_ms: 250,
            update_merge_window_ms: None,
            lb_policy: "LEAST_REQUEST".into(),
            passthrough: None,
            extra_domains: Vec::new(),
            concurrency: 2,
            log_level: "info".into(),
            exact_balance: false,
        }
    }

    /// Regions from running upstreams, grouped by [`Upstream::region`] in order of first
    /// appearance.
    pub fn for_upstreams(upstreams: &[&Upstream]) -> MeshConfig {
        let mut regions: Vec<RegionSpec> = Vec::new();
        for u in upstreams {
            match regions.iter_mut().find(|r| r.name == u.region()) {
                Some(r) => r.endpoints.push(u.addr()),
                None => regions.push(RegionSpec::new(u.region(), [u.addr()])),
            }
        }
        MeshConfig::new(regions)
    }

    /// Sets the wasm filter.
    pub fn with_wasm(mut self, wasm: WasmFilter) -> MeshConfig {
        self.wasm = Some(wasm);
        self
    }

    /// The proxy's node: `CLUSTER_ID` `cluster_id`, its locality learnt as `flavour`.
    pub fn with_node(mut self, cluster_id: &str, flavour: NodeLocality) -> MeshConfig {
        self.cluster_id = cluster_id.into();
        self.node_locality = flavour;
        self
    }

    /// The proxy's `node.metadata.NETWORK`.
    pub fn with_network(mut self, network: &str) -> MeshConfig {
        self.network = Some(network.into());
        self
    }

    /// Sets the proxy's locality region (zone `<region>-a`).
    pub fn with_proxy_region(mut self, region: &str) -> MeshConfig {
        self.proxy_region = region.into();
        self.proxy_zone = format!("{region}-a");
        self
    }

    /// The routing header value a region route matches: `<region>.<route token>` when
    /// the wasm filter's policy carries a `routeToken` (as geolb's rendered
    /// VirtualServices match), the bare region otherwise (Envoy facts without geolb).
    pub fn region_match_value(&self, region: &str) -> String {
        let token = self.wasm.as_ref().and_then(|w| {
            serde_json::from_str::<serde_json::Value>(&w.plugin_config)
                .ok()?
                .get("routeToken")?
                .as_str()
                .map(str::to_owned)
        });
        match token {
            Some(token) => geolb_policy::token::route_header_value(region, &token),
            None => region.to_owned(),
        }
    }

    /// `reviews.default.svc.cluster.local`
    pub fn host_fqdn(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.service, self.namespace)
    }

    /// `outbound|9080|geolb-probe-R|reviews.default.svc.cluster.local`
    pub fn probe_cluster(&self, region: &str) -> String {
        format!(
            "outbound|{}|geolb-probe-{region}|{}",
            self.port,
            self.host_fqdn()
        )
    }

    /// `outbound|9080|geolb-R|reviews.default.svc.cluster.local`
    pub fn subset_cluster(&self, region: &str) -> String {
        format!(
            "outbound|{}|{SUBSET_PREFIX}{region}|{}",
            self.port,
            self.host_fqdn()
        )
    }

    /// `outbound|9080||reviews.default.svc.cluster.local` (the fail-open route's cluster).
    pub fn default_cluster(&self) -> String {
        format!("outbound|{}||{}", self.port, self.host_fqdn())
    }

    /// The authorities a mesh client may use for the service, then
    /// [`MeshConfig::extra_domains`] (the virtual host's domains).
    pub fn domains(&self) -> Vec<String> {
        let (s, ns, p) = (&self.service, &self.namespace, self.port);
        let mut d = Vec::new();
        for host in [
            self.host_fqdn(),
            format!("{s}.{ns}.svc"),
            format!("{s}.{ns}"),
            s.clone(),
        ] {
            d.push(host.clone());
            d.push(format!("{host}:{p}"));
        }
        d.extend(self.extra_domains.iter().cloned());
        d
    }

    /// Renders the bootstrap YAML.
    pub fn render_bootstrap(&self, paths: &RenderPaths) -> String {
        let mut y = String::new();
        let region_names: Vec<&str> = self.regions.iter().map(|r| r.name.as_str()).collect();
        y += &format!(
            "# geolb e2e: the config istiod would push to a client sidecar for one service, as a\n\
             # static bootstrap (rendered by tests/src/config.rs; see tests/README.md).\n\
             # Service {host}:{port}; regions: {regions}.\n\
             # Proxy locality: {pr}/{pz}. Wasm filter: {wasm}. Subsets: {style}.\n",
            host = self.host_fqdn(),
            port = self.port,
            regions = region_names.join(", "),
            pr = self.proxy_region,
            pz = self.proxy_zone,
            wasm = match &self.wasm {
                None => "none (bare Envoy)".to_string(),
                Some(w) => format!(
                    "{} ({}, {:?})",
                    w.module
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    w.failure_policy.as_str(),
                    w.delivery
                ),
            },
            style = match self.subset_style {
                SubsetStyle::PreferRegion => "prefer-R",
                SubsetStyle::StrictRegion => "strict-R",
            },
        );
        y += &format!(
            "node:\n  id: {}\n  cluster: {}\n",
            q(&self.node_id),
            q(&self.node_cluster)
        );
        let label = crate::istiod::agent::locality_label_value(&crate::istiod::Locality::new(
            &self.proxy_region,
            &self.proxy_zone,
        ));
        let mut labels = "{app: productpage, version: v1}".to_string();
        match self.node_locality {
            NodeLocality::Absent => {
                y += "  # No istio-locality label, no GCP/AWS/Azure metadata: istio-agent writes no locality.\n  locality: {}\n";
            }
            NodeLocality::Platform => {
                y += &format!(
                    "  # From the platform's instance metadata.\n  locality: {{region: {}, zone: {}}}\n",
                    q(&self.proxy_region),
                    q(&self.proxy_zone)
                );
            }
            NodeLocality::PodLabel => {
                let sanitized = crate::istiod::agent::sanitize_locality_label(&label);
                let l = crate::istiod::agent::convert_locality(&sanitized);
                y += &format!(
                    "  # From the pod label istio-locality: {}.\n  locality: {{region: {}, zone: {}}}\n",
                    q(&label),
                    q(&l.region),
                    q(&l.zone)
                );
                labels = format!(
                    "{{app: productpage, version: v1, istio-locality: {}}}",
                    q(&sanitized)
                );
            }
        }
        let network = self
            .network
            .as_ref()
            .map(|n| format!(", NETWORK: {}", q(n)))
            .unwrap_or_default();
        y += &format!(
            "  # The filter reads its region from metadata.CLUSTER_ID (the policy's clusterRegions), else locality.region.\n  metadata: {{CLUSTER_ID: {}{network}, LABELS: {labels}}}\n",
            q(&self.cluster_id)
        );
        y += &format!(
            "admin:\n  address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}\n",
            paths.admin_port
        );
        y += &format!(
            "cluster_manager:\n  outlier_detection: {{event_log_path: {}}}\n",
            q_path(&paths.outlier_log)
        );
        y += "static_resources:\n  listeners:\n";
        y += &self.render_listener(paths);
        y += "  clusters:\n";
        for r in &self.regions {
            y += &self.render_subset_cluster(r);
        }
        if self.probe_clusters {
            for r in &self.regions {
                y += &self.render_probe_cluster(r);
            }
        }
        y += &self.render_default_cluster();
        if let Some(addr) = self.passthrough {
            y += "  # Istio's PassthroughCluster stand-in for authorities of other services.\n";
            y += &format!(
                "  - name: PassthroughCluster\n    type: STATIC\n    connect_timeout: {}\n    load_assignment:\n      cluster_name: PassthroughCluster\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}\n",
                dur(self.connect_timeout_ms),
                addr.ip(),
                addr.port()
            );
        }
        y
    }

    fn render_listener(&self, paths: &RenderPaths) -> String {
        let mut y = String::new();
        y += &format!(
            "  # Outbound listener for port {port} (Istio: 0.0.0.0_{port}, route config \"{port}\").\n",
            port = self.port
        );
        y += &format!(
            "  - name: outbound_{port}\n    address: {{socket_address: {{address: 127.0.0.1, port_value: {lp}}}}}\n",
            port = self.port,
            lp = paths.listener_port
        );
        if self.exact_balance {
            y += "    connection_balance_config: {exact_balance: {}}\n";
        }
        y += "    filter_chains:\n    - filters:\n      - name: envoy.filters.network.http_connection_manager\n        typed_config:\n";
        y += "          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\n";
        y += &format!(
            "          stat_prefix: outbound_0.0.0.0_{}\n          use_remote_address: false\n",
            self.port
        );
        y += "          access_log:\n          - name: envoy.access_loggers.file\n            typed_config:\n";
        y += "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n";
        y += &format!("              path: {}\n", q_path(&paths.access_log));
        y += &format!(
            "              log_format: {{text_format_source: {{inline_string: {}}}}}\n",
            q(ACCESS_LOG_FORMAT)
        );
        y += "          http_filters:\n";
        y += &self.render_witness_filters(WitnessPosition::BeforeWasm);
        if let Some(w) = &self.wasm {
            y += "          # geolb's WasmPlugin (match mode CLIENT), before the router.\n";
            match w.delivery {
                Delivery::Ecds => {
                    y += "          # Delivered like Istio does: ECDS (here from a watched file; replace the file\n          # atomically to push a new plugin config).\n";
                    y += &format!(
                        "          - name: {}\n            config_discovery:\n              config_source:\n                resource_api_version: V3\n                path_config_source:\n                  path: {}\n                  watched_directory: {{path: {}}}\n              type_urls: [\"{WASM_TYPE_URL}\"]\n",
                        q(&w.filter_name),
                        q_path(&paths.ecds_dir.join(ECDS_FILE)),
                        q_path(&paths.ecds_dir)
                    );
                }
                Delivery::Inline => {
                    y += &format!(
                        "          - name: {}\n            typed_config:\n",
                        q(&w.filter_name)
                    );
                    y += &indent(&render_wasm_typed_config(w), 14);
                }
            }
        }
        y += &self.render_witness_filters(WitnessPosition::AfterWasm);
        if let Some((name, value)) = &self.native_header_set {
            y += &format!(
                "          # TEST ONLY: a native filter that sets {name} (it does not clear the route cache).\n          - name: native-header-set\n            typed_config:\n              \"@type\": {HEADER_MUTATION_TYPE_URL}\n              mutations:\n                request_mutations:\n                - append:\n                    header: {{key: {k}, value: {v}}}\n                    append_action: OVERWRITE_IF_EXISTS_OR_ADD\n",
                k = q(name),
                v = q(value),
            );
        }
        y += "          - name: envoy.filters.http.router\n            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n";
        y += &format!(
            "          route_config:\n            name: \"{port}\"\n            virtual_hosts:\n            - name: {vh}\n              domains: [{domains}]\n              routes:\n",
            port = self.port,
            vh = q(&format!("{}:{}", self.host_fqdn(), self.port)),
            domains = self
                .domains()
                .iter()
                .map(|d| q(d))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for r in &self.regions {
            y += &format!(
                "              # VirtualService route for region {name}: {hdr} == {name} -> subset {SUBSET_PREFIX}{name};\n              # the header is removed before the request reaches the app.\n",
                name = r.name,
                hdr = ROUTING_HEADER
            );
            y += &format!(
                "              - name: {}\n                match:\n                  prefix: /\n                  headers:\n                  - name: {ROUTING_HEADER}\n                    string_match: {{exact: {}}}\n",
                q(&format!("{SUBSET_PREFIX}{}", r.name)),
                q(&self.region_match_value(&r.name))
            );
            y += &format!(
                "                request_headers_to_remove: [{ROUTING_HEADER}]\n                route:\n                  cluster: {}\n                  timeout: 0s\n",
                q(&self.subset_cluster(&r.name))
            );
            y += &self.render_retry();
            y += &self.render_witness_per_route(&format!("{SUBSET_PREFIX}{}", r.name));
        }
        y += "              # Last route, no header match: the fail-open path (filter absent or bypassed).\n";
        y += &format!(
            "              - name: default\n                match: {{prefix: /}}\n                route:\n                  cluster: {}\n                  timeout: 0s\n",
            q(&self.default_cluster())
        );
        y += &self.render_retry();
        y += &self.render_witness_per_route("default");
        if self.passthrough.is_some() {
            y += "            # Istio's allow_any virtual host: other authorities pass through.\n";
            y += "            - name: allow_any\n              domains: [\"*\"]\n              routes:\n              - name: allow_any\n                match: {prefix: /}\n                route: {cluster: PassthroughCluster, timeout: 0s}\n";
        }
        y
    }

    fn render_witness_filters(&self, position: WitnessPosition) -> String {
        let mut y = String::new();
        for w in self
            .route_witnesses
            .iter()
            .filter(|w| w.position == position)
        {
            y += &format!(
                "          # TEST ONLY: reads the route in decodeHeaders and sets {h} to its name (per-route config).\n          - name: {name}\n            typed_config: {{\"@type\": {HEADER_MUTATION_TYPE_URL}}}\n",
                h = w.header,
                name = q(&w.filter_name),
            );
        }
        y
    }

    fn render_witness_per_route(&self, route_name: &str) -> String {
        if self.route_witnesses.is_empty() {
            return String::new();
        }
        let mut y = String::from("                typed_per_filter_config:\n");
        for w in &self.route_witnesses {
            y += &format!(
                "                  {name}:\n                    \"@type\": {HEADER_MUTATION_TYPE_URL}PerRoute\n                    mutations:\n                      request_mutations:\n                      - append:\n                          header: {{key: {h}, value: {v}}}\n                          append_action: OVERWRITE_IF_EXISTS_OR_ADD\n",
                name = q(&w.filter_name),
                h = q(&w.header),
                v = q(route_name),
            );
        }
        y
    }

    fn render_retry(&self) -> String {
        let Some(rp) = self.retry else {
            return String::new();
        };
        let mut y = String::new();
        y += "                  retry_policy:\n";
        y += "                    retry_on: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes\n";
        y += &format!("                    num_retries: {}\n", rp.num_retries);
        y += "                    retriable_status_codes: [503]\n";
        y += "                    retry_host_predicate:\n                    - name: envoy.retry_host_predicates.previous_hosts\n                      typed_config: {\"@type\": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}\n";
        y += "                    host_selection_retry_max_attempts: 5\n";
        if rp.previous_priorities {
            y += "                    # istiod's retryRemoteLocalities: a retry moves to the next priority at once.\n";
            y += "                    retry_priority:\n                      name: envoy.retry_priorities.previous_priorities\n                      typed_config:\n                        \"@type\": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig\n                        update_frequency: 2\n";
        }
        y
    }

    fn render_cluster_head(&self, name: &str) -> String {
        let o = &self.outlier;
        let mut y = format!(
            "  - name: {}\n    type: STATIC\n    connect_timeout: {}\n    lb_policy: {}\n",
            q(name),
            dur(self.connect_timeout_ms),
            self.lb_policy
        );
        y += "    common_lb_config:\n      healthy_panic_threshold: {value: 0}\n";
        // istiod's default thresholds (cluster_traffic_policy.go,
        // `getDefaultCircuitBreakerThresholds`): every limit MaxUint32. Envoy's own
        // default `max_retries: 3` overflows (UO) when a region dies under load.
        y += "    circuit_breakers:\n      thresholds:\n      - {max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295, track_remaining: true}\n";
        if let Some(ms) = self.update_merge_window_ms {
            y += &format!("      update_merge_window: {}\n", dur(ms));
        }
        y += &format!(
            "    outlier_detection:\n      consecutive_5xx: {}\n      enforcing_consecutive_5xx: 100\n      enforcing_consecutive_gateway_failure: 0\n      enforcing_success_rate: 0\n      interval: {}\n      base_ejection_time: {}\n      max_ejection_percent: {}\n",
            o.consecutive_5xx,
            dur(o.interval_ms),
            dur(o.base_ejection_time_ms),
            o.max_ejection_percent
        );
        y += &format!(
            "    load_assignment:\n      cluster_name: {}\n      endpoints:\n",
            q(name)
        );
        y
    }

    fn render_subset_cluster(&self, region: &RegionSpec) -> String {
        let name = self.subset_cluster(&region.name);
        let mut y = match self.subset_style {
            SubsetStyle::PreferRegion => format!(
                "  # DestinationRule subset {SUBSET_PREFIX}{r} (prefer-{r}): all endpoints; {r} at priority 0\n  # (failoverPriority topology.kubernetes.io/region={r}), the others at priority 1.\n",
                r = region.name
            ),
            SubsetStyle::StrictRegion => format!(
                "  # DestinationRule subset {SUBSET_PREFIX}{r} (strict-{r}): only {r}'s endpoints.\n",
                r = region.name
            ),
        };
        y += &self.render_cluster_head(&name);
        y += &render_locality(region, 0);
        if self.subset_style == SubsetStyle::PreferRegion {
            for other in self.regions.iter().filter(|o| o.name != region.name) {
                y += &render_locality(other, 1);
            }
        }
        y
    }

    /// The strict subset `geolb-probe-R` the generator renders for probes: R's
    /// endpoints only, Envoy's outlier detection not enforced (the subset's
    /// `consecutive5xxErrors: 0`).
    fn render_probe_cluster(&self, region: &RegionSpec) -> String {
        let name = self.probe_cluster(&region.name);
        let mut y = format!(
            "  # DestinationRule subset geolb-probe-{r} (probes only): {r}'s endpoints, no outlier ejection.\n",
            r = region.name
        );
        y += &self.render_cluster_head(&name).replace(
            "enforcing_consecutive_5xx: 100",
            "enforcing_consecutive_5xx: 0",
        );
        y += &render_locality(region, 0);
        y
    }

    fn render_default_cluster(&self) -> String {
        let mut y = format!(
            "  # The service without subset (fail-open route): Istio's locality failover relative to\n  # the proxy's locality {}/{}: same zone, then same region, then other regions.\n",
            self.proxy_region, self.proxy_zone
        );
        y += &self.render_cluster_head(&self.default_cluster());
        let raw = |r: &RegionSpec| -> u32 {
            if r.name != self.proxy_region {
                2
            } else if r.zone != self.proxy_zone {
                1
            } else {
                0
            }
        };
        // Envoy wants contiguous priorities: compact the levels that are used.
        let mut used: Vec<u32> = self.regions.iter().map(raw).collect();
        used.sort_unstable();
        used.dedup();
        for r in &self.regions {
            let p = used.iter().position(|&u| u == raw(r)).unwrap_or(0);
            y += &render_locality(r, u32::try_from(p).unwrap_or(0));
        }
        y
    }

    /// Renders the ECDS resource file (a DiscoveryResponse with one TypedExtensionConfig)
    /// for `wasm` at `version`.
    pub fn render_ecds(wasm: &WasmFilter, version: u64) -> String {
        let mut y = format!(
            "# ECDS resource for the HTTP filter {name} (istiod pushes one per WasmPlugin).\nversion_info: \"{version}\"\nresources:\n- \"@type\": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig\n  name: {name}\n  typed_config:\n",
            name = q(&wasm.filter_name)
        );
        y += &indent(&render_wasm_typed_config(wasm), 4);
        y
    }
}

/// Access log line: `start code flags upstream_cluster upstream_host details route
/// attempts rbac`; `rbac=` is the shadow policy an RBAC filter before the extensions
/// matched (the istiod stand-in names it after the route that filter saw:
/// `route:<name>`; `-` without one).
pub const ACCESS_LOG_FORMAT: &str = "%START_TIME% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %RESPONSE_CODE_DETAILS% route=%ROUTE_NAME% attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT% rbac=%DYNAMIC_METADATA(envoy.filters.http.rbac:shadow_effective_policy_id)%\n";

/// The ECDS file name inside [`RenderPaths::ecds_dir`].
pub const ECDS_FILE: &str = "wasm-ecds.yaml";

const WASM_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

const HEADER_MUTATION_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";

/// Ports and files a rendered bootstrap refers to. Port 0 = ephemeral (the harness reads
/// the bound ports from the admin API).
#[derive(Clone, Debug)]
pub struct RenderPaths {
    pub admin_port: u16,
    pub listener_port: u16,
    pub access_log: PathBuf,
    pub outlier_log: PathBuf,
    /// Watched directory holding the ECDS file.
    pub ecds_dir: PathBuf,
}

impl RenderPaths {
    /// Paths inside `dir`, ephemeral ports.
    pub fn in_dir(dir: &Path) -> RenderPaths {
        RenderPaths {
            admin_port: 0,
            listener_port: 0,
            access_log: dir.join("access.log"),
            outlier_log: dir.join("outlier.log"),
            ecds_dir: dir.join("ecds"),
        }
    }
}

fn render_wasm_typed_config(w: &WasmFilter) -> String {
    format!(
        "\"@type\": {WASM_TYPE_URL}\nconfig:\n  name: {name}\n  root_id: {root}\n  vm_config:\n    vm_id: {vm}\n    runtime: envoy.wasm.runtime.v8\n    code: {{local: {{filename: {module}}}}}\n  # pluginConfig as JSON text, like Istio (a Struct would arrive as binary protobuf).\n  configuration:\n    \"@type\": type.googleapis.com/google.protobuf.StringValue\n    value: {cfg}\n  failure_policy: {fp}\n",
        name = q(&w.plugin_name),
        root = q(&w.root_id),
        vm = q(&w.vm_id),
        module = q_path(&w.module),
        cfg = q(&w.plugin_config),
        fp = w.failure_policy.as_str(),
    )
}

fn render_locality(r: &RegionSpec, priority: u32) -> String {
    let mut y = format!(
        "      - locality: {{region: {}, zone: {}}}\n        priority: {priority}\n        lb_endpoints:\n",
        q(&r.name),
        q(&r.zone)
    );
    for e in &r.endpoints {
        y += &format!(
            "        - endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}\n",
            e.ip(),
            e.port()
        );
    }
    y
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

fn q_path(p: &Path) -> String {
    q(&p.to_string_lossy())
}

fn dur(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("{pad}{l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example topology of the golden fixtures.
    fn example() -> MeshConfig {
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        MeshConfig::new(vec![
            RegionSpec::new("cn-hangzhou", [a(18001)]),
            RegionSpec::new("cn-shanghai", [a(18002)]),
            RegionSpec::new("cn-beijing", [a(18003)]),
        ])
    }

    fn fixture_paths() -> RenderPaths {
        RenderPaths::in_dir(Path::new("/tmp/geolb-e2e/ENVOY_DIR"))
    }

    const EXAMPLE_POLICY: &str = r#"{"note":"the geolb plugin config (policy JSON) goes here"}"#;

    /// Rendered fixtures: (file name, content).
    fn fixtures() -> Vec<(&'static str, String)> {
        let p = fixture_paths();
        let module = |f: &str| PathBuf::from(format!("/REPO/wasm-out/{f}"));
        let geolb = WasmFilter::new(module("geolb_filter.wasm"), EXAMPLE_POLICY);
        let empty = WasmFilter::new(module("empty_filter.wasm"), "{}");
        let mut strict = example().with_wasm(geolb.clone());
        strict.subset_style = SubsetStyle::StrictRegion;
        vec![
            (
                "bootstrap-geolb.yaml",
                example().with_wasm(geolb.clone()).render_bootstrap(&p),
            ),
            ("ecds-geolb.yaml", MeshConfig::render_ecds(&geolb, 1)),
            ("bootstrap-bare.yaml", example().render_bootstrap(&p)),
            (
                "bootstrap-empty-filter.yaml",
                example().with_wasm(empty).render_bootstrap(&p),
            ),
            ("bootstrap-geolb-strict.yaml", strict.render_bootstrap(&p)),
            (
                "bootstrap-geolb-inline.yaml",
                example()
                    .with_wasm(geolb.delivery(Delivery::Inline))
                    .render_bootstrap(&p),
            ),
        ]
    }

    /// `tests/fixtures/*.yaml` are what the renderer produces for the example topology.
    /// Regenerate with scripts/bless.sh.
    #[test]
    fn fixtures_are_up_to_date() {
        let dir = crate::paths::repo_root().join("tests/fixtures");
        let bless = std::env::var_os("GEOLB_BLESS").is_some();
        let mut stale = Vec::new();
        for (name, content) in fixtures() {
            let path = dir.join(name);
            if bless {
                std::fs::write(&path, &content).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "fixtures out of date: {stale:?}; run scripts/bless.sh"
        );
    }

    #[test]
    fn cluster_names_follow_istio() {
        let c = example();
        assert_eq!(
            c.subset_cluster("cn-shanghai"),
            "outbound|9080|geolb-cn-shanghai|reviews.default.svc.cluster.local"
        );
        assert_eq!(
            c.default_cluster(),
            "outbound|9080||reviews.default.svc.cluster.local"
        );
        assert!(c.domains().contains(&"reviews:9080".to_string()));
    }

    #[test]
    fn default_cluster_priorities_are_contiguous() {
        let mut c = example().with_proxy_region("cn-beijing");
        c.regions.retain(|r| r.name != "cn-beijing");
        let y = c.render_default_cluster();
        assert!(y.contains("priority: 0"), "{y}");
        assert!(
            !y.contains("priority: 1") && !y.contains("priority: 2"),
            "{y}"
        );
    }
}
