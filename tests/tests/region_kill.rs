//! A region dying under load: the errors a client sees, per method, geolb against the
//! mesh without it, in one run.
//!
//! Seed A rendered with the geolb library and translated by the istiod stand-in: the
//! sidecar of productpage in ack-hangzhou (cn-hangzhou) sends reviews 90% to
//! cn-hangzhou and 10% to cn-shanghai. Six clients send reviews requests on keep-alive
//! connections for 3 s; each reviews answers after 5 ms. At 1 s cn-hangzhou's reviews
//! die in one of two ways:
//! - stopped: listeners and open connections closed, so the requests in flight are reset;
//! - hung: every request from then on is answered only after [`HUNG_FOR`], longer than a
//!   client waits ([`SLOW`]) and far longer than the plan's `perTryTimeout`.
//!
//! `native` is the same mesh with the WasmPlugins removed: Istio's own locality failover
//! with the plan's outlier detection and the same rendered retries.
//!
//! GET is idempotent: its route also retries `reset` (which covers a per-try timeout), so
//! no GET may fail or be slow. POST is not: a POST reset or timed out after it reached
//! the app is not retried (it may have had its effect), so a few POSTs in flight at the
//! kill fail, in every column alike.
//!
//! Run: `cargo test -p geolb-e2e --test region_kill -- --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use geolb_e2e::bookinfo::{Bookinfo, Chain, SIDECAR_LISTENER};
use geolb_e2e::from_plan::RenderedPlan;
use geolb_e2e::*;
use geolb_policy::testing::HZ;

const SEED_A: &str = "a-failover-distribution";
const ACK_HANGZHOU: &str = "ack-hangzhou";
const CLIENTS: usize = 6;
const LOAD: Duration = Duration::from_secs(3);
const KILL_AT: Duration = Duration::from_secs(1);
/// How late a hung region answers.
const HUNG_FOR: Duration = Duration::from_secs(3);
/// An answer later than this counts as a failure: the client has given up.
const SLOW: Duration = Duration::from_secs(1);
/// The per-try timeout the hung-region runs give reviews' routes.
const PER_TRY_TIMEOUT: &str = "250ms";

/// How cn-hangzhou's reviews die at [`KILL_AT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Stopped,
    Hung,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mesh {
    Geolb,
    /// geolb with the routes as rendered before idempotent methods retried resets
    /// (`reset` taken out of every `retryOn`): the floor the `reset` condition lifts.
    GeolbWithoutReset,
    /// geolb from a plan without `perTryTimeout`: a try waits as long as the app takes,
    /// the floor the per-try timeout lifts.
    GeolbWithoutPerTryTimeout,
    Native,
}

/// Requests sent and client-visible errors: no answer, non-2xx, or an answer later than
/// [`SLOW`].
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    sent: u64,
    errors: u64,
}

impl Outcome {
    fn per_10k(self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.errors as f64 * 10_000.0 / self.sent as f64
    }
}

/// Takes `reset` out of every rendered VirtualService's `retryOn`.
fn without_reset_retries(plan: &RenderedPlan) {
    let mut edited = 0;
    for file in plan.mesh_objects() {
        let text = std::fs::read_to_string(&file).unwrap();
        if text.contains(",reset") {
            std::fs::write(&file, text.replace(",reset", "")).unwrap();
            edited += 1;
        }
    }
    assert!(edited > 0, "no rendered route retries reset");
}

/// Seed A with `perTryTimeout` set on reviews' retries.
fn with_per_try_timeout(plan: &str) -> String {
    plan.replacen(
        "    outlierDetection:",
        &format!("    retries:\n      perTryTimeout: {PER_TRY_TIMEOUT}\n    outlierDetection:"),
        1,
    )
}

/// The rendered plan of one run: hung-region runs set a per-try timeout, except the
/// floor that shows what it buys.
fn rendered(fault: Fault, mesh: Mesh) -> RenderedPlan {
    let plan = match (fault, mesh) {
        (Fault::Hung, Mesh::GeolbWithoutPerTryTimeout) | (Fault::Stopped, _) => {
            RenderedPlan::example(SEED_A)
        }
        (Fault::Hung, _) => RenderedPlan::example_edited(SEED_A, with_per_try_timeout),
    };
    match mesh {
        Mesh::Native => plan.unapply_wasm_plugins(),
        Mesh::GeolbWithoutReset => without_reset_retries(&plan),
        Mesh::Geolb | Mesh::GeolbWithoutPerTryTimeout => {}
    }
    plan
}

/// One load run of `method` requests with cn-hangzhou's reviews dying by `fault` at
/// [`KILL_AT`].
fn run(fault: Fault, mesh: Mesh, method: &str) -> Outcome {
    let plan = rendered(fault, mesh);
    let mut bookinfo = Bookinfo::start(plan);
    let registry = bookinfo.registry(|_| false);
    let chain = Chain::start(&bookinfo, ACK_HANGZHOU, &registry);
    for region in [HZ, "cn-shanghai"] {
        for u in bookinfo.upstreams_in_region("reviews", region) {
            u.set_delay(Duration::from_millis(5));
        }
    }
    let sidecar = chain.sidecar(ACK_HANGZHOU).listener_addr(SIDECAR_LISTENER);
    let request = match method {
        "POST" => Request::reviews().body("rating=5"),
        _ => Request::reviews(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, sent, errors, request) =
                (stop.clone(), sent.clone(), errors.clone(), request.clone());
            std::thread::spawn(move || {
                let mut conn: Option<Connection> = None;
                while !stop.load(Ordering::SeqCst) {
                    if conn.as_ref().is_none_or(Connection::is_closed) {
                        conn = Connection::open(sidecar).ok();
                    }
                    let Some(c) = conn.as_mut() else {
                        sent.fetch_add(1, Ordering::SeqCst);
                        errors.fetch_add(1, Ordering::SeqCst);
                        continue;
                    };
                    let asked = Instant::now();
                    let answered = c.send(&request).is_ok_and(|r| r.is_success());
                    let ok = answered && asked.elapsed() <= SLOW;
                    sent.fetch_add(1, Ordering::SeqCst);
                    if !ok {
                        errors.fetch_add(1, Ordering::SeqCst);
                        conn = None;
                    }
                }
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(KILL_AT);
    for u in bookinfo.upstreams_in_region("reviews", HZ) {
        match fault {
            Fault::Stopped => u.stop(),
            Fault::Hung => u.set_delay(HUNG_FOR),
        }
    }
    std::thread::sleep(LOAD.saturating_sub(start.elapsed()));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    Outcome {
        sent: sent.load(Ordering::SeqCst),
        errors: errors.load(Ordering::SeqCst),
    }
}

fn print(fault: Fault, table: &[(&str, Mesh, Outcome)]) {
    eprintln!("fault    method  mesh                        sent errors  per 10,000");
    for (method, mesh, o) in table {
        eprintln!(
            "{:<8} {method:<7} {:<26} {:>6} {:>6} {:>10.1}",
            format!("{fault:?}"),
            format!("{mesh:?}"),
            o.sent,
            o.errors,
            o.per_10k(),
        );
    }
}

/// Runs `meshes` for GET and POST with `fault`, prints the table and checks that no
/// GET failed except in the floors.
fn measure(fault: Fault, meshes: &[Mesh], floor: Mesh) {
    let mut table = Vec::new();
    for method in ["GET", "POST"] {
        for mesh in meshes {
            table.push((method, *mesh, run(fault, *mesh, method)));
        }
    }
    print(fault, &table);
    for (method, mesh, o) in &table {
        // A floor without per-try timeouts spends most of the run waiting on the
        // hung region, so it sends far less.
        let least = if *mesh == floor { 100 } else { 500 };
        assert!(
            o.sent > least,
            "{fault:?} {method} {mesh:?}: too little load: {o:?}"
        );
        if *method == "GET" && *mesh != floor {
            assert_eq!(o.errors, 0, "{fault:?} GET {mesh:?}: {o:?}");
        }
    }
}

/// Both faults in one test: the load runs must not share the machine's two cores.
#[test]
fn a_dying_region_costs_no_get_and_geolb_no_more_than_the_mesh() {
    measure(
        Fault::Stopped,
        &[Mesh::Geolb, Mesh::GeolbWithoutReset, Mesh::Native],
        Mesh::GeolbWithoutReset,
    );
    measure(
        Fault::Hung,
        &[Mesh::Geolb, Mesh::GeolbWithoutPerTryTimeout, Mesh::Native],
        Mesh::GeolbWithoutPerTryTimeout,
    );
}
