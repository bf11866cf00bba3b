//! The explanation header: what each decision says, and that only sidecars explain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_policy::explain::{Explanation, PassThrough};
use geolb_policy::routing::{Decision, RouteReason};
use geolb_policy::source::ProxyIdentity;
use geolb_policy::{CompiledPolicy, parse_policy};

use geolb_policy::testing::SEED_A;

fn seed_a(explain: bool) -> CompiledPolicy {
    let text = if explain {
        SEED_A.replacen('{', "{\"explain\": true,", 1)
    } else {
        SEED_A.to_owned()
    };
    parse_policy(text.as_bytes()).unwrap()
}

#[test]
fn each_decision_names_its_share_region_and_reason() {
    let policy = seed_a(true);
    let reviews = &policy.services()[0];
    // Slot order is the service's regions: cn-hangzhou, cn-shanghai.
    let said = |decision| Explanation::of(&policy, reviews, decision).to_string();
    let route = |slot, primary, reason| Decision::Route {
        slot,
        primary,
        reason,
    };
    use RouteReason::*;
    let cases = [
        (
            route(0, 0, Split),
            "share=cn-hangzhou; region=cn-hangzhou; reason=split",
        ),
        (
            route(1, 0, Failover),
            "share=cn-hangzhou; region=cn-shanghai; reason=failover",
        ),
        (
            route(0, 0, Ramping),
            "share=cn-hangzhou; region=cn-hangzhou; reason=ramping",
        ),
        (
            route(0, 1, Ramping),
            "share=cn-shanghai; region=cn-hangzhou; reason=ramping",
        ),
        (
            route(1, 0, Drained),
            "share=cn-hangzhou; region=cn-shanghai; reason=drained",
        ),
        (
            route(1, 0, Degraded),
            "share=cn-hangzhou; region=cn-shanghai; reason=degraded",
        ),
        (
            Decision::NoHealthyRegion { primary: 1 },
            "share=cn-shanghai; reason=no-healthy-region",
        ),
        (
            Decision::Passthrough,
            "reason=pass-through; cause=unknown-source-region",
        ),
    ];
    for (decision, expected) in cases {
        assert_eq!(said(decision), expected, "{decision:?}");
    }
    assert_eq!(
        Explanation::pass_through(PassThrough::NotInPolicy).to_string(),
        "reason=pass-through; cause=not-in-policy"
    );
}

#[test]
fn only_an_istio_sidecar_applies_a_policy_that_explains() {
    let at = |node_id| ProxyIdentity {
        node_id,
        ..ProxyIdentity::default()
    };
    let sidecar = "sidecar~10.0.0.7~productpage-v1-1.default~default.svc.cluster.local";
    // (node.id, applied with explain on)
    let cases = [
        (Some(sidecar), true),
        (
            Some("router~10.0.0.9~gw.istio-system~istio-system.svc.cluster.local"),
            false,
        ),
        (
            Some("waypoint~10.0.0.3~waypoint.default~default.svc.cluster.local"),
            false,
        ),
        (Some("sidecar"), false),
        (Some("~10.0.0.7~x~y"), false),
        (Some("Sidecar~10.0.0.7~x~y"), false),
        (None, false),
    ];
    for (node_id, applies) in cases {
        let fit = seed_a(true).fit_for(at(node_id));
        assert_eq!(fit.is_ok(), applies, "{node_id:?}: {fit:?}");
        if let Err(refused) = fit {
            let message = refused.to_string();
            assert!(
                message.starts_with("explain: is for sidecars only, and this proxy is "),
                "{message}"
            );
        }
        // Without explain every proxy applies it.
        assert!(seed_a(false).fit_for(at(node_id)).is_ok(), "{node_id:?}");
    }
}
