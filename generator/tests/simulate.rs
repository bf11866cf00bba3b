//! `geolb simulate` predicts what the real-Envoy scenarios observe. Each expectation
//! names the end-to-end test (tests/tests/) whose measured split it repeats.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use geolb::simulate::{MESH_DEFAULT, Scenario, ScenarioError, Split, simulate};
use geolb::source::Source;
use geolb::validate;

const HZ: &str = "cn-hangzhou";
const SH: &str = "cn-shanghai";
const BJ: &str = "cn-beijing";

fn plan_path(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match name {
        "three-region-chain" => root.join("tests/fixtures/three-region-chain.yaml"),
        seed => root
            .join("../manifests/examples")
            .join(seed)
            .join("plan.yaml"),
    }
}

fn split(plan: &str, scenario: &Scenario) -> Result<Split, ScenarioError> {
    let text = std::fs::read_to_string(plan_path(plan)).unwrap();
    let source = Source::new("plan.yaml", text);
    let checked = validate::check(&source);
    assert!(!checked.has_errors(), "{plan} does not validate");
    simulate(&checked.plan.unwrap(), scenario)
}

fn from(region: &str) -> Scenario {
    Scenario {
        from: region.to_owned(),
        ..Scenario::default()
    }
}

fn down(mut scenario: Scenario, regions: &[&str]) -> Scenario {
    scenario
        .down
        .extend(regions.iter().map(|r| (*r).to_owned()));
    scenario
}

fn shares(split: &Split, service: &str) -> Vec<(String, f64)> {
    split.0[service]
        .iter()
        .filter(|(_, p)| **p > 0.0)
        .map(|(r, p)| (r.clone(), *p))
        .collect()
}

fn of(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = pairs.iter().map(|(r, p)| ((*r).to_owned(), *p)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn seed_a_splits_90_10_and_fails_over_whole() {
    // scenarios::a_distribution_90_10_is_exact_per_ten_requests_on_a_worker: 90/10.
    let healthy = split("a-failover-distribution", &from(HZ)).unwrap();
    assert_eq!(
        shares(&healthy, "reviews.default"),
        of(&[(HZ, 90.0), (SH, 10.0)])
    );
    assert_eq!(shares(&healthy, "ratings.default"), of(&[(HZ, 100.0)]));
    // scenarios::b_failover_when_the_region_is_stopped: every request to cn-shanghai.
    let hz_down = split("a-failover-distribution", &down(from(HZ), &[HZ])).unwrap();
    for service in hz_down.0.keys() {
        assert_eq!(shares(&hz_down, service), of(&[(SH, 100.0)]), "{service}");
    }
    // Every region is listed, the one that took nothing too.
    assert_eq!(hz_down.0["reviews.default"][HZ], 0.0);
}

#[test]
fn three_region_chain_moves_only_the_dead_regions_share_down_its_own_chain() {
    let plan = "three-region-chain";
    let healthy = split(plan, &from(HZ)).unwrap();
    // scenarios::c_split_and_failover_at_once_across_three_regions: 80/20/0, then with
    // cn-shanghai stopped 80 to cn-hangzhou and 20 to cn-beijing.
    assert_eq!(
        shares(&healthy, "reviews.default"),
        of(&[(HZ, 80.0), (SH, 20.0)])
    );
    let sh_down = split(plan, &down(from(HZ), &[SH])).unwrap();
    assert_eq!(
        shares(&sh_down, "reviews.default"),
        of(&[(HZ, 80.0), (BJ, 20.0)])
    );
    // cn-hangzhou's chain is cn-shanghai first, then cn-beijing.
    let hz_down = split(plan, &down(from(HZ), &[HZ])).unwrap();
    assert_eq!(shares(&hz_down, "reviews.default"), of(&[(SH, 100.0)]));
    let two_down = split(plan, &down(from(HZ), &[HZ, SH])).unwrap();
    assert_eq!(shares(&two_down, "reviews.default"), of(&[(BJ, 100.0)]));
    // scenarios::e_every_region_down_takes_the_default_route_and_counts.
    let all_down = split(plan, &down(from(HZ), &[HZ, SH, BJ])).unwrap();
    assert_eq!(
        shares(&all_down, "reviews.default"),
        of(&[(MESH_DEFAULT, 100.0)])
    );
}

#[test]
fn a_drained_region_gives_its_share_to_its_chain() {
    // drain::*: the drained region's share is 0.0 once the ramp is over.
    let mut scenario = from(HZ);
    scenario.drained.insert(HZ.to_owned());
    let drained = split("three-region-chain", &scenario).unwrap();
    assert_eq!(shares(&drained, "reviews.default"), of(&[(SH, 100.0)]));
}

#[test]
fn a_degraded_region_is_ejected_when_one_failure_ejects() {
    // The chain plan ejects at the first 5xx (consecutive5xxErrors: 1): a region
    // failing 30% of its requests is out nearly all the time, its returns cost a few
    // requests each.
    let mut scenario = from(HZ);
    scenario.degraded.insert(SH.to_owned(), 30);
    let degraded = split("three-region-chain", &scenario).unwrap();
    let reviews = &degraded.0["reviews.default"];
    assert_eq!(reviews[HZ], 80.0);
    assert!(reviews[SH] < 0.5, "{reviews:?}");
    assert!(reviews[BJ] > 19.5, "{reviews:?}");
}

#[test]
fn every_seed_with_any_one_region_down_sums_to_100() {
    for seed in [
        "a-failover-distribution",
        "b-locality-preferred",
        "c-multi-primary",
        "d-multi-network",
    ] {
        let text = std::fs::read_to_string(plan_path(seed)).unwrap();
        let plan = validate::check(&Source::new("plan.yaml", text))
            .plan
            .unwrap();
        let regions: Vec<String> = plan.regions.iter().map(|r| r.name.clone()).collect();
        let source = &regions[0];
        for dead in &regions {
            let result = simulate(&plan, &down(from(source), &[dead])).unwrap();
            assert!(!result.0.is_empty(), "{seed}: no service simulated");
            for (service, shares) in &result.0 {
                let total: f64 = shares.values().sum();
                assert!((total - 100.0).abs() < 1e-6, "{seed} {service}: {shares:?}");
                let to_dead = shares.get(dead.as_str()).copied().unwrap_or(0.0);
                assert!(to_dead < 1.0, "{seed} {service}, {dead} down: {shares:?}");
            }
        }
    }
}

#[test]
fn names_what_the_plan_does_not_have() {
    let err = split("a-failover-distribution", &down(from(HZ), &["cn-wuhan"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--down cn-wuhan: the plan has no region \"cn-wuhan\" (its regions: cn-hangzhou, cn-shanghai)"
    );
    let err = split("a-failover-distribution", &from("eu-west-1")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--from eu-west-1: the plan has no region"),
        "{err}"
    );
}
