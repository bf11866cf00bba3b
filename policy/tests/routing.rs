//! The routing decision: exact splits, failover down the failed region's own chain,
//! and the invariants that must hold for any weights and any health.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use geolb_policy::health::{HealthConfig, HealthView, RegionHealth, TableShape, encode_table};
use geolb_policy::routing::{Decision, SourcePlan, SpillView};
use geolb_policy::spill::Window;
use geolb_policy::{CompiledPolicy, CompiledService, ServiceId, parse_policy};
use proptest::prelude::*;
use serde_json::json;

use geolb_policy::testing::SEED_A;
use geolb_policy::testing::THREE_REGIONS as THREE;

fn policy(text: &str) -> CompiledPolicy {
    parse_policy(text.as_bytes()).unwrap()
}

fn service(policy: &CompiledPolicy, index: u16) -> &CompiledService {
    policy.service(ServiceId(index)).unwrap()
}

/// A health table in which the given slots are ejected at t=0.
fn ejected(slots: usize, down: &[usize]) -> Vec<u8> {
    let mut table = vec![RegionHealth::default(); slots];
    for &slot in down {
        table[slot].ejected_until_ms = 1_000;
    }
    encode_table(&table, shape(slots))
}

/// A table shape for tests that build tables and views themselves.
fn shape(slots: usize) -> TableShape {
    TableShape { slots, layout: 0 }
}

/// Region names chosen for `n` requests.
fn route_names(policy: &CompiledPolicy, source: &str, health: &[u8], n: usize) -> Vec<String> {
    let service = service(policy, 0);
    let plan = SourcePlan::new(service, policy.region_id(source));
    let mut rr = plan.round_robin();
    let view = HealthView::new(Some(health), shape(service.regions().len()));
    (0..n)
        .map(|i| {
            match plan.decide(
                &mut rr,
                &view,
                service.health(),
                0,
                i as u32,
                SpillView::none(),
            ) {
                Decision::Route { slot, .. } => policy
                    .region_name(service.region_of(slot).unwrap())
                    .to_owned(),
                other => format!("{other:?}"),
            }
        })
        .collect()
}

fn count(names: &[String], region: &str) -> usize {
    names.iter().filter(|n| *n == region).count()
}

#[test]
fn seed_a_distribution_is_exact_in_every_window_of_ten() {
    let p = policy(SEED_A);
    let names = route_names(&p, "cn-hangzhou", &ejected(2, &[]), 1_000);
    for window in names.windows(10) {
        assert_eq!(count(window, "cn-shanghai"), 1, "{window:?}");
    }
    assert_eq!(count(&names, "cn-hangzhou"), 900);
}

#[test]
fn without_a_distribution_traffic_stays_in_the_source_region() {
    let p = policy(SEED_A);
    let names = route_names(&p, "cn-shanghai", &ejected(2, &[]), 100);
    assert_eq!(count(&names, "cn-shanghai"), 100);
}

#[test]
fn seed_a_failover_sends_everything_to_the_next_region() {
    let p = policy(SEED_A);
    let names = route_names(&p, "cn-hangzhou", &ejected(2, &[0]), 10);
    assert_eq!(count(&names, "cn-shanghai"), 10);
    let names = route_names(&p, "cn-hangzhou", &ejected(2, &[1]), 10);
    assert_eq!(
        count(&names, "cn-hangzhou"),
        10,
        "the 10% of a failed cn-shanghai fails over back home"
    );
}

#[test]
fn split_and_failover_at_once_moves_only_the_failed_share() {
    // From cn-hangzhou 80/20 to cn-hangzhou/cn-shanghai; cn-shanghai fails over to cn-beijing.
    let p = policy(THREE);
    let names = route_names(&p, "cn-hangzhou", &ejected(3, &[1]), 100);
    assert_eq!(
        (
            count(&names, "cn-hangzhou"),
            count(&names, "cn-beijing"),
            count(&names, "cn-shanghai")
        ),
        (80, 20, 0)
    );
}

#[test]
fn a_chain_is_followed_in_order() {
    let p = policy(THREE);
    // cn-hangzhou down: its 80% goes to cn-shanghai (first in its chain), not cn-beijing.
    let names = route_names(&p, "cn-hangzhou", &ejected(3, &[0]), 100);
    assert_eq!(count(&names, "cn-shanghai"), 100);
    // cn-hangzhou and cn-shanghai down: everything in cn-beijing.
    let names = route_names(&p, "cn-hangzhou", &ejected(3, &[0, 1]), 100);
    assert_eq!(count(&names, "cn-beijing"), 100);
}

#[test]
fn no_healthy_region_leaves_routing_to_the_mesh() {
    let p = policy(SEED_A);
    let names = route_names(&p, "cn-hangzhou", &ejected(2, &[0, 1]), 3);
    assert_eq!(
        names,
        [
            "NoHealthyRegion { primary: 0 }",
            "NoHealthyRegion { primary: 0 }",
            "NoHealthyRegion { primary: 0 }"
        ]
    );
}

#[test]
fn a_source_region_without_the_service_follows_its_own_chain() {
    let mut p: serde_json::Value = serde_json::from_str(THREE).unwrap();
    p["services"][1]["failover"] = json!({"cn-hangzhou": ["cn-beijing", "cn-shanghai"]});
    let p = policy(&p.to_string());
    let ratings = service(&p, 1);
    let plan = SourcePlan::new(ratings, p.region_id("cn-hangzhou"));
    assert_eq!(plan.targets().len(), 1);
    assert_eq!(
        plan.targets()[0].preference,
        [1, 0],
        "cn-beijing, then cn-shanghai"
    );
}

#[test]
fn an_unknown_source_region_passes_through() {
    let p = policy(SEED_A);
    let plan = SourcePlan::new(service(&p, 0), None);
    let mut rr = plan.round_robin();
    assert_eq!(
        plan.decide(
            &mut rr,
            &HealthView::all_healthy(),
            &HealthConfig::default(),
            0,
            0,
            SpillView::none()
        ),
        Decision::Passthrough
    );
}

#[test]
fn a_returning_region_ramps_up_instead_of_taking_its_full_share_at_once() {
    let p = policy(SEED_A);
    let reviews = service(&p, 0);
    let cfg = HealthConfig {
        recovery_ramp_ms: 10_000,
        ..reviews.health().clone()
    };
    let mut table = vec![RegionHealth::default(); 2];
    table[0].ejected_until_ms = 1_000;
    let bytes = encode_table(&table, shape(2));
    let view = HealthView::new(Some(&bytes), shape(2));
    let plan = SourcePlan::new(reviews, p.region_id("cn-hangzhou"));
    let share_at = |now: u64| {
        let mut rr = plan.round_robin();
        (0..1_000u32)
            .filter(|dice| {
                matches!(
                    plan.decide(
                        &mut rr,
                        &view,
                        &cfg,
                        now,
                        dice.wrapping_mul(7919),
                        SpillView::none()
                    ),
                    Decision::Route {
                        slot: 0,
                        primary: 0,
                        ..
                    }
                )
            })
            .count()
    };
    let (start, middle, end) = (share_at(1_000), share_at(6_000), share_at(11_000));
    assert!(start < 100, "5% of 90% at the start, got {start}");
    assert!(
        (400..=500).contains(&middle),
        "about half of 90% halfway, got {middle}"
    );
    assert_eq!(end, 900, "full share after the ramp");
}

/// Arbitrary service: 1..6 regions, random chains, random weights summing to 100.
fn arbitrary_policy() -> impl Strategy<Value = (serde_json::Value, usize)> {
    (1usize..6)
        .prop_flat_map(|n| {
            let chains = proptest::collection::vec(
                proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n).prop_shuffle(),
                n,
            );
            let cuts = proptest::collection::vec(1u64..100, n.saturating_sub(1));
            let source = 0..n + 1; // n = a source region where the service does not run
            (Just(n), chains, cuts, source, any::<bool>())
        })
        .prop_map(|(n, chains, cuts, source, with_distribution)| {
            let names: Vec<String> = (0..=n).map(|i| format!("r{i}")).collect();
            let mut failover = serde_json::Map::new();
            for (from, chain) in chains.iter().enumerate() {
                let chain: Vec<&String> = chain
                    .iter()
                    .filter(|&&to| to != from)
                    .map(|&to| &names[to])
                    .collect();
                if !chain.is_empty() {
                    failover.insert(names[from].clone(), json!(chain));
                }
            }
            // n weights >= 1 summing to 100 from sorted distinct cut points.
            let mut points: Vec<u64> = cuts
                .into_iter()
                .map(|c| c.min(100 - n as u64 + 1))
                .collect();
            points.sort_unstable();
            let mut weights = serde_json::Map::new();
            let mut previous = 0;
            for i in 0..n {
                let end = if i + 1 == n {
                    100
                } else {
                    points[i].max(previous + 1).min(100 - (n - 1 - i) as u64)
                };
                weights.insert(names[i].clone(), json!(end - previous));
                previous = end;
            }
            let mut service = json!({
                "name": "svc", "hosts": ["svc.ns.svc.cluster.local"],
                "regions": names[..n], "failover": failover,
            });
            if with_distribution {
                service["distribute"] = json!({ names[source].clone(): weights });
            }
            (
                json!({"apiVersion": "geolb.io/v1alpha1", "routeToken": "test-route-token-not-a-secret", "regions": names, "services": [service]}),
                source,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn decisions_respect_health_chains_and_weights(
        (policy_json, source) in arbitrary_policy(),
        down_mask in any::<u8>(),
        dice in any::<u32>(),
    ) {
        let p = parse_policy(policy_json.to_string().as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let svc = service(&p, 0);
        let slots = svc.regions().len();
        let down: Vec<usize> = (0..slots).filter(|s| down_mask & (1 << s) != 0).collect();
        let bytes = ejected(slots, &down);
        let view = HealthView::new(Some(&bytes), shape(slots));
        let plan = SourcePlan::new(svc, p.region_id(&format!("r{source}")));
        let mut rr = plan.round_robin();
        let mut per_target = vec![0u32; plan.targets().len()];
        for i in 0..100u32 {
            let decision = plan.decide(&mut rr, &view, svc.health(), 0, dice.wrapping_add(i), SpillView::none());
            match decision {
                Decision::Route { slot, primary, .. } => {
                    // Always a configured region, never an unhealthy one.
                    prop_assert!(slot < slots);
                    prop_assert!(!down.contains(&slot), "chose ejected slot {slot}");
                    // The first healthy region of the share's preference order.
                    let target = plan.targets().iter().position(|t| t.preference[0] == primary).unwrap();
                    let first_healthy = plan.targets()[target].preference.iter().find(|s| !down.contains(s)).copied();
                    prop_assert_eq!(Some(slot), first_healthy);
                    per_target[target] += 1;
                }
                Decision::NoHealthyRegion { .. } => prop_assert_eq!(down.len(), slots, "a healthy region existed"),
                Decision::Passthrough => prop_assert!(false, "source is known"),
            }
        }
        // Any 100 consecutive decisions honour the weights exactly.
        if down.len() < slots {
            for (target, got) in plan.targets().iter().zip(&per_target) {
                prop_assert_eq!(target.weight, *got);
            }
        }
    }
}

/// Graded spill over three regions: from cn-hangzhou 60/30/10 to cn-hangzhou,
/// cn-shanghai, cn-beijing; cn-hangzhou fails over to cn-shanghai, then cn-beijing.
fn spill_policy() -> CompiledPolicy {
    let p = json!({
        "apiVersion": "geolb.io/v1alpha1",
        "routeToken": "test-route-token-not-a-secret",
        "regions": ["cn-hangzhou", "cn-shanghai", "cn-beijing"],
        "sourceRegion": "cn-hangzhou",
        "services": [{
            "name": "reviews.default",
            "hosts": ["reviews.default.svc.cluster.local"],
            "regions": ["cn-hangzhou", "cn-shanghai", "cn-beijing"],
            "failover": {
                "cn-hangzhou": ["cn-shanghai", "cn-beijing"],
                "cn-shanghai": ["cn-beijing", "cn-hangzhou"],
                "cn-beijing": ["cn-hangzhou", "cn-shanghai"]
            },
            "distribute": { "cn-hangzhou": { "cn-hangzhou": 60, "cn-shanghai": 30, "cn-beijing": 10 } }
        }]
    });
    parse_policy(p.to_string().as_bytes()).unwrap()
}

/// Requests per region of 10,000 decisions with each region failing the given tenths
/// of the 100 outcomes in its window (the same dice sequence for any rates).
fn spill_shares(failing_tenths: [u32; 3]) -> [u32; 3] {
    let p = spill_policy();
    let svc = service(&p, 0);
    let cfg = svc.health().clone();
    let windows: Vec<Window> = failing_tenths
        .iter()
        .map(|tenths| {
            let mut w = Window::default();
            for i in 0..100 {
                w.record(i % 10 < *tenths, 1, &cfg, 1_000);
            }
            w
        })
        .collect();
    let plan = SourcePlan::new(svc, p.region_id("cn-hangzhou"));
    let mut rr = plan.round_robin();
    let mut shares = [0u32; 3];
    for i in 0..10_000u32 {
        let dice = i.wrapping_mul(7_919) % 1_000;
        match plan.decide(
            &mut rr,
            &HealthView::all_healthy(),
            &cfg,
            0,
            dice,
            SpillView::new(&windows, 1_000),
        ) {
            Decision::Route { slot, .. } => shares[slot] += 1,
            other => panic!("{other:?}"),
        }
    }
    shares
}

#[test]
fn a_degraded_region_sheds_its_share_down_its_own_chain() {
    // Healthy: the weights exactly.
    assert_eq!(spill_shares([0, 0, 0]), [6_000, 3_000, 1_000]);
    // cn-hangzhou failing 30% keeps 58% of its 60%; the rest goes to cn-shanghai, the
    // first of its chain, and none to cn-beijing.
    let [hz, sh, bj] = spill_shares([3, 0, 0]);
    assert!(hz.abs_diff(3_480) <= 30, "{hz}");
    assert_eq!(hz + sh, 9_000);
    assert_eq!(bj, 1_000);
}

proptest! {
    /// For any failure rates: every request is routed, a region's share never grows as
    /// its own failure rate grows, and a healthy first region of the chain takes all
    /// that a degraded region sheds.
    #[test]
    fn graded_spill_is_monotone_and_follows_the_chain(
        rates in proptest::array::uniform3(0u32..=10),
        region in 0usize..3,
    ) {
        let shares = spill_shares(rates);
        prop_assert_eq!(shares.iter().sum::<u32>(), 10_000);
        for worse in rates[region]..=10 {
            let mut more = rates;
            more[region] = worse;
            let after = spill_shares(more);
            prop_assert!(after[region] <= shares[region], "{:?} -> {:?}: {:?} -> {:?}", rates, more, shares, after);
        }
        // Only cn-hangzhou degraded: cn-beijing (after cn-shanghai in its chain) keeps
        // exactly its own share.
        let only_hz = spill_shares([rates[0], 0, 0]);
        prop_assert_eq!(only_hz[2], 1_000);
    }
}
