//! How a policy update reaches geolb through ECDS in a real Envoy 1.40, and what the
//! filter and Envoy do with an invalid one — pushed once, pushed again identically,
//! pushed again after another update, pushed with another module, and pushed after
//! it was once accepted as the pass-through first policy.
//!
//! Two caches decide whether the filter is asked at all:
//! * Envoy's ECDS subscription remembers the hash of the last resource it received
//!   *before* building the filter from it, so a refused resource pushed again
//!   identically is skipped and acknowledged (`update_success`, no `config_reload`)
//!   without reaching the filter (`source/common/filter/config_discovery_impl.cc`,
//!   `FilterConfigSubscription::onConfigUpdate`).
//! * proxy-wasm-cpp-host's configuration canary caches its verdict per plugin key
//!   (plugin name, root id, configuration, direction, listener metadata) per loaded
//!   module (`src/wasm.cc`, `WasmHandleBase::canary`): a configuration refused once is
//!   refused again without asking the filter, one accepted once is applied again
//!   without the canary.
//!
//! Run one: `cargo test -p geolb-e2e --test policy_updates <name>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::time::Duration;

use geolb_e2e::istiod::NodeLocality;
use geolb_e2e::*;
use geolb_policy::testing::{HZ, SH};
use serde_json::{Value, json};

const REFUSED: &str = "geolb: policy update refused";
/// Long enough for a line Envoy would have logged to reach envoy.log.
const LOG_SETTLE: Duration = Duration::from_millis(400);

/// From cn-hangzhou, `to_sh` percent of reviews to cn-shanghai, the rest at home.
fn policy(to_sh: u32) -> Value {
    let weights = match to_sh {
        0 => json!({ HZ: 100 }),
        100 => json!({ SH: 100 }),
        n => json!({ HZ: 100 - n, SH: n }),
    };
    json!({
        "apiVersion": "geolb.io/v1alpha1",
        "routeToken": ROUTE_TOKEN,
        "regions": [HZ, SH],
        "clusterRegions": { "ack-hangzhou": HZ },
        "services": [{
            "name": "reviews.default",
            "hosts": ["reviews.default.svc.cluster.local"],
            "regions": [HZ, SH],
            "distribute": { HZ: weights }
        }]
    })
}

/// `policy(100)` with cn-hangzhou's weights summing to `sum` (invalid unless 100).
fn weights_summing_to(sum: u32) -> Value {
    let mut p = policy(50);
    p["services"][0]["distribute"][HZ] = json!({ HZ: 50, SH: sum - 50 });
    p
}

fn start(upstreams: &[&Upstream], first: &Value) -> Envoy {
    let cfg = MeshConfig::for_upstreams(upstreams)
        .with_node("ack-hangzhou", NodeLocality::Absent)
        .with_wasm(WasmFilter::geolb(&first.to_string()));
    Envoy::start(&cfg)
}

/// The region of each of 10 requests on one connection (`HTTP n` for a non-2xx).
fn ten_requests(envoy: &Envoy) -> Vec<String> {
    send_on_one_connection(envoy.addr(), &Request::reviews(), 10)
        .into_iter()
        .map(|r| match r {
            Ok(r) if r.is_success() => r.served_region().unwrap_or("?").to_owned(),
            Ok(r) => format!("HTTP {}", r.status),
            Err(e) => format!("error {e}"),
        })
        .collect()
}

fn all_in(region: &str) -> Vec<String> {
    vec![region.to_owned(); 10]
}

/// ECDS counters of the geolb filter, and the filter's refusal count and log lines.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    update_success: u64,
    update_rejected: u64,
    config_reload: u64,
    policy_rejected: u64,
    refusal_logs: usize,
}

fn seen(envoy: &Envoy) -> Seen {
    std::thread::sleep(LOG_SETTLE);
    let p = envoy.ecds_stat_prefix();
    Seen {
        update_success: envoy.counter(&format!("{p}update_success")),
        update_rejected: envoy.counter(&format!("{p}update_rejected")),
        config_reload: envoy.counter(&format!("{p}config_reload")),
        policy_rejected: envoy.counter("wasmcustom.geolb.policy_rejected"),
        refusal_logs: envoy.log().matches(REFUSED).count(),
    }
}

#[test]
fn a_refused_update_pushed_again_is_refused_by_envoy_or_skipped_but_never_applied() {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let mut envoy = start(&[&hz, &sh], &policy(100));
    let bad = weights_summing_to(99).to_string();
    let other_bad = weights_summing_to(98).to_string();
    let s = |success, rejected, reload, counted, logged| Seen {
        update_success: success,
        update_rejected: rejected,
        config_reload: reload,
        policy_rejected: counted,
        refusal_logs: logged,
    };
    assert_eq!(seen(&envoy), s(1, 0, 1, 0, 0), "the first policy applied");

    // Pushed once: the filter refuses it, Envoy rejects the update.
    assert_eq!(envoy.update_plugin_config(&bad), UpdateOutcome::Rejected);
    assert_eq!(seen(&envoy), s(1, 1, 2, 1, 1));
    assert_eq!(
        ten_requests(&envoy),
        all_in(SH),
        "the previous policy serves"
    );

    // Pushed again identically (a new version): Envoy's subscription skips it as
    // unchanged and acknowledges it. No reload, the filter is not asked, the counter
    // and the log cannot move; the previous policy keeps serving.
    assert_eq!(envoy.update_plugin_config(&bad), UpdateOutcome::Applied);
    assert_eq!(seen(&envoy), s(2, 1, 2, 1, 1));
    assert_eq!(ten_requests(&envoy), all_in(SH));

    // Another invalid policy reaches the filter: refused, counted, logged.
    assert_eq!(
        envoy.update_plugin_config(&other_bad),
        UpdateOutcome::Rejected
    );
    assert_eq!(seen(&envoy), s(2, 2, 3, 2, 2));

    // The first one again, now after another update: the canary's cached verdict
    // refuses it without asking the filter (nothing counted or logged by geolb).
    assert_eq!(envoy.update_plugin_config(&bad), UpdateOutcome::Rejected);
    assert_eq!(seen(&envoy), s(2, 3, 4, 2, 2));
    assert!(
        envoy
            .log()
            .contains("Plugin istio-system.geolb failed to load"),
        "what the operator sees in Envoy's log instead: {}",
        envoy.log_tail(10)
    );
    assert_eq!(ten_requests(&envoy), all_in(SH));
}

#[test]
fn a_refused_update_is_refused_counted_and_logged_every_time_the_filter_is_asked() {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    let mut envoy = start(&[&hz, &sh], &policy(100));
    let bad = weights_summing_to(99).to_string();
    assert_eq!(envoy.update_plugin_config(&bad), UpdateOutcome::Rejected);
    // The same policy with another build of the module (a module rollout while the
    // bad policy is still in the plan): a new base VM, a new canary, so the filter is
    // asked again.
    let mut other_module = envoy.config().wasm.clone().unwrap();
    other_module.module = wasm_module("geolb_filter_test_panic.wasm");
    other_module.plugin_config = bad.clone();
    assert_eq!(
        envoy.update_wasm_filter(&other_module),
        UpdateOutcome::Rejected
    );
    let seen = seen(&envoy);
    assert_eq!(
        (
            seen.update_rejected,
            seen.refusal_logs,
            seen.policy_rejected
        ),
        (2, 2, 2),
        "refused twice: NACKed, logged and counted twice ({seen:?})"
    );
    assert_eq!(
        ten_requests(&envoy),
        all_in(SH),
        "the previous policy serves"
    );
}

#[test]
fn an_invalid_policy_envoy_applies_without_asking_the_canary_keeps_the_previous_one_serving() {
    let (hz, sh) = (Upstream::start(HZ), Upstream::start(SH));
    // The first policy is invalid: the canary accepts it as pass-through (and
    // proxy-wasm caches that verdict for this configuration).
    let bad = weights_summing_to(99);
    let mut envoy = start(&[&hz, &sh], &bad);
    assert_eq!(
        ten_requests(&envoy),
        all_in(HZ),
        "pass-through: the mesh's routing"
    );
    assert_eq!(
        envoy.update_plugin_config(&policy(100).to_string()),
        UpdateOutcome::Applied
    );
    assert_eq!(ten_requests(&envoy), all_in(SH));
    // The invalid first policy again: Envoy applies it without a canary; the VMs that
    // route policy(100) keep it (refusing would fail them) and say so once.
    assert_eq!(
        envoy.update_plugin_config(&bad.to_string()),
        UpdateOutcome::Applied
    );
    let after = seen(&envoy);
    assert_eq!(
        (after.policy_rejected, after.refusal_logs),
        (2, 1),
        "{after:?}\n{}",
        envoy.log_tail(20)
    );
    assert!(
        !envoy.log().contains("Wasm VM failed"),
        "a VM refused: {}",
        envoy.log_tail(20)
    );
    assert_eq!(
        ten_requests(&envoy),
        all_in(SH),
        "the previous policy serves"
    );
    // And the proxy still takes the next good policy.
    assert_eq!(
        envoy.update_plugin_config(&policy(0).to_string()),
        UpdateOutcome::Applied
    );
    assert_eq!(ten_requests(&envoy), all_in(HZ));
    assert_eq!(envoy.counter("wasmcustom.geolb.policy_accepted"), 2);
}
