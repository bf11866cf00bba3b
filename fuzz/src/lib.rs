//! The fuzz targets' bodies, one function per target (the binaries in `src/bin/` only
//! hand AFL's input to them). Each checks invariants of the real code, not only that
//! it does not panic; a broken invariant panics, which AFL records as a crash.
//! `cargo test` in this crate runs every committed seed through its target.

use geolb::render::{self, ExtensionApi, RenderOptions};
use geolb::secret::RouteSecrets;
use geolb::source::Source;
use geolb::topology::Topology;
use geolb::{finding, validate};
use geolb_policy::cluster::OutboundCluster;
use geolb_policy::health::{self, Admission, HealthView, RegionHealth};
use geolb_policy::routing::{Decision, SourcePlan, SpillView};
use geolb_policy::source::{Origin, ProxyIdentity, SourceRegion};
use geolb_policy::spill::Window;
use geolb_policy::{CompiledPolicy, RegionId, ServiceId, parse_policy, parse_wire};

/// Where a policy input ends and the request shapes begin: the first NUL byte (JSON
/// never contains a raw NUL, so seeds are a policy file, a NUL, then free bytes).
const REQUESTS_AFTER: u8 = 0;

/// `plan_render` renders a plan a second time, to prove rendering deterministic, for
/// inputs whose length is a multiple of this.
const RERENDER_ONE_IN: usize = 8;

/// Reads the request-shape bytes front to back; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) << 32 | u64::from(self.u32())
    }
    /// A short string: up to 15 bytes, lossily UTF-8.
    fn text(&mut self) -> String {
        let len = usize::from(self.u8() % 16).min(self.0.len());
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(head).into_owned()
    }
    /// One of `choices` or, when the byte says so, a string from the input.
    fn pick(&mut self, choices: &[String]) -> Option<String> {
        let selector = usize::from(self.u8());
        match selector % (choices.len() + 2) {
            0 => None,
            1 => Some(self.text()),
            n => choices.get(n - 2).cloned(),
        }
    }
}

/// Target `policy_decision`: the JSON policy the filter receives, then, when it
/// validates, the source-region resolution and the routing decision for request
/// shapes taken from the rest of the input.
pub fn policy_decision(data: &[u8]) {
    let (json, requests) = match data.iter().position(|b| *b == REQUESTS_AFTER) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let policy = match parse_policy(json) {
        Ok(policy) => policy,
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused policy names no problem");
            assert!(!errors.to_string().is_empty());
            return;
        }
    };
    let again = parse_policy(json).expect("the same bytes validated a moment ago");
    assert_eq!(
        policy.fingerprint(),
        again.fingerprint(),
        "fingerprint not stable"
    );
    let wire = parse_wire(json).expect("a valid policy parses as wire types");

    // Every host of every service finds that service, in any case and with a port.
    for (index, service) in wire.services.iter().enumerate() {
        let id = Some(ServiceId(
            u16::try_from(index).expect("at most 65535 services"),
        ));
        for host in &service.hosts {
            assert_eq!(policy.service_for_authority(host), id, "host {host:?}");
            let upper = host.to_ascii_uppercase();
            assert_eq!(policy.service_for_authority(&upper), id, "host {upper:?}");
            let with_port = format!("{host}:9080");
            assert_eq!(
                policy.service_for_authority(&with_port),
                id,
                "{with_port:?}"
            );
            let cluster = format!("outbound|9080|v1|{host}");
            assert_eq!(policy.service_for_cluster(&cluster), id, "{cluster:?}");
        }
    }

    let cluster_ids: Vec<String> = wire.cluster_regions.keys().cloned().collect();
    let mut bytes = Bytes(requests);
    let cluster_id = bytes.pick(&cluster_ids);
    let locality = bytes.pick(policy.regions());
    let node_ids = [
        "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local".to_owned(),
        "router~10.0.0.2~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
            .to_owned(),
    ];
    let node_id = bytes.pick(&node_ids);
    let proxy = ProxyIdentity {
        cluster_id: cluster_id.as_deref(),
        locality_region: locality.as_deref(),
        node_id: node_id.as_deref(),
    };
    // `explain` is applied by sidecars alone.
    let at_sidecar = proxy.node_type() == Some("sidecar");
    match policy.clone().fit_for(proxy) {
        Ok(_) => assert!(!policy.explains() || at_sidecar, "explain at {node_id:?}"),
        Err(refused) => {
            assert!(policy.explains() && !at_sidecar, "{refused}");
            return;
        }
    }
    let resolution = policy.source_region(proxy);
    check_resolution(&policy, proxy, &resolution);
    let source = resolution.region();

    for _ in 0..=bytes.u8() % 4 {
        let authority = bytes.text();
        if let Some(id) = policy.service_for_authority(&authority) {
            assert!(
                policy.service(id).is_some(),
                "{authority:?} names no service"
            );
        }
    }
    for service in policy.services() {
        decide_for(&policy, service, source, &mut bytes);
    }
}

fn check_resolution(policy: &CompiledPolicy, proxy: ProxyIdentity<'_>, found: &SourceRegion) {
    assert!(!found.explain(policy).to_string().is_empty());
    match found {
        SourceRegion::Known { region, origin, .. } => {
            assert!(usize::from(region.0) < policy.regions().len());
            if policy.pinned_source_region().is_some() {
                assert_eq!(*origin, Origin::Pinned);
            }
        }
        SourceRegion::Unknown { .. } => {
            assert!(policy.pinned_source_region().is_none());
            let from_table = proxy.cluster_id.and_then(|id| policy.cluster_region(id));
            let from_locality = proxy.locality_region.and_then(|r| policy.region_id(r));
            assert!(from_table.is_none() && from_locality.is_none());
        }
    }
}

fn decide_for(
    policy: &CompiledPolicy,
    service: &geolb_policy::CompiledService,
    source: Option<RegionId>,
    bytes: &mut Bytes<'_>,
) {
    let slots = service.regions().len();
    let plan = SourcePlan::new(service, source);
    if source.is_none() {
        assert!(plan.targets().is_empty());
    } else {
        assert!(!plan.targets().is_empty(), "{}: no target", service.name());
        let total: u32 = plan.targets().iter().map(|t| t.weight).sum();
        assert!(
            total == 100 || plan.targets().len() == 1,
            "weights sum to {total}"
        );
        for target in plan.targets() {
            let mut order = target.preference.clone();
            order.sort_unstable();
            assert_eq!(order, (0..slots).collect::<Vec<_>>(), "not every slot once");
        }
    }

    // All healthy: every window of 100 picks gives each target exactly its weight.
    let config = service.health();
    let mut rr = plan.round_robin();
    let mut picks = vec![0u32; slots];
    for _ in 0..100 {
        match plan.decide(
            &mut rr,
            &HealthView::all_healthy(),
            config,
            0,
            0,
            SpillView::none(),
        ) {
            Decision::Route { slot, primary, .. } => {
                assert_eq!(slot, primary, "failover while all are healthy");
                *picks.get_mut(slot).expect("slot of the service") += 1;
            }
            Decision::NoHealthyRegion { .. } => panic!("all healthy, none routed"),
            Decision::Passthrough => assert!(source.is_none()),
        }
    }
    for target in plan.targets().iter().filter(|_| plan.targets().len() > 1) {
        let slot = target.preference[0];
        assert_eq!(picks[slot], target.weight, "slot {slot} of {picks:?}");
    }

    // A health table from the input: records driven through the state machine.
    let mut records = vec![RegionHealth::default(); slots];
    let mut now = u64::from(bytes.u32());
    for _ in 0..bytes.u8() % 16 {
        now = now.saturating_add(u64::from(bytes.u16()) * 100);
        let Some(record) = records.get_mut(usize::from(bytes.u8()) % slots.max(1)) else {
            break;
        };
        match bytes.u8() % 6 {
            0 => record.record_failure(config, now),
            1 => record.record_served_elsewhere(config, now),
            // Probe results (meaningful when the policy has probes).
            3 => record.record_probe(config, bytes.u8() % 2 == 0, now),
            4 => {
                let before = *record;
                let t = record.record_probe(config, false, now);
                if config.probe.is_none() {
                    assert_eq!(*record, before, "a probe changed a service without probes");
                }
                t
            }
            2 => {
                // The operator's drain, with or without a ramp.
                let flags = bytes.u8();
                record.mark_drained(flags & 1 == 1, flags & 2 == 2, config, now);
                health::Transition::None
            }
            _ => record.record_success(config, now),
        };
    }
    // Graded spill windows from the input.
    let mut windows = vec![Window::default(); slots];
    for _ in 0..bytes.u8() % 64 {
        let slot = usize::from(bytes.u8()) % slots.max(1);
        let failed = bytes.u8() % 2 == 0;
        let weight = u32::from(bytes.u8() % 17);
        if let Some(window) = windows.get_mut(slot) {
            window.record(failed, weight, config, now);
        }
    }
    for window in &windows {
        let kept = window.kept_permille(config, now);
        assert!((50..=1_000).contains(&kept), "kept {kept}");
    }
    let shape = service.table_shape();
    let table = health::encode_table(&records, shape);
    assert_eq!(
        health::decode_table(Some(&table), shape),
        records,
        "table round trip"
    );
    let garbage_table;
    let table: &[u8] = if bytes.u8() % 8 == 0 {
        garbage_table = bytes.0.to_vec();
        &garbage_table
    } else {
        &table
    };
    let view = HealthView::new(Some(table), shape);
    let when = now.saturating_add(bytes.u64() % 600_000);
    for _ in 0..=bytes.u8() % 8 {
        let dice = bytes.u32();
        let decision = plan.decide(
            &mut rr,
            &view,
            config,
            when,
            dice,
            SpillView::new(&windows, when),
        );
        let admitted = |slot: usize| {
            !matches!(
                view.get(slot).admission(config, when),
                Admission::Ejected | Admission::Drained
            )
        };
        match decision {
            Decision::Route { slot, primary, .. } => {
                assert!(slot < slots && primary < slots, "slot out of range");
                assert!(admitted(slot), "routed to an ejected or drained region");
                let region = service.region_of(slot).expect("slot has a region");
                let value = policy.routing_value(region);
                assert!(value.starts_with(policy.region_name(region)), "{value:?}");
            }
            Decision::NoHealthyRegion { primary } => {
                assert!(primary < slots);
                assert!(
                    (0..slots).all(|slot| !admitted(slot)),
                    "a region was admitted"
                );
            }
            Decision::Passthrough => assert!(source.is_none()),
        }
    }
}

/// Target `plan_render`: the plan loader and validation, in memory; a plan that
/// validates renders, twice to the same bytes, with both extension APIs, and the
/// policies it gives the filter validate in the filter's own parser.
pub fn plan_render(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source::new("plan.yaml", text);
    let checked = validate::check(&source);
    for found in &checked.findings {
        let shown = finding::render(&found.locate(&source), false);
        assert!(!shown.is_empty(), "a finding renders as nothing");
    }
    if checked.has_errors() {
        return;
    }
    let plan = checked.plan.expect("a plan without errors was parsed");
    let secrets = RouteSecrets::example().expect("the example secret is valid");
    let topo = Topology::new(&plan);
    let token = secrets
        .tokens(&plan)
        .into_iter()
        .next()
        .expect("a current token");
    for proxies in [
        geolb::policy::PolicyFor::Sidecars,
        geolb::policy::PolicyFor::Gateways,
    ] {
        let wire = geolb::policy::wire_policy(&topo, proxies, &token);
        let json = serde_json::to_vec(&wire).expect("wire policy serializes");
        if let Err(errors) = parse_policy(&json) {
            panic!("a validated plan gives the filter a policy it refuses: {errors}");
        }
    }
    for extension_api in [ExtensionApi::Wasmplugin, ExtensionApi::Trafficextension] {
        let options = RenderOptions {
            extension_api,
            route_secrets: secrets.clone(),
        };
        match render::render(&topo, &options) {
            Ok(files) => {
                assert!(!files.is_empty(), "a validated plan renders no file");
                // Rendering is the slow half of this target, so the second render that
                // proves it deterministic runs for one input length in eight.
                if data.len() % RERENDER_ONE_IN == 0 {
                    match render::render(&Topology::new(&plan), &options) {
                        Ok(again) => assert_eq!(files, again, "two renders differ"),
                        Err(refused) => panic!("rendered, then refused: {refused}"),
                    }
                }
            }
            // TrafficExtension is refused for meshes older than Istio 1.30; the default
            // API must always render.
            Err(refused) => assert_eq!(extension_api, ExtensionApi::Trafficextension, "{refused}"),
        }
    }
}

/// Target `cluster_name`: Istio outbound cluster names. What parses prints back
/// byte for byte; and the name built from any port, subset and host istiod could
/// write parses back into exactly those.
pub fn cluster_name(data: &[u8]) {
    if let Ok(name) = std::str::from_utf8(data) {
        if let Some(parsed) = OutboundCluster::parse(name) {
            assert_eq!(parsed.to_string(), name, "does not print back");
            assert_ne!(parsed.port, 0);
            assert!(!parsed.host.is_empty() && !parsed.host.contains('|'));
            assert!(!parsed.subset.contains('|'));
        }
    }
    let mut bytes = Bytes(data);
    let port = bytes.u16();
    let subset = bytes.text();
    let host = String::from_utf8_lossy(bytes.0).into_owned();
    let name = format!("outbound|{port}|{subset}|{host}");
    let parsed = OutboundCluster::parse(&name);
    let istiod_writes =
        port != 0 && !subset.contains('|') && !host.is_empty() && !host.contains('|');
    if istiod_writes {
        let expected = OutboundCluster {
            port,
            subset: &subset,
            host: &host,
        };
        assert_eq!(parsed, Some(expected), "{name:?}");
    } else {
        assert_eq!(parsed, None, "{name:?}");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn each_seed(target: &str, run: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("seed directory") {
            let path = entry.expect("seed entry").path();
            run(&std::fs::read(&path).expect("seed file"));
            count += 1;
        }
        assert!(count > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn policy_decision_seeds_hold() {
        each_seed("policy_decision", super::policy_decision);
    }

    #[test]
    fn plan_render_seeds_hold() {
        each_seed("plan_render", super::plan_render);
    }

    #[test]
    fn cluster_name_seeds_hold() {
        each_seed("cluster_name", super::cluster_name);
    }
}
