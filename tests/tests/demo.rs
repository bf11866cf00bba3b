//! The demo (`scripts/demo.sh`) runs through all its phases with the numbers it
//! promises: the split, failover with 0 errors, the ejection, the ramp, the split back.
//! Runs the binary with shorter times (`--ejection-time 3s --recovery-ramp 1s`, which
//! change the plan it renders; reviews restart 1 s before the ejection ends) and reads
//! its summary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One `phase <name> <secs>s <n> requests: <region>=<n> (<p>%) ... errors=<n>` line.
#[derive(Debug)]
struct PhaseLine {
    name: String,
    counts: BTreeMap<String, u64>,
}

fn phases(stdout: &str) -> Vec<PhaseLine> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("phase "))
        .map(|rest| {
            let name = rest.split_whitespace().next().unwrap().to_string();
            let (_, counts) = rest.split_once("requests:").unwrap();
            let counts = counts
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                .collect();
            PhaseLine { name, counts }
        })
        .collect()
}

/// `filter <metric> <region>=<n> ...` lines: (metric, region) → value.
fn filter_counters(stdout: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for rest in stdout.lines().filter_map(|l| l.strip_prefix("filter ")) {
        let mut words = rest.split_whitespace();
        let metric = words.next().unwrap().to_string();
        for (region, v) in words.filter_map(|kv| kv.split_once('=')) {
            out.insert((metric.clone(), region.to_string()), v.parse().unwrap());
        }
    }
    out
}

#[test]
fn the_demo_shows_split_failover_ejection_ramp_and_recovery() {
    let out_dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_geolb-demo"))
        .args([
            "--phase-seconds",
            "2",
            "--ejection-time",
            "3s",
            "--recovery-ramp",
            "1s",
        ])
        .args(["--plain", "--out"])
        .arg(out_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // The demo ends by itself (about 9 s here); a hang is a failure, not a stuck CI.
    let deadline = started + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the demo did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(output.status.success(), "{}", output.status);
    assert!(
        stdout.contains(
            "CHANGED for this demo: services[reviews].outlierDetection.baseEjectionTime = 3s"
        ),
        "the demo must say it changed the plan"
    );
    assert!(
        out_dir
            .path()
            .join("a-failover-distribution/clusters/ack-hangzhou/vendor-console.md")
            .is_file()
    );
    // The proxies run as on ACK: no node locality, the region from clusterRegions.
    assert!(
        stdout.contains(&format!(
            "node.locality {{}} and CLUSTER_ID {:?}",
            geolb_e2e::from_plan::RenderedPlan::example("a-failover-distribution")
                .cluster_id("ack-hangzhou")
        )),
        "{stdout}"
    );

    let phases = phases(&stdout);
    let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    // One ejection, one ramp. Envoy lifts its own ejection of the hosts only on its next
    // outlier-detection interval (1 s), so the first probes of the ramp may be answered
    // from elsewhere: the filter then starts the ramp over instead of ejecting again
    // (policy::health), and the demo says so and waits for the ramp's real end.
    assert_eq!(
        names,
        ["healthy", "failover", "ejected", "ramp", "recovered"],
        "{stdout}"
    );
    let get = |p: &PhaseLine, k: &str| p.counts.get(k).copied().unwrap_or(0);
    for p in &phases {
        assert_eq!(get(p, "errors"), 0, "errors in phase {}: {p:?}", p.name);
    }
    // 90/10 is exact per 10 consecutive requests; a phase cuts at most one window.
    for p in [&phases[0], &phases[phases.len() - 1]] {
        let (hz, sh) = (get(p, "cn-hangzhou"), get(p, "cn-shanghai"));
        assert!(hz + sh >= 20, "phase {}: too few requests: {p:?}", p.name);
        assert!(
            (9 * (hz + sh)).abs_diff(10 * hz) <= 10,
            "phase {}: not 90/10: {p:?}",
            p.name
        );
    }
    // Stopped, then restarted but still ejected: nothing from cn-hangzhou.
    for p in &phases[1..3] {
        assert_eq!(get(p, "cn-hangzhou"), 0, "phase {}: {p:?}", p.name);
        assert!(get(p, "cn-shanghai") > 0, "phase {}: {p:?}", p.name);
    }
    let counters = filter_counters(&stdout);
    let ejections = counters[&("ejections".to_string(), "cn-hangzhou".to_string())];
    assert_eq!(
        ejections, 1,
        "one ejection, no second one at the ramp: {counters:?}"
    );
    eprintln!("demo took {:?}", started.elapsed());
}
