//! Benchmark (not a test): Envoy CPU per request — bare Envoy, Envoy with an empty
//! proxy-wasm filter (the floor any wasm filter pays), and Envoy with geolb — in
//! interleaved rounds of one run, with nginx upstreams and wrk (scripts/setup.sh).
//! Reports medians of paired ratios, because absolute rates swing on shared machines.
//!
//! geolb runs twice: as at a sidecar (the client's Host names the service) and as at an
//! ingress gateway (Host is an external name the virtual host accepts but the policy
//! does not know, so the filter also reads `xds.cluster_name`). Every geolb variant must
//! have routed each request it measured (`wasmcustom.geolb.routed`), else the run fails.
//!
//! The "header floor" (`bench/header-floor`) is the empty filter plus a constant
//! `x-geolb-region` write on every request, so Envoy re-selects the route to the
//! region's subset cluster: what any filter in geolb's design pays before deciding
//! anything. "floor + clear" is the same module also calling the foreign function
//! `clear_route_cache` after the write; the two differ only in that call, so their
//! paired ratio is its per-request cost. One call is small against the noise of a shared
//! machine, so "floor + 100 clears" calls it 100 times per request: its paired
//! difference to the floor, divided by 100, is the cost of one call. Every floor variant
//! must have sent every request over the header's route (the fallback cluster served
//! none), else the run fails.
//!
//! `scripts/bench.sh` (= `cargo run --release -p geolb-e2e --bin geolb-bench`).
//! Env: `GEOLB_BENCH_ROUNDS` (default 7), `GEOLB_BENCH_SECS` (default 3),
//! `GEOLB_BENCH_POLICY` (policy JSON; default policy/tests/fixtures/seed-a.json),
//! `GEOLB_BENCH_EXTRA_WASM` (other builds of the filter to compare, `:`-separated, e.g.
//! an opt-level "z" build).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a benchmark driver

use std::time::Duration;

use geolb_e2e::bench::{GATEWAY_AUTHORITY, LoadResult, Nginx, gateway_policy, geolb_routed, wrk};
use geolb_e2e::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a variant must have done with every measured request, checked after the
/// measurement (so the check costs the measured CPU nothing).
#[derive(Clone, Debug)]
enum RoutingCheck {
    None,
    /// geolb routed each one (its `wasmcustom.geolb.routed` counters).
    Geolb,
    /// Each one took the header route to this region's subset cluster: the fallback
    /// cluster served none.
    HeaderRoute(String),
}

/// A benchmark variant.
struct Variant<'a> {
    name: String,
    config: MeshConfig,
    headers: &'a [(&'a str, &'a str)],
    check: RoutingCheck,
}

impl<'a> Variant<'a> {
    fn new(name: &str, config: MeshConfig, headers: &'a [(&'a str, &'a str)]) -> Variant<'a> {
        Variant {
            name: name.to_owned(),
            config,
            headers,
            check: RoutingCheck::None,
        }
    }

    /// geolb runs and must route every request.
    fn routing(mut self) -> Variant<'a> {
        self.check = RoutingCheck::Geolb;
        self
    }

    /// Every request must take the header route to `region`.
    fn header_routed(mut self, region: &str) -> Variant<'a> {
        self.check = RoutingCheck::HeaderRoute(region.to_owned());
        self
    }
}

/// Fails the run unless `v` did what [`Variant::check`] asks with the `measured`
/// requests.
fn check_routing(v: &Variant, envoy: &Envoy, measured: u64) {
    let name = &v.name;
    match &v.check {
        RoutingCheck::None => {}
        RoutingCheck::Geolb => {
            let routed = geolb_routed(envoy);
            assert!(
                routed >= measured,
                "{name}: geolb routed {routed} requests, wrk measured {measured}"
            );
        }
        RoutingCheck::HeaderRoute(region) => {
            let fallback = envoy.cluster_stat(&v.config.default_cluster(), "upstream_rq_total");
            let subset = envoy.cluster_stat(&v.config.subset_cluster(region), "upstream_rq_total");
            assert!(
                fallback == 0 && subset >= measured,
                "{name}: {subset} requests over {region}'s header route, {fallback} over the fallback route, wrk measured {measured}"
            );
        }
    }
}

/// How many times "floor + 100 clears" calls `clear_route_cache` per request.
const AMPLIFIED_CLEARS: u32 = 100;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds = env_u64("GEOLB_BENCH_ROUNDS", 7);
    let secs = env_u64("GEOLB_BENCH_SECS", 3);
    let policy_path = std::env::var_os("GEOLB_BENCH_POLICY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join("policy/tests/fixtures/seed-a.json"));
    let policy = std::fs::read_to_string(&policy_path)
        .unwrap_or_else(|e| panic!("{}: {e}", policy_path.display()));
    let a = Nginx::start("cn-hangzhou");
    let b = Nginx::start("cn-shanghai");
    let base = {
        let mut c = MeshConfig::new(vec![
            RegionSpec::new("cn-hangzhou", [a.addr()]),
            RegionSpec::new("cn-shanghai", [b.addr()]),
        ]);
        c.concurrency = 1;
        c.log_level = "warning".into();
        c
    };
    // (name, config, request headers). "empty + header": the empty filter with the client
    // sending the routing header, so Envoy does the routing contract's own work (header
    // route, subset cluster, header removal) without any decision: the floor of the design.
    let routed: &[(&str, &str)] = &[(ROUTING_HEADER, "cn-hangzhou")];
    // "geolb gateway": the same Envoy, its virtual host also accepting the external name
    // the client sends as Host, which names no service in the policy; the policy looks
    // services up by their route, as a gateway's does.
    let gateway_host: &[(&str, &str)] = &[("Host", GATEWAY_AUTHORITY)];
    let mut gateway = base
        .clone()
        .with_wasm(WasmFilter::geolb(&gateway_policy(&policy)));
    gateway.extra_domains = vec![GATEWAY_AUTHORITY.to_owned()];
    // The header floor writes this region (the proxy's) on every request.
    let floor_region = "cn-hangzhou";
    let floor = |config: &str| {
        base.clone()
            .with_wasm(WasmFilter::new(wasm_module("header_floor.wasm"), config))
    };
    let mut variants: Vec<Variant> = vec![
        Variant::new("bare", base.clone(), &[]),
        Variant::new(
            "empty filter",
            base.clone().with_wasm(WasmFilter::empty()),
            &[],
        ),
        Variant::new(
            "empty + header",
            base.clone().with_wasm(WasmFilter::empty()),
            routed,
        ),
        Variant::new("header floor", floor(floor_region), &[]).header_routed(floor_region),
        Variant::new(
            "floor + clear",
            floor(&format!("{floor_region} clear_route_cache")),
            &[],
        )
        .header_routed(floor_region),
        Variant::new(
            "floor + 100 clears",
            floor(&format!(
                "{floor_region} clear_route_cache {AMPLIFIED_CLEARS}"
            )),
            &[],
        )
        .header_routed(floor_region),
        Variant::new(
            "geolb",
            base.clone().with_wasm(WasmFilter::geolb(&policy)),
            &[],
        )
        .routing(),
        Variant::new("geolb gateway", gateway, gateway_host).routing(),
    ];
    let extra = std::env::var_os("GEOLB_BENCH_EXTRA_WASM").unwrap_or_default();
    for path in std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()) {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cfg = base.clone().with_wasm(WasmFilter::new(path, &policy));
        variants.push(Variant::new(file.trim_end_matches(".wasm"), cfg, &[]).routing());
    }
    for Variant { name, config, .. } in &variants {
        if let Some(w) = &config.wasm {
            let size = std::fs::metadata(&w.module).map(|m| m.len()).unwrap_or(0);
            eprintln!("{name}: {} ({size} bytes)", w.module.display());
        }
    }
    let mut results: Vec<Vec<LoadResult>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (i, v) in variants.iter().enumerate() {
            let (name, headers) = (&v.name, v.headers);
            let envoy = Envoy::start(&v.config);
            // Warm up connections and VMs.
            wrk(&envoy, "/reviews/0", headers, 1, 8, Duration::from_secs(1));
            let r = wrk(
                &envoy,
                "/reviews/0",
                headers,
                2,
                32,
                Duration::from_secs(secs),
            );
            eprintln!(
                "round {round} {name:>18}: {:>8} req, {:>8.0} rps, {:>6.1} us CPU/req, non-2xx {}, socket errors {}",
                r.requests,
                r.requests_per_sec,
                r.cpu_us_per_request(),
                r.non_2xx,
                r.socket_errors
            );
            assert_eq!(r.non_2xx + r.socket_errors, 0, "{name}: {r:?}");
            check_routing(v, &envoy, r.requests);
            results[i].push(r);
        }
    }
    let cpu = |i: usize| -> Vec<f64> {
        results[i]
            .iter()
            .map(LoadResult::cpu_us_per_request)
            .collect()
    };
    let paired = |i: usize, j: usize, f: &dyn Fn(&LoadResult, &LoadResult) -> f64| -> f64 {
        median(
            results[i]
                .iter()
                .zip(&results[j])
                .map(|(x, y)| f(x, y))
                .collect(),
        )
    };
    println!(
        "median over {rounds} interleaved rounds of {secs}s (wrk -t2 -c32, 1 Envoy worker, nginx upstreams):"
    );
    let index = |name: &str| variants.iter().position(|v| v.name == name).unwrap();
    let floor_index = index("header floor");
    println!(
        "{:>18} {:>11} {:>13} {:>17} {:>13} {:>12} {:>13}",
        "variant",
        "CPU us/req",
        "CPU vs empty",
        "CPU vs empty+hdr",
        "CPU vs floor",
        "rps vs bare",
        "rps vs empty"
    );
    let cpu_ratio =
        |x: &LoadResult, y: &LoadResult| x.cpu_us_per_request() / y.cpu_us_per_request();
    let rps_ratio = |x: &LoadResult, y: &LoadResult| x.requests_per_sec / y.requests_per_sec;
    for (i, Variant { name, .. }) in variants.iter().enumerate() {
        println!(
            "{name:>18} {:>11.1} {:>12.3}x {:>16.3}x {:>12.3}x {:>11.3}x {:>12.3}x",
            median(cpu(i)),
            paired(i, 1, &cpu_ratio),
            paired(i, 2, &cpu_ratio),
            paired(i, floor_index, &cpu_ratio),
            paired(i, 0, &rps_ratio),
            paired(i, 1, &rps_ratio),
        );
    }
    let (sidecar_index, gateway_index) = (index("geolb"), index("geolb gateway"));
    let cpu_diff = |x: &LoadResult, y: &LoadResult| x.cpu_us_per_request() - y.cpu_us_per_request();
    println!(
        "floor + clear vs header floor: CPU {:.3}x, {:+.1} us/req (the clear_route_cache call)",
        paired(index("floor + clear"), floor_index, &cpu_ratio),
        paired(index("floor + clear"), floor_index, &cpu_diff),
    );
    println!(
        "floor + 100 clears vs header floor: CPU {:.3}x, {:+.1} us/req = {:+.2} us per clear_route_cache call",
        paired(index("floor + 100 clears"), floor_index, &cpu_ratio),
        paired(index("floor + 100 clears"), floor_index, &cpu_diff),
        paired(index("floor + 100 clears"), floor_index, &cpu_diff) / f64::from(AMPLIFIED_CLEARS),
    );
    println!(
        "header floor vs empty filter: CPU {:.3}x, {:+.1} us/req (the header write and route re-selection)",
        paired(floor_index, 1, &cpu_ratio),
        paired(floor_index, 1, &cpu_diff),
    );
    println!(
        "geolb vs header floor: CPU {:.3}x, {:+.1} us/req (geolb's decision and bookkeeping)",
        paired(sidecar_index, floor_index, &cpu_ratio),
        paired(sidecar_index, floor_index, &cpu_diff),
    );
    println!(
        "geolb gateway vs geolb (sidecar): CPU {:.3}x, {:+.1} us/req (xds.cluster_name read)",
        paired(gateway_index, sidecar_index, &cpu_ratio),
        paired(gateway_index, sidecar_index, &cpu_diff),
    );
}
