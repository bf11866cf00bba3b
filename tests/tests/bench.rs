//! Envoy CPU per request: bare Envoy vs the empty wasm filter vs geolb, with nginx
//! upstreams and wrk (both from scripts/setup.sh).
//!
//! * `wrk_machinery_works` (quick, runs in CI): one short wrk run through Envoy.
//! * `cpu_per_request` (ignored; ~1 minute): interleaved rounds, prints a table.
//!   `cargo test --release -p geolb-e2e --test bench cpu_per_request -- --ignored --nocapture`
//!   Env: `GEOLB_BENCH_ROUNDS` (default 5), `GEOLB_BENCH_SECS` (default 2),
//!   `GEOLB_BENCH_POLICY` (policy JSON file; default policy/tests/fixtures/seed-a.json,
//!   regions cn-hangzhou and cn-shanghai).

use std::time::Duration;

use geolb_e2e::bench::{LoadResult, Nginx, wrk};
use geolb_e2e::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn wrk_machinery_works() {
    let a = Nginx::start("cn-hangzhou");
    let cfg = MeshConfig::new(vec![RegionSpec::new("cn-hangzhou", [a.addr()])]);
    let envoy = Envoy::start(&cfg);
    let r = wrk(&envoy, "/reviews/0", &[], 1, 4, Duration::from_secs(1));
    assert!(r.requests > 0, "{r:?}");
    assert_eq!((r.non_2xx, r.socket_errors), (0, 0), "{r:?}");
    assert!(r.envoy_cpu > Duration::ZERO, "{r:?}");
}

#[test]
#[ignore = "benchmark: ~1 minute; run explicitly"]
fn cpu_per_request() {
    let rounds = env_u64("GEOLB_BENCH_ROUNDS", 5);
    let secs = env_u64("GEOLB_BENCH_SECS", 2);
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
    let variants = [
        ("bare", base.clone()),
        ("empty filter", base.clone().with_wasm(WasmFilter::empty())),
        ("geolb", base.clone().with_wasm(WasmFilter::geolb(&policy))),
    ];
    let mut results: Vec<Vec<LoadResult>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (i, (name, cfg)) in variants.iter().enumerate() {
            let envoy = Envoy::start(cfg);
            // Warm up connections and VMs.
            wrk(&envoy, "/reviews/0", &[], 1, 8, Duration::from_secs(1));
            let r = wrk(&envoy, "/reviews/0", &[], 2, 32, Duration::from_secs(secs));
            eprintln!(
                "round {round} {name:>12}: {:>8} req, {:>8.0} rps, {:>6.1} us CPU/req, non-2xx {}, socket errors {}",
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
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let bare: Vec<f64> = results[0]
        .iter()
        .map(LoadResult::cpu_us_per_request)
        .collect();
    eprintln!(
        "\nmedian over {rounds} interleaved rounds of {secs}s (wrk -t2 -c32, 1 Envoy worker):"
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        let cpu: Vec<f64> = results[i]
            .iter()
            .map(LoadResult::cpu_us_per_request)
            .collect();
        let delta: Vec<f64> = cpu.iter().zip(&bare).map(|(c, b)| c - b).collect();
        let rps_ratio: Vec<f64> = results[i]
            .iter()
            .zip(&results[0])
            .map(|(r, b)| r.requests_per_sec / b.requests_per_sec)
            .collect();
        eprintln!(
            "  {name:>12}: {:>6.1} us CPU/req ({:+.1} us vs bare, paired), throughput {:.2}x bare",
            median(cpu),
            median(delta),
            median(rps_ratio)
        );
    }
}
