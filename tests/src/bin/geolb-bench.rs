//! Benchmark (not a test): Envoy CPU per request — bare Envoy, Envoy with an empty
//! proxy-wasm filter (the floor any wasm filter pays), and Envoy with geolb — in
//! interleaved rounds of one run, with nginx upstreams and wrk (scripts/setup.sh).
//! Reports medians of paired ratios, because absolute rates swing on shared machines.
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

use geolb_e2e::bench::{LoadResult, Nginx, wrk};
use geolb_e2e::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A benchmark variant: name, Envoy configuration, request headers.
type Variant<'a> = (String, MeshConfig, &'a [(&'a str, &'a str)]);

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
    let routed: &[(&str, &str)] = &[("x-geolb-region", "cn-hangzhou")];
    let mut variants: Vec<Variant> = vec![
        ("bare".to_owned(), base.clone(), &[]),
        (
            "empty filter".to_owned(),
            base.clone().with_wasm(WasmFilter::empty()),
            &[],
        ),
        (
            "empty + header".to_owned(),
            base.clone().with_wasm(WasmFilter::empty()),
            routed,
        ),
        (
            "geolb".to_owned(),
            base.clone().with_wasm(WasmFilter::geolb(&policy)),
            &[],
        ),
    ];
    let extra = std::env::var_os("GEOLB_BENCH_EXTRA_WASM").unwrap_or_default();
    for path in std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()) {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cfg = base.clone().with_wasm(WasmFilter::new(path, &policy));
        variants.push((file.trim_end_matches(".wasm").to_owned(), cfg, &[]));
    }
    for (name, cfg, _) in &variants {
        if let Some(w) = &cfg.wasm {
            let size = std::fs::metadata(&w.module).map(|m| m.len()).unwrap_or(0);
            eprintln!("{name}: {} ({size} bytes)", w.module.display());
        }
    }
    let mut results: Vec<Vec<LoadResult>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (i, (name, cfg, headers)) in variants.iter().enumerate() {
            let envoy = Envoy::start(cfg);
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
                "round {round} {name:>14}: {:>8} req, {:>8.0} rps, {:>6.1} us CPU/req, non-2xx {}, socket errors {}",
                r.requests,
                r.requests_per_sec,
                r.cpu_us_per_request(),
                r.non_2xx,
                r.socket_errors
            );
            assert_eq!(r.non_2xx + r.socket_errors, 0, "{name}: {r:?}");
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
    println!(
        "{:>16} {:>11} {:>13} {:>17} {:>12} {:>13}",
        "variant", "CPU us/req", "CPU vs empty", "CPU vs empty+hdr", "rps vs bare", "rps vs empty"
    );
    let cpu_ratio =
        |x: &LoadResult, y: &LoadResult| x.cpu_us_per_request() / y.cpu_us_per_request();
    let rps_ratio = |x: &LoadResult, y: &LoadResult| x.requests_per_sec / y.requests_per_sec;
    for (i, (name, _, _)) in variants.iter().enumerate() {
        println!(
            "{name:>16} {:>11.1} {:>12.3}x {:>16.3}x {:>11.3}x {:>12.3}x",
            median(cpu(i)),
            paired(i, 1, &cpu_ratio),
            paired(i, 2, &cpu_ratio),
            paired(i, 0, &rps_ratio),
            paired(i, 1, &rps_ratio),
        );
    }
}
