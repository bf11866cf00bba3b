//! Bookinfo from a plan, on loopback: a test app for every (service, version, cluster)
//! the plan places, the registry istiod would see, and the proxies of the request chain
//! client → ingress gateway → productpage → productpage's sidecar → reviews, each an
//! Envoy configured by the istiod stand-in from the manifests `geolb render` wrote.
//!
//! * productpage pods: [`Productpage`] fakes, each calling reviews through its own
//!   sidecar (translated for its cluster, node locality = the cluster's region);
//! * reviews pods: [`Upstream`]s answering like Bookinfo's v1 / v2 / v3 (by version name);
//! * every other pod (details, ratings): an [`Upstream`] answering its region, so the
//!   registry holds every service the plan has.
//!
//! Test apps run without a sidecar of their own (plain HTTP to the pod address); the
//! chain's Envoys are the client side, where geolb runs (WasmPlugin match mode CLIENT).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::apps::Productpage;
use crate::from_plan::{Placement, RenderedPlan};
use crate::istiod::{ClusterManifests, Proxy, Registry, Translated, translate};
use crate::upstream::{Body, Upstream};
use crate::{Envoy, Request};

/// Istio's outbound listener for the Bookinfo port (sidecars) and the ingress Gateway's
/// listener (port 80 in the seed plans).
pub const SIDECAR_LISTENER: &str = "0.0.0.0_9080";

/// One running pod stand-in.
#[derive(Debug)]
pub enum App {
    Productpage(Productpage),
    Service(Upstream),
}

/// The apps of a rendered plan.
#[derive(Debug)]
pub struct Bookinfo {
    pub plan: RenderedPlan,
    pub apps: BTreeMap<Placement, App>,
}

impl Bookinfo {
    /// Starts an app for every placement of the plan.
    pub fn start(plan: RenderedPlan) -> Bookinfo {
        let apps = plan
            .placements()
            .into_iter()
            .map(|p| {
                let region = plan.region_of(&p.cluster).to_string();
                let app = if p.service == "productpage" {
                    App::Productpage(Productpage::start(&region))
                } else {
                    let u = Upstream::start(&region);
                    if p.service == "reviews" {
                        u.set_body(reviews_body(p.version.as_deref()));
                    }
                    App::Service(u)
                };
                (p, app)
            })
            .collect();
        Bookinfo { plan, apps }
    }

    /// The registry with every app, except those `scaled_to_zero` says are gone (no pods
    /// at all, so istiod has no endpoints for them). A stopped app keeps its endpoint:
    /// Kubernetes still lists a pod that crashed until its readiness probe fails.
    pub fn registry(&self, scaled_to_zero: impl Fn(&Placement) -> bool) -> Registry {
        self.plan.registry(|p| {
            if scaled_to_zero(p) {
                return None;
            }
            self.apps.get(p).map(|app| match app {
                App::Productpage(pp) => pp.addr(),
                App::Service(u) => u.addr(),
            })
        })
    }

    /// The reviews (or other service) app of `version` in `cluster`.
    pub fn upstream(&mut self, service: &str, version: &str, cluster: &str) -> &mut Upstream {
        let found = self
            .apps
            .iter_mut()
            .find(|(p, _)| p.is(service, Some(version)) && p.cluster == cluster);
        match found {
            Some((_, App::Service(u))) => u,
            _ => panic!("no {service} {version} app in {cluster}"),
        }
    }

    /// Every app of `service` whose cluster is in `region`.
    pub fn upstreams_in_region(&mut self, service: &str, region: &str) -> Vec<&mut Upstream> {
        let plan = &self.plan;
        self.apps
            .iter_mut()
            .filter(|(p, _)| p.service == service && plan.region_of(&p.cluster) == region)
            .filter_map(|(_, app)| match app {
                App::Service(u) => Some(u),
                App::Productpage(_) => None,
            })
            .collect()
    }

    /// The productpage apps with their placements.
    pub fn productpages(&self) -> Vec<(&Placement, &Productpage)> {
        self.apps
            .iter()
            .filter_map(|(p, app)| match app {
                App::Productpage(pp) => Some((p, pp)),
                App::Service(_) => None,
            })
            .collect()
    }

    /// What the istiod stand-in builds for `proxy` from `cluster`'s manifests.
    pub fn translate(&self, cluster: &str, registry: &Registry, proxy: &Proxy) -> Translated {
        let manifests = ClusterManifests::load(self.plan.root(), cluster)
            .unwrap_or_else(|e| panic!("load the manifests of {cluster}: {e}"));
        translate(&manifests, registry, proxy, &self.plan.environment(2))
            .unwrap_or_else(|e| panic!("translate for {} in {cluster}: {e}", proxy.name))
    }
}

/// Bookinfo's reviews versions: v1 no stars, v2 black stars, v3 red stars.
fn reviews_body(version: Option<&str>) -> Body {
    match version {
        Some("v2") => Body::ReviewsV2,
        Some("v3") => Body::ReviewsV3,
        _ => Body::ReviewsV1,
    }
}

/// The request chain of one cluster: its ingress gateway Envoy, and a sidecar Envoy for
/// every productpage app of the plan (whichever cluster it is in, so a page served
/// from another region still has its reviews).
pub struct Chain {
    pub gateway: Envoy,
    /// productpage's sidecars by the productpage's cluster.
    pub sidecars: BTreeMap<String, Envoy>,
    /// The gateway's listener.
    pub entry: SocketAddr,
}

impl Chain {
    /// Translates and starts the Envoys for `registry`, and points every productpage at
    /// its sidecar.
    pub fn start(bookinfo: &Bookinfo, ingress_cluster: &str, registry: &Registry) -> Chain {
        let mut sidecars = BTreeMap::new();
        for (p, page) in bookinfo.productpages() {
            let proxy = bookinfo
                .plan
                .sidecar(&p.service, p.version.as_deref(), &p.cluster);
            let envoy = Envoy::start_translated(&bookinfo.translate(&p.cluster, registry, &proxy));
            page.send_reviews_through(envoy.listener_addr(SIDECAR_LISTENER));
            sidecars.insert(p.cluster.clone(), envoy);
        }
        let gateway_proxy = bookinfo.plan.ingress_gateway(ingress_cluster);
        let gateway =
            Envoy::start_translated(&bookinfo.translate(ingress_cluster, registry, &gateway_proxy));
        let port = bookinfo
            .plan
            .plan
            .gateways
            .first()
            .and_then(|g| g.port)
            .unwrap_or(80);
        let entry = gateway.listener_addr(&format!("0.0.0.0_{port}"));
        Chain {
            gateway,
            sidecars,
            entry,
        }
    }

    /// The sidecar of the productpage in `cluster`.
    pub fn sidecar(&self, cluster: &str) -> &Envoy {
        self.sidecars
            .get(cluster)
            .unwrap_or_else(|| panic!("no productpage sidecar in {cluster}"))
    }
}

/// `GET /productpage` as a browser sends it to the ingress gateway.
pub fn productpage_request() -> Request {
    Request::get("/productpage").host("bookinfo.example.com")
}
