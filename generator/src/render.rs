//! Rendering: a validated plan becomes the GitOps tree — `mesh/` with the Istio
//! objects, `clusters/<name>/` with what is cluster-specific (a kustomization that
//! pulls in `../../mesh` where the cluster's control plane reads Istio objects from
//! it), `clusters/<name>/install/` with istioctl inputs, and for managed meshes
//! `control-plane/<mesh>/` and each cluster's vendor console note. Only sorted maps
//! feed the templates: byte-identical output.

mod objects;
pub(crate) mod templates;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::plan::{
    Cluster, ClusterRole, ControlPlaneMode, FailStrategy, OutlierDetection, Phase, Retries, Service,
};
use crate::policy::{PolicyFor, wire_policy};
use crate::secret::RouteSecrets;
use crate::topology::{DEFAULT_EAST_WEST_PORT, Topology};
use geolb_policy::DEFAULT_ROUTING_HEADER;
use geolb_policy::probe::{REGION_LABEL, probe_subset};
use geolb_policy::token::route_header_value;
use geolb_policy::units::DurationText;
use geolb_policy::wire;
use objects::*;

/// Rendered files: path relative to the output directory -> content.
pub type Manifests = BTreeMap<String, String>;

/// Which Istio API carries the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ExtensionApi {
    /// `WasmPlugin` (every Istio version geolb targets).
    #[default]
    Wasmplugin,
    /// `TrafficExtension` (Istio 1.30+; supersedes WasmPlugin).
    Trafficextension,
}

/// Inputs of a render besides the plan.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Which API carries the filter.
    pub extension_api: ExtensionApi,
    /// The route secrets the routing header's tokens come from.
    pub route_secrets: RouteSecrets,
}

/// Why rendering failed (a bug: validated plans always render).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RenderError {
    /// A template failed.
    #[error("template {template} failed: {source}")]
    #[diagnostic(
        code(geolb::render::template),
        help("this is a bug in geolb; please report it with the plan")
    )]
    Template {
        /// Template id.
        template: &'static str,
        /// minijinja's error.
        #[source]
        source: minijinja::Error,
    },
    /// `--extension-api trafficextension` on a mesh older than 1.30.
    #[error("TrafficExtension needs Istio 1.30 or newer, but mesh {mesh} targets {version}")]
    #[diagnostic(
        code(geolb::render::extension_api),
        help("use --extension-api wasmplugin, or raise meshes[].istioVersion")
    )]
    ExtensionApi {
        /// The mesh.
        mesh: String,
        /// Its target.
        version: String,
    },
}

/// The prefix of geolb's region subsets, reserved in every DestinationRule it renders.
pub const SUBSET_PREFIX: &str = "geolb-";

/// Subset name of a region (the e2e harness and the filter rely on it).
pub fn region_subset(region: &str) -> String {
    format!("{SUBSET_PREFIX}{region}")
}

const DEFAULT_RETRY_ON: &str = "connect-failure,refused-stream,unavailable,cancelled,503";

/// Methods RFC 9110 (section 9.2.2) calls idempotent: a request of one of these may be
/// sent twice without changing the outcome, so its route also retries a reset (a
/// connection dropped with the request in flight, or a per-try timeout).
/// `:method` regex of Istio's `HTTPMatchRequest.method` (RE2, whole value).
const IDEMPOTENT_METHODS: &str = "GET|HEAD|OPTIONS|PUT|DELETE|TRACE";

/// The Envoy retry condition added on idempotent routes: the upstream reset, closed or
/// timed out the attempt after it was sent (Envoy `reset`, covers per-try timeouts).
const RESET_RETRY_ON: &str = "reset";

/// Splits each route in two, in this order: the idempotent methods (every match block
/// plus the method match, retries with `reset` added) then the same route for every
/// other method (the plain retries, which only resend what never reached the app).
fn split_by_method(routes: Vec<HttpRoute>, retries: &Retry) -> Vec<HttpRoute> {
    let mut idempotent_retries = retries.clone();
    if let Some(on) = &retries.retry_on
        && !on.split(',').any(|c| c.trim() == RESET_RETRY_ON)
    {
        idempotent_retries.retry_on = Some(format!("{on},{RESET_RETRY_ON}"));
    }
    let method = StringMatch::Regex(IDEMPOTENT_METHODS.to_owned());
    let mut out = Vec::with_capacity(routes.len() * 2);
    for route in routes {
        let matches = if route.matches.is_empty() {
            vec![MatchBlock::default()]
        } else {
            route.matches.clone()
        };
        let first = HttpRoute {
            name: format!("{}-idempotent", route.name),
            matches: matches
                .into_iter()
                .map(|block| MatchBlock {
                    method: Some(method.clone()),
                    ..block
                })
                .collect(),
            retries: Some(idempotent_retries.clone()),
            ..route.clone()
        };
        out.push(first);
        out.push(HttpRoute {
            retries: Some(retries.clone()),
            ..route
        });
    }
    out
}
const DEFAULT_PLUGIN_NAME: &str = "geolb";
const GATEWAY_NAMESPACE: &str = "istio-system";

struct Renderer<'t, 'p> {
    env: &'static minijinja::Environment<'static>,
    topo: &'t Topology<'p>,
    options: &'t RenderOptions,
    /// Route tokens: the current one (the policy's) first, then a previous one the
    /// VirtualServices still accept while the secret rotates.
    tokens: Vec<String>,
    files: Manifests,
}

/// Renders every manifest of a validated plan.
pub fn render(topo: &Topology<'_>, options: &RenderOptions) -> Result<Manifests, RenderError> {
    if options.extension_api == ExtensionApi::Trafficextension {
        for mesh in &topo.plan.meshes {
            let version = mesh
                .istio_version
                .clone()
                .unwrap_or_else(|| crate::plan::DEFAULT_ISTIO_VERSION.to_owned());
            if crate::validate::target_minor(Some(&version)) < 30 {
                return Err(RenderError::ExtensionApi {
                    mesh: mesh.name.clone(),
                    version,
                });
            }
        }
    }
    let env = templates::environment().map_err(|source| RenderError::Template {
        template: "(loading)",
        source,
    })?;
    let mut r = Renderer {
        env,
        topo,
        options,
        tokens: options.route_secrets.tokens(topo.plan),
        files: Manifests::new(),
    };
    let mesh_files = r.mesh_wide()?;
    r.kustomization("mesh", mesh_files)?;
    // A managed mesh's control plane reads Istio objects from its own API server.
    for mesh in &topo.plan.meshes {
        if mesh.control_plane == ControlPlaneMode::Managed {
            r.kustomization(
                &format!("control-plane/{}", mesh.name),
                vec![String::from("../../mesh")],
            )?;
        }
    }
    // A cluster's folder pulls in the Istio objects only where its control plane
    // reads them from the cluster's API server.
    for cluster in &topo.plan.clusters {
        let mut resources = Vec::new();
        if topo.reads_istio_config(cluster) {
            resources.push(String::from("../../mesh"));
        }
        resources.extend(r.cluster(cluster)?);
        if !resources.is_empty() {
            r.kustomization(&format!("clusters/{}", cluster.name), resources)?;
        }
    }
    Ok(r.files)
}

impl Renderer<'_, '_> {
    fn emit(
        &mut self,
        path: String,
        template: &'static str,
        context: impl Serialize,
    ) -> Result<(), RenderError> {
        let text = self
            .env
            .get_template(template)
            .and_then(|t| t.render(context))
            .map_err(|source| RenderError::Template { template, source })?;
        self.files.insert(path, text);
        Ok(())
    }

    fn kustomization(&mut self, dir: &str, resources: Vec<String>) -> Result<(), RenderError> {
        self.emit(
            format!("{dir}/kustomization.yaml"),
            templates::KUSTOMIZATION,
            Kustomization {
                resources: resources.into_iter().collect(),
            },
        )
    }

    fn header(&self) -> String {
        self.topo
            .plan
            .filter
            .routing_header
            .clone()
            .unwrap_or_else(|| DEFAULT_ROUTING_HEADER.to_owned())
    }

    /// The token the policy carries.
    fn token(&self) -> &str {
        self.tokens.first().map_or("", String::as_str)
    }

    /// The routing header matches that route to `region`: one per accepted token
    /// (Istio ORs a route's match blocks), each the exact `<region>.<token>` the
    /// filter writes. A bare region, or one with another token, matches none.
    fn region_matches(&self, header: &str, region: &str) -> Vec<BTreeMap<String, StringMatch>> {
        self.tokens
            .iter()
            .map(|token| {
                let value = StringMatch::Exact(route_header_value(region, token));
                BTreeMap::from([(header.to_owned(), value)])
            })
            .collect()
    }

    /// Files every cluster applies: per service DR + VS, the app WasmPlugins, the
    /// ingress Gateways and their routes, the cross-network Gateway.
    fn mesh_wide(&mut self) -> Result<Vec<String>, RenderError> {
        let mut resources = Vec::new();
        self.service_objects(&mut resources)?;
        self.app_extensions(&mut resources)?;
        self.ingress_objects(&mut resources)?;
        self.gateway_extensions(&mut resources)?;
        if self.topo.multi_network() {
            self.cross_network_gateway(&mut resources)?;
        }
        Ok(resources)
    }

    /// Emits `mesh/<path>` and lists `path` among the mesh's kustomize resources.
    fn emit_mesh(
        &mut self,
        resources: &mut Vec<String>,
        path: String,
        template: &'static str,
        context: impl Serialize,
    ) -> Result<(), RenderError> {
        self.emit(format!("mesh/{path}"), template, context)?;
        resources.push(path);
        Ok(())
    }

    /// Each service's DestinationRule and VirtualService.
    fn service_objects(&mut self, resources: &mut Vec<String>) -> Result<(), RenderError> {
        for service in &self.topo.plan.services {
            let (namespace, name) = (&service.namespace, &service.name);
            let rule = self.destination_rule(service);
            let path = format!("{namespace}/destinationrule-{name}.yaml");
            self.emit_mesh(resources, path, templates::DESTINATION_RULE, rule)?;
            let routes = self.virtual_service(service);
            let path = format!("{namespace}/virtualservice-{name}.yaml");
            self.emit_mesh(resources, path, templates::VIRTUAL_SERVICE, routes)?;
        }
        Ok(())
    }

    /// The app namespaces' filter.
    fn app_extensions(&mut self, resources: &mut Vec<String>) -> Result<(), RenderError> {
        let plan = self.topo.plan;
        let namespaces: BTreeSet<&str> = if plan.filter.namespaces.is_empty() {
            plan.services.iter().map(|s| s.namespace.as_str()).collect()
        } else {
            plan.filter.namespaces.iter().map(String::as_str).collect()
        };
        let policy = wire_policy(self.topo, PolicyFor::Sidecars, self.token());
        for ns in namespaces {
            let selector = plan.filter.workload_selector.clone();
            let (path, template, ctx) = self.extension(ns, self.plugin_name(), selector, &policy);
            self.emit_mesh(resources, path, template, ctx)?;
        }
        Ok(())
    }

    /// Each ingress gateway's Gateway and the VirtualService of its routes.
    fn ingress_objects(&mut self, resources: &mut Vec<String>) -> Result<(), RenderError> {
        for gw in &self.topo.plan.gateways {
            let hosts = if gw.hosts.is_empty() {
                vec![String::from("*")]
            } else {
                gw.hosts.clone()
            };
            let server = Server {
                port: ServerPort {
                    number: gw.port.unwrap_or(80),
                    name: "http",
                    protocol: "HTTP",
                },
                hosts: hosts.clone(),
                tls: None,
            };
            let gateway = Gateway {
                name: gw.name.clone(),
                namespace: gw.namespace.clone(),
                selector: gateway_selector(&gw.selector),
                servers: vec![server],
            };
            let path = format!("{}/gateway-{}.yaml", gw.namespace, gw.name);
            self.emit_mesh(resources, path, templates::GATEWAY, gateway)?;
            let routes = self.ingress_routes(gw, hosts);
            let path = format!("{}/virtualservice-{}.yaml", gw.namespace, gw.name);
            self.emit_mesh(resources, path, templates::VIRTUAL_SERVICE, routes)?;
        }
        Ok(())
    }

    /// The ingress gateways' filter: services also found by their route (a gateway's
    /// Host is an external name). One object per gateway workload for every cluster:
    /// each gateway learns its region from its cluster ID.
    fn gateway_extensions(&mut self, resources: &mut Vec<String>) -> Result<(), RenderError> {
        let plan = self.topo.plan;
        if !plan.filter.gateways.unwrap_or(true) || plan.gateways.is_empty() {
            return Ok(());
        }
        let policy = wire_policy(self.topo, PolicyFor::Gateways, self.token());
        let mut seen = BTreeSet::new();
        for gw in &plan.gateways {
            let ns = gw
                .workload_namespace
                .clone()
                .unwrap_or_else(|| GATEWAY_NAMESPACE.to_owned());
            let selector = gateway_selector(&gw.selector);
            if !seen.insert((ns.clone(), selector.clone())) {
                continue;
            }
            let name = format!("{}-{}", self.plugin_name(), gw.name);
            let (path, template, ctx) = self.extension(&ns, name, selector, &policy);
            self.emit_mesh(resources, path, template, ctx)?;
        }
        Ok(())
    }

    /// The Gateway of multi-network meshes that lets other networks reach this one's
    /// services through the east-west gateway (mTLS passed through).
    fn cross_network_gateway(&mut self, resources: &mut Vec<String>) -> Result<(), RenderError> {
        let server = Server {
            port: ServerPort {
                number: 15443,
                name: "tls",
                protocol: "TLS",
            },
            hosts: vec![String::from("*.local")],
            tls: Some(ServerTls {
                mode: "AUTO_PASSTHROUGH",
            }),
        };
        let gateway = Gateway {
            name: String::from("cross-network-gateway"),
            namespace: String::from(GATEWAY_NAMESPACE),
            selector: BTreeMap::from([(String::from("istio"), String::from("eastwestgateway"))]),
            servers: vec![server],
        };
        let path = String::from("istio-system/gateway-cross-network-gateway.yaml");
        self.emit_mesh(resources, path, templates::GATEWAY, gateway)
    }

    fn plugin_name(&self) -> String {
        self.topo
            .plan
            .filter
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_PLUGIN_NAME.to_owned())
    }

    /// WasmPlugin or TrafficExtension for one namespace.
    fn extension<'p>(
        &self,
        namespace: &str,
        name: String,
        selector: BTreeMap<String, String>,
        policy: &'p wire::Policy,
    ) -> (String, &'static str, Extension<'p>) {
        let f = &self.topo.plan.filter;
        let (kind, template, phase) = match self.options.extension_api {
            ExtensionApi::Wasmplugin => (
                "wasmplugin",
                templates::WASM_PLUGIN,
                phase_text(f.phase, "UNSPECIFIED_PHASE"),
            ),
            ExtensionApi::Trafficextension => (
                "trafficextension",
                templates::TRAFFIC_EXTENSION,
                phase_text(f.phase, "UNSPECIFIED"),
            ),
        };
        let path = format!("{namespace}/{kind}-{name}.yaml");
        let extension = Extension {
            name,
            namespace: namespace.to_owned(),
            selector,
            url: f.url.clone(),
            sha256: f.sha256.clone(),
            plugin_name: self.plugin_name(),
            fail_strategy: f.fail_strategy.unwrap_or(FailStrategy::FailOpen).as_str(),
            phase,
            priority: f.priority.unwrap_or(10),
            policy,
        };
        (path, template, extension)
    }

    /// The service's outlier detection with geolb's defaults where the plan is silent.
    fn outlier_detection(service: &Service) -> OutlierDetection {
        let od = service.outlier_detection.clone().unwrap_or_default();
        OutlierDetection {
            consecutive_5xx_errors: od.consecutive_5xx_errors.or(Some(5)),
            interval: od.interval.or(Some(DurationText::from_millis(10_000))),
            base_ejection_time: od
                .base_ejection_time
                .or(Some(DurationText::from_millis(30_000))),
            max_ejection_percent: od.max_ejection_percent.or(Some(100)),
            ..od
        }
    }

    /// Label that puts region `region` first in its subset's failoverPriority. On
    /// multi-network meshes endpoints behind an east-west gateway carry only network
    /// and cluster labels: when a region is exactly one network,
    /// the network label says the same thing and also matches those endpoints.
    fn priority_label(&self, region: &str) -> String {
        if self.topo.multi_network() {
            let networks = self.topo.region_networks(region);
            if let (1, Some(network)) = (networks.len(), networks.first()) {
                let regions = self.topo.network_regions(network);
                if regions.len() == 1 && regions.contains(region) {
                    return format!("topology.istio.io/network={network}");
                }
            }
        }
        format!("{REGION_LABEL}={region}")
    }

    fn destination_rule(&self, service: &Service) -> DestinationRule {
        let outlier = Self::outlier_detection(service);
        let pool = service.connection_pool.clone();
        let traffic = service.traffic.clone().unwrap_or_default();
        // Native failover: first hop of each chain (Istio takes one `to` per `from`).
        let failover = traffic
            .failover
            .iter()
            .filter_map(|(from, chain)| {
                chain.first().map(|to| Failover {
                    from: from.clone(),
                    to: to.clone(),
                })
            })
            .collect();
        let top = TrafficPolicy {
            connection_pool: pool.clone(),
            load_balancer: Some(LoadBalancer {
                locality_lb_setting: LocalityLbSetting {
                    enabled: true,
                    failover,
                    failover_priority: Vec::new(),
                },
            }),
            outlier_detection: outlier.clone(),
        };
        let mut subsets = Vec::new();
        for region in self.topo.service_regions(service) {
            let policy = TrafficPolicy {
                connection_pool: pool.clone(),
                load_balancer: Some(LoadBalancer {
                    locality_lb_setting: LocalityLbSetting {
                        enabled: true,
                        failover: Vec::new(),
                        failover_priority: vec![self.priority_label(region)],
                    },
                }),
                outlier_detection: outlier.clone(),
            };
            subsets.push(Subset {
                name: region_subset(region),
                labels: BTreeMap::new(),
                traffic_policy: Some(policy),
            });
        }
        // Probes only: the region's endpoints and no others, so that a probe of a dead
        // region fails instead of being answered elsewhere. Envoy's outlier detection
        // is off there (`consecutive5xxErrors: 0`, which istiod renders unenforced):
        // a failed probe must not eject the host for longer than the region is down,
        // or the probes would report a recovered region dead. The rest of the
        // top-level traffic policy applies (its failover finds nothing to fail over to).
        if service.probe.is_some() {
            for region in self.topo.service_regions(service) {
                subsets.push(Subset {
                    name: probe_subset(region),
                    labels: BTreeMap::from([(REGION_LABEL.to_owned(), region.to_owned())]),
                    traffic_policy: Some(TrafficPolicy {
                        connection_pool: None,
                        load_balancer: None,
                        outlier_detection: OutlierDetection {
                            consecutive_5xx_errors: Some(0),
                            ..OutlierDetection::default()
                        },
                    }),
                });
            }
        }
        for version in &service.versions {
            let labels = if version.labels.is_empty() {
                BTreeMap::from([(String::from("version"), version.name.clone())])
            } else {
                version.labels.clone()
            };
            subsets.push(Subset {
                name: version.name.clone(),
                labels,
                traffic_policy: None,
            });
        }
        DestinationRule {
            name: service.name.clone(),
            namespace: service.namespace.clone(),
            host: Topology::service_host(service),
            traffic_policy: top,
            subsets,
        }
    }

    /// A route's retries: the plan's, geolb's defaults where it is silent.
    fn retries(r: Retries) -> Retry {
        // 0 disables retries; Istio refuses any other retry field beside it
        // (validateHTTPRetry), and validation refuses a plan that sets one.
        if r.attempts == Some(0) {
            return Retry {
                attempts: 0,
                retry_on: None,
                retry_remote_localities: None,
                per_try_timeout: None,
            };
        }
        Retry {
            attempts: r.attempts.unwrap_or(2),
            retry_on: Some(r.retry_on.unwrap_or_else(|| DEFAULT_RETRY_ON.to_owned())),
            retry_remote_localities: Some(true),
            per_try_timeout: r.per_try_timeout.map(|t| t.as_str().to_owned()),
        }
    }

    /// A route to `subset` of `service` (empty: every region's endpoints).
    fn route(
        name: String,
        matches: Vec<MatchBlock>,
        service: &Service,
        subset: String,
    ) -> HttpRoute {
        HttpRoute {
            name,
            matches,
            host: Topology::service_host(service),
            port: service.port,
            subset,
            retries: None,
        }
    }

    fn virtual_service(&self, service: &Service) -> VirtualService {
        let header = self.header();
        let mut routes: Vec<HttpRoute> = self
            .topo
            .service_regions(service)
            .into_iter()
            .map(|region| {
                let matches = self
                    .region_matches(&header, region)
                    .into_iter()
                    .map(|headers| MatchBlock {
                        headers,
                        ..MatchBlock::default()
                    })
                    .collect();
                Self::route(
                    region_subset(region),
                    matches,
                    service,
                    region_subset(region),
                )
            })
            .collect();
        routes.push(Self::route(
            String::from("geolb-fallback"),
            Vec::new(),
            service,
            String::new(),
        ));
        VirtualService {
            name: service.name.clone(),
            namespace: service.namespace.clone(),
            hosts: vec![Topology::service_host(service)],
            gateways: Vec::new(),
            header,
            routes: split_by_method(
                routes,
                &Self::retries(service.retries.clone().unwrap_or_default()),
            ),
        }
    }

    /// The ingress gateway's routes: per service and region the path matches plus
    /// the routing header, then the same paths without it (fail-open).
    fn ingress_routes(
        &self,
        gw: &crate::plan::IngressGateway,
        hosts: Vec<String>,
    ) -> VirtualService {
        let header = self.header();
        let mut routes = Vec::new();
        for route in &gw.routes {
            let Some(service) = self.topo.service(&route.service) else {
                continue;
            };
            let uris: Vec<StringMatch> = route
                .exact
                .iter()
                .map(|p| StringMatch::Exact(p.clone()))
                .chain(route.prefix.iter().map(|p| StringMatch::Prefix(p.clone())))
                .collect();
            for region in self.topo.service_regions(service) {
                let matches = uris
                    .iter()
                    .flat_map(|uri| {
                        self.region_matches(&header, region)
                            .into_iter()
                            .map(move |headers| MatchBlock {
                                headers,
                                method: None,
                                uri: Some(uri.clone()),
                            })
                    })
                    .collect();
                let name = format!("{}-{}", service.name, region_subset(region));
                routes.push(Self::route(name, matches, service, region_subset(region)));
            }
            let matches = uris
                .into_iter()
                .map(|uri| MatchBlock {
                    uri: Some(uri),
                    ..MatchBlock::default()
                })
                .collect();
            let name = format!("{}-geolb-fallback", service.name);
            routes.push(Self::route(name, matches, service, String::new()));
        }
        let retries = Self::retries(Retries::default());
        VirtualService {
            name: gw.name.clone(),
            namespace: gw.namespace.clone(),
            hosts,
            gateways: vec![gw.name.clone()],
            header,
            routes: split_by_method(routes, &retries),
        }
    }

    /// A cluster's own files; returns the kustomize resources among them.
    fn cluster(&mut self, cluster: &Cluster) -> Result<Vec<String>, RenderError> {
        let topo = self.topo;
        let dir = format!("clusters/{}", cluster.name);
        let mut resources = Vec::new();
        let network = topo.network_of(cluster);
        let role = topo.role_of(cluster);
        let mode = topo.mesh_of(cluster).map(|m| m.control_plane);

        let mut namespace = Namespace {
            name: ISTIO_NAMESPACE,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        };
        if let Some(network) = network {
            namespace.labels.insert(NETWORK_LABEL, network.to_owned());
        }
        if mode == Some(ControlPlaneMode::PrimaryRemote) && role == ClusterRole::Remote {
            namespace.annotations.insert(
                CONTROL_PLANE_CLUSTERS,
                topo.control_plane_clusters(cluster).join(","),
            );
        }
        if !namespace.labels.is_empty() || !namespace.annotations.is_empty() {
            self.emit(
                format!("{dir}/istio-system/namespace.yaml"),
                templates::NAMESPACE,
                &namespace,
            )?;
            resources.push(String::from("istio-system/namespace.yaml"));
        }
        match mode {
            Some(ControlPlaneMode::Managed) => {
                self.vendor_console(cluster)?;
                self.east_west_gateway(cluster, false)?;
            }
            Some(mode) => self.install_inputs(cluster, mode, &mut resources)?,
            None => {}
        }
        Ok(resources)
    }

    /// istioctl inputs of a cluster whose control plane the user installs; the istiod
    /// exposure of a primary-remote primary (a kustomize resource, added to `resources`).
    fn install_inputs(
        &mut self,
        cluster: &Cluster,
        mode: ControlPlaneMode,
        resources: &mut Vec<String>,
    ) -> Result<(), RenderError> {
        let topo = self.topo;
        let dir = format!("clusters/{}", cluster.name);
        let network = topo.network_of(cluster);
        let role = topo.role_of(cluster);
        let primary_remote = mode == ControlPlaneMode::PrimaryRemote;
        let cluster_id = Topology::cluster_id(cluster);
        let mut global = GlobalValues {
            mesh_id: topo.mesh_id_of(cluster),
            multi_cluster: MultiClusterValues {
                cluster_name: cluster_id.to_owned(),
            },
            network: network.map(str::to_owned),
            external_istiod: None,
            remote_pilot_address: None,
            mesh_networks: BTreeMap::new(),
        };
        let mut istiod_remote = None;
        let profile = match role {
            ClusterRole::Primary => {
                global.mesh_networks = self.mesh_networks();
                if primary_remote {
                    global.external_istiod = Some(true);
                }
                "default"
            }
            ClusterRole::Remote => {
                // Validation requires it in primary-remote meshes: without it the
                // chart creates no `istiod` Service for the injector webhook.
                global.remote_pilot_address = cluster.istiod_address.clone();
                let net = network.map(|n| format!("/net/{n}")).unwrap_or_default();
                istiod_remote = Some(IstiodRemoteValues {
                    injection_path: format!("/inject/cluster/{cluster_id}{net}"),
                });
                "remote"
            }
        };
        let operator = IstioOperator {
            name: cluster.name.clone(),
            profile,
            primary_remote,
            values: InstallValues {
                global,
                istiod_remote,
            },
        };
        self.emit(
            format!("{dir}/install/istiooperator.yaml"),
            templates::ISTIO_OPERATOR,
            &operator,
        )?;
        // A primary-remote primary exposes istiod to the remotes on its east-west
        // gateway, so it needs one even on a single network. Every primary gets the
        // exposure objects: each reads its own API server, and all must hold the same
        // Istio configuration (a primary without a gateway has no pod they select).
        let exposes_istiod = primary_remote && role == ClusterRole::Primary;
        if exposes_istiod {
            self.emit(
                format!("{dir}/istio-system/istiod-exposure.yaml"),
                templates::ISTIOD_EXPOSURE,
                (),
            )?;
            resources.push(String::from("istio-system/istiod-exposure.yaml"));
        }
        self.east_west_gateway(cluster, exposes_istiod)
    }

    /// The east-west gateway install of a cluster with a network (or a primary-remote
    /// primary exposing istiod on it), as Istio's gen-eastwest-gateway.sh renders it.
    /// Rendered in managed meshes too: Mspider's multi-network guide has the user
    /// install it with istioctl in each data-plane cluster.
    fn east_west_gateway(
        &mut self,
        cluster: &Cluster,
        exposes_istiod: bool,
    ) -> Result<(), RenderError> {
        let dir = format!("clusters/{}", cluster.name);
        let network = self.topo.network_of(cluster);
        if let Some(gw) = &cluster.east_west_gateway
            && (network.is_some() || exposes_istiod)
        {
            let service_annotations = if cluster.load_balancer_pools.is_empty() {
                BTreeMap::new()
            } else {
                BTreeMap::from([(METALLB_IPS, gw.address.clone())])
            };
            self.emit(
                format!("{dir}/install/eastwest-gateway.yaml"),
                templates::EAST_WEST_GATEWAY,
                &EastWestGateway {
                    network: network.map(str::to_owned),
                    port: gw.port.unwrap_or(DEFAULT_EAST_WEST_PORT),
                    service_annotations,
                },
            )?;
        }
        Ok(())
    }

    /// A managed mesh's cluster: no install inputs (the vendor installs Istio), a note
    /// of what the vendor's console must be given for the rendered objects to work.
    fn vendor_console(&mut self, cluster: &Cluster) -> Result<(), RenderError> {
        let topo = self.topo;
        let network = topo.network_of(cluster);
        let mesh = topo.mesh_of(cluster);
        let mut node_labels = BTreeMap::from([(REGION_LABEL, cluster.region.clone())]);
        if let Some(zone) = &cluster.zone {
            node_labels.insert(ZONE_LABEL, zone.clone());
        }
        if let Some(subzone) = &cluster.subzone {
            node_labels.insert(SUBZONE_LABEL, subzone.clone());
        }
        let mesh_network: BTreeMap<String, MeshNetwork> = network
            .and_then(|n| self.mesh_networks().remove_entry(n))
            .into_iter()
            .collect();
        let context = VendorConsole {
            cluster: cluster.name.clone(),
            cluster_id: Topology::cluster_id(cluster).to_owned(),
            mesh: mesh.map(|m| m.name.clone()).unwrap_or_default(),
            mesh_id: topo.mesh_id_of(cluster),
            hosts_control_plane: topo.role_of(cluster) == ClusterRole::Primary,
            region: cluster.region.clone(),
            node_labels,
            network: network.map(str::to_owned),
            east_west_gateway: cluster
                .east_west_gateway
                .as_ref()
                .map(|g| format!("{}:{}", g.address, g.port.unwrap_or(DEFAULT_EAST_WEST_PORT))),
            istiod_address: cluster.istiod_address.clone(),
            ingress_address: cluster.ingress_address.clone(),
            mesh_network,
            has_kustomization: network.is_some(),
        };
        self.emit(
            format!("clusters/{}/vendor-console.md", cluster.name),
            templates::VENDOR_CONSOLE,
            &context,
        )
    }

    /// meshNetworks of multi-network meshes: per network the clusters whose endpoints
    /// are on it (by cluster ID) and its east-west gateways.
    fn mesh_networks(&self) -> BTreeMap<String, MeshNetwork> {
        let mut networks = BTreeMap::new();
        if !self.topo.multi_network() {
            return networks;
        }
        let names: BTreeSet<&str> = self
            .topo
            .plan
            .clusters
            .iter()
            .filter_map(|c| self.topo.network_of(c))
            .collect();
        for network in names {
            let clusters = self.topo.clusters_in_network(network);
            let endpoints = clusters
                .iter()
                .map(|c| NetworkEndpoint {
                    from_registry: Topology::cluster_id(c).to_owned(),
                })
                .collect();
            let gateways = clusters
                .iter()
                .filter_map(|c| c.east_west_gateway.as_ref())
                .map(|g| NetworkGateway {
                    address: g.address.clone(),
                    port: g.port.unwrap_or(DEFAULT_EAST_WEST_PORT),
                })
                .collect();
            networks.insert(
                network.to_owned(),
                MeshNetwork {
                    endpoints,
                    gateways,
                },
            );
        }
        networks
    }
}

const ISTIO_NAMESPACE: &str = "istio-system";
const NETWORK_LABEL: &str = "topology.istio.io/network";
const CONTROL_PLANE_CLUSTERS: &str = "topology.istio.io/controlPlaneClusters";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const SUBZONE_LABEL: &str = "topology.istio.io/subzone";
const METALLB_IPS: &str = "metallb.universe.tf/loadBalancerIPs";

fn gateway_selector(selector: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    if selector.is_empty() {
        BTreeMap::from([(String::from("istio"), String::from("ingressgateway"))])
    } else {
        selector.clone()
    }
}

fn phase_text(phase: Option<Phase>, unspecified: &'static str) -> &'static str {
    match phase.unwrap_or(Phase::Stats) {
        Phase::Unspecified => unspecified,
        Phase::Authn => "AUTHN",
        Phase::Authz => "AUTHZ",
        Phase::Stats => "STATS",
    }
}
