//! Active probes in a real Envoy 1.40, beside passive-only geolb and the mesh without
//! geolb, in one run.
//!
//! Seed A rendered with the geolb library and translated by the istiod stand-in: the
//! sidecar of productpage in ack-hangzhou sends reviews 90% to cn-hangzhou and 10% to
//! cn-shanghai. The plan is edited so that ejections last 2 s (Envoy's and the
//! filter's alike) and, for the probed mesh, reviews is probed every 200 ms (timeout
//! 100 ms, 2 to come back, 2 to eject). Each mesh goes through the same story:
//!
//! 1. idle: no traffic; cn-hangzhou's reviews stop (listeners closed);
//! 2. load: two keep-alive clients send reviews requests for [`LOAD`];
//! 3. still dead past the ejection time: the load goes on for [`STILL_DEAD`];
//! 4. recovery: cn-hangzhou's reviews start again; the load goes on until cn-hangzhou
//!    serves users again (at most [`RECOVERY_LIMIT`]).
//!
//! Measured: when the region was ejected (ms after the kill, and user requests sent
//! after the kill until then), user requests that reached the dead region (routed
//! there by geolb, or connect failures Envoy met there), client-visible errors, the
//! time until the recovered region serves users, the probes the proxy sent per
//! second, and the Envoy clusters the probes add.
//!
//! Run: `cargo test -p geolb-e2e --test probes -- --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use geolb_e2e::bookinfo::{Bookinfo, Chain, SIDECAR_LISTENER};
use geolb_e2e::from_plan::RenderedPlan;
use geolb_e2e::*;
use geolb_policy::testing::HZ;

const SEED_A: &str = "a-failover-distribution";
const ACK_HANGZHOU: &str = "ack-hangzhou";
const CLIENTS: usize = 2;
/// Idle time after the kill.
const IDLE: Duration = Duration::from_millis(1_000);
const LOAD: Duration = Duration::from_millis(1_000);
/// Load past the 2 s ejection time with the region still dead.
const STILL_DEAD: Duration = Duration::from_millis(3_000);
const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
/// The probe interval the probed plan sets, and regions probed per round.
const INTERVAL_MS: u64 = 200;
const REGIONS: u64 = 2;
const REVIEWS_DR: &str = "reviews.default.svc.cluster.local";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mesh {
    /// geolb with probes.
    Probed,
    /// geolb as rendered, health from live traffic only.
    Passive,
    /// No WasmPlugin: Istio's locality failover with the plan's outlier detection.
    Native,
}

/// What one mesh's run measured.
#[derive(Clone, Debug, Default)]
struct Outcome {
    /// ms from the kill to the region's ejection, while idle (`None`: not while idle).
    idle_detection_ms: Option<u64>,
    /// ms from the kill to the ejection, whenever it came.
    detection_ms: Option<u64>,
    /// User requests sent after the kill before the ejection.
    requests_to_detect: u64,
    /// User requests that reached the dead region.
    reached_dead: u64,
    /// User requests sent and client-visible errors over the whole run.
    sent: u64,
    errors: u64,
    /// ms from the restart until cn-hangzhou served a user again.
    recovery_ms: Option<u64>,
    /// Probes the sidecar sent per second (counter over the run).
    probes_per_s: f64,
    /// Envoy clusters of reviews at the sidecar.
    reviews_clusters: usize,
}

/// Seed A with 2 s ejections (`outlierDetection.baseEjectionTime`, which the filter's
/// health follows) and, when `probe`, probes on reviews.
fn plan_text(text: &str, probe: bool) -> String {
    let edited = text.replacen("baseEjectionTime: 1m", "baseEjectionTime: 2s", 1);
    assert_ne!(edited, text, "seed A's reviews outlier detection moved");
    if !probe {
        return edited;
    }
    edited.replacen(
        "    outlierDetection:\n      consecutive5xxErrors: 1",
        &format!(
            "    probe:\n      path: /healthz\n      interval: {INTERVAL_MS}ms\n      timeout: 100ms\n      healthyAfter: 2\n      unhealthyAfter: 2\n    outlierDetection:\n      consecutive5xxErrors: 1"
        ),
        1,
    )
}

fn rendered(mesh: Mesh) -> RenderedPlan {
    let plan = RenderedPlan::example_edited(SEED_A, |text| plan_text(text, mesh == Mesh::Probed));
    if mesh == Mesh::Native {
        plan.unapply_wasm_plugins();
    }
    plan
}

/// Keep-alive clients sending reviews requests while `run` is set; counting requests
/// sent and client-visible errors.
struct Load {
    run: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(target: std::net::SocketAddr) -> Load {
        let run = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let clients = (0..CLIENTS)
            .map(|_| {
                let (run, stop, sent, errors) =
                    (run.clone(), stop.clone(), sent.clone(), errors.clone());
                std::thread::spawn(move || {
                    let mut conn: Option<Connection> = None;
                    while !stop.load(Ordering::SeqCst) {
                        if !run.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(2));
                            continue;
                        }
                        if conn.as_ref().is_none_or(Connection::is_closed) {
                            conn = Connection::open(target).ok();
                        }
                        sent.fetch_add(1, Ordering::SeqCst);
                        let ok = conn.as_mut().is_some_and(|c| {
                            c.send(&Request::reviews()).is_ok_and(|r| r.is_success())
                        });
                        if !ok {
                            errors.fetch_add(1, Ordering::SeqCst);
                            conn = None;
                        }
                        // About 200 requests per second per client.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        Load {
            run,
            stop,
            sent,
            errors,
            clients,
        }
    }
    fn set_running(&self, on: bool) {
        self.run.store(on, Ordering::SeqCst);
    }
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.clients {
            c.join().unwrap();
        }
        (
            self.sent.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
        )
    }
}

fn counter(envoy: &Envoy, metric: &str) -> u64 {
    envoy
        .try_counter(&format!(
            "wasmcustom.geolb.{metric};service=reviews.default;region={HZ}"
        ))
        .unwrap_or(0)
}

/// Probes the sidecar sent, both regions.
fn probes_sent(envoy: &Envoy) -> u64 {
    envoy
        .counters_with_prefix("wasmcustom.geolb.probes;service=reviews.default;")
        .values()
        .sum()
}

/// Envoy's outlier ejections of reviews' hosts, over every reviews cluster.
fn native_ejections(envoy: &Envoy) -> u64 {
    envoy
        .stats()
        .iter()
        .filter(|(k, _)| {
            k.contains(REVIEWS_DR) && k.ends_with(".outlier_detection.ejections_enforced_total")
        })
        .map(|(_, v)| *v)
        .sum()
}

/// Connect failures Envoy met over every reviews cluster.
fn connect_failures(envoy: &Envoy) -> u64 {
    envoy
        .stats()
        .iter()
        .filter(|(k, _)| {
            k.starts_with("cluster.outbound|")
                && k.contains(REVIEWS_DR)
                && !k.contains("geolb-probe-")
                && k.ends_with(".upstream_cx_connect_fail")
        })
        .map(|(_, v)| *v)
        .sum()
}

fn ejected(mesh: Mesh, envoy: &Envoy) -> bool {
    match mesh {
        Mesh::Native => native_ejections(envoy) > 0,
        Mesh::Probed | Mesh::Passive => counter(envoy, "ejections") > 0,
    }
}

/// Polls `ejected` until `deadline`; the ms since `kill` when it first held.
fn watch_ejection(mesh: Mesh, envoy: &Envoy, kill: Instant, deadline: Instant) -> Option<u64> {
    while Instant::now() < deadline {
        if ejected(mesh, envoy) {
            return Some(kill.elapsed().as_millis() as u64);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn run(mesh: Mesh) -> Outcome {
    let mut bookinfo = Bookinfo::start(rendered(mesh));
    let registry = bookinfo.registry(|_| false);
    let chain = Chain::start(&bookinfo, ACK_HANGZHOU, &registry);
    let sidecar = chain.sidecar(ACK_HANGZHOU);
    let started = Instant::now();
    let probes_at_start = probes_sent(sidecar);
    let reviews_clusters = sidecar
        .clusters()
        .lines()
        .filter_map(|l| l.split("::").next())
        .filter(|c| c.starts_with("outbound|") && c.ends_with(REVIEWS_DR))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let load = Load::start(sidecar.listener_addr(SIDECAR_LISTENER));
    // Warm up: the split flows and every region is known healthy.
    load.set_running(true);
    std::thread::sleep(Duration::from_millis(500));
    load.set_running(false);
    std::thread::sleep(Duration::from_millis(100));
    let mut outcome = Outcome {
        reviews_clusters,
        ..Outcome::default()
    };

    // 1. Idle kill.
    let routed_before = counter(sidecar, "routed");
    let connect_fail_before = connect_failures(sidecar);
    let sent_before = load.sent();
    for u in bookinfo.upstreams_in_region("reviews", HZ) {
        u.stop();
    }
    let kill = Instant::now();
    outcome.idle_detection_ms = watch_ejection(mesh, sidecar, kill, kill + IDLE);
    std::thread::sleep(IDLE.saturating_sub(kill.elapsed()));

    // 2. Load with the region dead.
    load.set_running(true);
    let load_start = Instant::now();
    outcome.detection_ms = outcome
        .idle_detection_ms
        .or_else(|| watch_ejection(mesh, sidecar, kill, load_start + LOAD));
    outcome.requests_to_detect = if outcome.idle_detection_ms.is_some() {
        0
    } else {
        load.sent() - sent_before
    };
    std::thread::sleep(LOAD.saturating_sub(load_start.elapsed()));

    // 3. Still dead past the ejection time.
    std::thread::sleep(STILL_DEAD);
    outcome.reached_dead = match mesh {
        Mesh::Native => connect_failures(sidecar) - connect_fail_before,
        Mesh::Probed | Mesh::Passive => counter(sidecar, "routed") - routed_before,
    };

    // 4. Recovery.
    let served_before: u64 = bookinfo
        .upstreams_in_region("reviews", HZ)
        .iter()
        .map(|u| u.served())
        .sum();
    for u in bookinfo.upstreams_in_region("reviews", HZ) {
        u.restart();
    }
    let restart = Instant::now();
    let recovered = wait_until(RECOVERY_LIMIT, || {
        let served: u64 = bookinfo
            .upstreams_in_region("reviews", HZ)
            .iter()
            .map(|u| u.served())
            .sum();
        served > served_before
    });
    if recovered {
        outcome.recovery_ms = Some(restart.elapsed().as_millis() as u64);
    }
    let probes = probes_sent(sidecar) - probes_at_start;
    outcome.probes_per_s = probes as f64 / started.elapsed().as_secs_f64();
    let (sent, errors) = load.finish();
    outcome.sent = sent;
    outcome.errors = errors;
    outcome
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[test]
fn probes_find_a_dead_region_before_users_do_and_keep_it_out_until_it_answers() {
    let table: Vec<(Mesh, Outcome)> = [Mesh::Probed, Mesh::Passive, Mesh::Native]
        .into_iter()
        .map(|mesh| (mesh, run(mesh)))
        .collect();
    eprintln!(
        "mesh     idle-detect-ms detect-ms req-to-detect reached-dead  sent errors recovery-ms probes/s reviews-clusters"
    );
    for (mesh, o) in &table {
        eprintln!(
            "{:<8} {:>14} {:>9} {:>13} {:>12} {:>5} {:>6} {:>11} {:>8.1} {:>16}",
            format!("{mesh:?}"),
            ms(o.idle_detection_ms),
            ms(o.detection_ms),
            o.requests_to_detect,
            o.reached_dead,
            o.sent,
            o.errors,
            ms(o.recovery_ms),
            o.probes_per_s,
            o.reviews_clusters,
        );
    }
    let get = |m: Mesh| table.iter().find(|(mesh, _)| *mesh == m).unwrap().1.clone();
    let (probed, passive, native) = (get(Mesh::Probed), get(Mesh::Passive), get(Mesh::Native));

    // Probes eject the idle region within two rounds and a timeout, plus slack for
    // ticks delayed on a loaded 2-core machine (440-496 ms measured alone).
    let idle = probed
        .idle_detection_ms
        .expect("probes eject an idle dead region");
    assert!(idle <= 2 * INTERVAL_MS + 100 + 700, "{idle} ms");
    assert_eq!(probed.requests_to_detect, 0);
    assert_eq!(
        probed.reached_dead, 0,
        "no user request was routed to the dead region"
    );
    // Without probes nobody knows until users go there.
    assert_eq!(passive.idle_detection_ms, None);
    assert_eq!(native.idle_detection_ms, None);
    assert!(
        passive.requests_to_detect > 0 && passive.detection_ms.is_some(),
        "{passive:?}"
    );
    assert!(native.detection_ms.is_some(), "{native:?}");
    // Past its 2 s ejection, the passive filter lets the dead region back and users
    // find it dead again.
    assert!(passive.reached_dead > 0, "{passive:?}");
    assert!(native.reached_dead > 0, "{native:?}");
    for (mesh, o) in &table {
        assert!(o.sent > 500, "{mesh:?}: too little load: {o:?}");
        assert_eq!(o.errors, 0, "{mesh:?}: {o:?}");
        assert!(
            o.recovery_ms.is_some(),
            "{mesh:?}: cn-hangzhou never served again"
        );
    }
    // One prober per proxy: two regions every 200 ms is 10 probes/s, whatever the
    // number of worker VMs (2, and the main thread's).
    let expected = REGIONS as f64 * 1_000.0 / INTERVAL_MS as f64;
    assert!(
        probed.probes_per_s > expected * 0.6 && probed.probes_per_s < expected * 1.2,
        "{} probes/s, expected about {expected}",
        probed.probes_per_s
    );
    assert_eq!(passive.probes_per_s, 0.0);
    // The price: one strict cluster per region of the probed service.
    assert_eq!(
        probed.reviews_clusters,
        passive.reviews_clusters + REGIONS as usize
    );
}
