//! `geolb simulate` predicts what the real-Envoy scenarios observe. Each expectation
//! names the end-to-end test (tests/tests/) whose measured split it repeats.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use geolb::simulate::plot;
use geolb::simulate::timeline::{Timeline, play};
use geolb::simulate::{Condition, MESH_DEFAULT, Scenario, ScenarioError, Span, Split, simulate};
use geolb::source::Source;
use geolb::validate;
use geolb_policy::testing::{BJ, HZ, SH};

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

fn load(plan: &str) -> geolb::plan::Plan {
    let text = std::fs::read_to_string(plan_path(plan)).unwrap();
    let checked = validate::check(&Source::new("plan.yaml", text));
    assert!(!checked.has_errors(), "{plan} does not validate");
    checked.plan.unwrap()
}

fn split(plan: &str, scenario: &Scenario) -> Result<Split, ScenarioError> {
    simulate(&load(plan), scenario)
}

fn timeline(plan: &str, scenario: &Scenario, seconds: u64) -> Timeline {
    play(&load(plan), scenario, seconds * 1_000).unwrap()
}

/// `START..END` in seconds.
fn during(start_s: u64, end_s: Option<u64>) -> Span {
    Span {
        start_ms: start_s * 1_000,
        end_ms: end_s.map(|e| e * 1_000),
    }
}

/// One region's share in seconds `from..to` of a timeline.
fn seconds<'t>(t: &'t Timeline, region: &str, range: std::ops::Range<usize>) -> &'t [f64] {
    &t.services["reviews.default"][region][range]
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn from(region: &str) -> Scenario {
    Scenario::from(region)
}

fn down(scenario: Scenario, regions: &[&str]) -> Scenario {
    regions
        .iter()
        .fold(scenario, |s, r| s.with(r, Condition::Down, Span::ALWAYS))
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
    let scenario = from(HZ).with(HZ, Condition::Drained, Span::ALWAYS);
    let drained = split("three-region-chain", &scenario).unwrap();
    assert_eq!(shares(&drained, "reviews.default"), of(&[(SH, 100.0)]));
}

#[test]
fn a_degraded_region_is_ejected_when_one_failure_ejects() {
    // The chain plan ejects at the first 5xx (consecutive5xxErrors: 1): a region
    // failing 30% of its requests is out nearly all the time, its returns cost a few
    // requests each.
    let scenario = from(HZ).with(SH, Condition::Degraded(30), Span::ALWAYS);
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

#[test]
fn a_timeline_without_changes_is_the_steady_split_every_second() {
    let steady = split("a-failover-distribution", &from(HZ)).unwrap();
    let t = timeline("a-failover-distribution", &from(HZ), 20);
    assert_eq!(t.seconds, 20);
    assert!(t.events.is_empty());
    for (service, regions) in &t.services {
        for (region, series) in regions {
            assert_eq!(series.len(), 20);
            let expected = steady.0[service][region];
            assert!(
                series.iter().all(|p| *p == expected),
                "{service} {region}: {series:?}"
            );
        }
    }
}

#[test]
fn a_region_down_then_back_is_ejected_at_once_then_ramps_back_over_the_plans_timings() {
    // The chain plan: baseEjectionTime 30s, the filter's recoveryRamp 10s. cn-shanghai
    // is down from 10 s to 40 s; the first refused request ejects it (consecutive5xxErrors
    // 1) until 40 s, when it is up again and ramps back by 50 s.
    let scenario = from(HZ).with(SH, Condition::Down, during(10, Some(40)));
    let t = timeline("three-region-chain", &scenario, 70);
    assert!(
        seconds(&t, HZ, 0..70).iter().all(|p| *p == 80.0),
        "the rest of the split holds"
    );
    assert!(seconds(&t, SH, 0..10).iter().all(|p| *p == 20.0));
    assert!(
        seconds(&t, SH, 10..11)[0] <= 1.0,
        "ejected within its first requests"
    );
    assert!(seconds(&t, SH, 11..40).iter().all(|p| *p == 0.0));
    assert!(
        seconds(&t, BJ, 11..40).iter().all(|p| *p == 20.0),
        "down cn-shanghai's chain"
    );
    let ramp = seconds(&t, SH, 40..50);
    assert!(ramp.iter().all(|p| *p > 0.0 && *p < 20.0), "{ramp:?}");
    assert!(mean(&ramp[..5]) < mean(&ramp[5..]), "rises: {ramp:?}");
    assert!(seconds(&t, SH, 50..70).iter().all(|p| *p == 20.0));
    assert_eq!(
        t.events
            .iter()
            .map(|e| (e.at_ms, e.change.as_str()))
            .collect::<Vec<_>>(),
        [(10_000, "down"), (40_000, "back up")]
    );
}

#[test]
fn a_region_back_before_its_ejection_ends_stays_out_until_it_ends() {
    // Up again at 20 s, but ejected at 10 s for the plan's 30 s: nothing before 40 s.
    let scenario = from(HZ).with(SH, Condition::Down, during(10, Some(20)));
    let t = timeline("three-region-chain", &scenario, 60);
    assert!(seconds(&t, SH, 11..40).iter().all(|p| *p == 0.0));
    assert!(seconds(&t, SH, 40..50).iter().all(|p| *p > 0.0));
    assert!(seconds(&t, SH, 50..60).iter().all(|p| *p == 20.0));
}

#[test]
fn a_drain_is_a_policy_update_that_ramps_the_share_away_and_back() {
    // The filter's drainRamp is 60 s: cn-hangzhou's 80 falls to 0 from 10 s to 70 s
    // and goes down its chain (cn-shanghai); undrained at 80 s, it comes back by 140 s.
    let scenario = from(HZ).with(HZ, Condition::Drained, during(10, Some(80)));
    let t = timeline("three-region-chain", &scenario, 150);
    assert!(seconds(&t, HZ, 0..10).iter().all(|p| *p == 80.0));
    let halfway = mean(seconds(&t, HZ, 38..42));
    assert!(
        (halfway - 40.0).abs() < 6.0,
        "half the ramp, half the share: {halfway}"
    );
    assert!(seconds(&t, HZ, 70..80).iter().all(|p| *p == 0.0));
    assert!(seconds(&t, SH, 70..80).iter().all(|p| *p == 100.0));
    let back = mean(seconds(&t, HZ, 108..112));
    assert!((back - 40.0).abs() < 6.0, "half way back: {back}");
    assert!(seconds(&t, HZ, 140..150).iter().all(|p| *p == 80.0));
}

#[test]
fn a_drain_lifted_half_way_turns_back_from_where_the_share_is() {
    // Drained at 10 s, lifted at 40 s, half way down the 60 s ramp (40 of 80): the share
    // rises from 40 again and is whole at 70 s. It never drops to 0 first.
    let scenario = from(HZ).with(HZ, Condition::Drained, during(10, Some(40)));
    let t = timeline("three-region-chain", &scenario, 90);
    let turning = mean(seconds(&t, HZ, 38..42));
    assert!((turning - 40.0).abs() < 6.0, "turns at 40: {turning}");
    assert!(seconds(&t, HZ, 40..70).iter().all(|p| *p > 30.0));
    assert!(mean(seconds(&t, HZ, 52..58)) > 50.0);
    assert!(seconds(&t, HZ, 70..90).iter().all(|p| *p == 80.0));
}

#[test]
fn a_timeline_refuses_spans_it_cannot_play() {
    let plan = load("a-failover-distribution");
    let late = from(HZ).with(SH, Condition::Down, during(90, None));
    assert_eq!(
        play(&plan, &late, 60_000).unwrap_err().to_string(),
        "--down cn-shanghai@90s..: starts after the timeline ends (60s)"
    );
    let spanned = from(HZ).with(SH, Condition::Degraded(30), during(10, Some(20)));
    assert_eq!(
        simulate(&plan, &spanned).unwrap_err().to_string(),
        "--degraded cn-shanghai@10s..20s: a time span needs --timeline"
    );
    assert_eq!(
        Span::parse("40s..10s").unwrap_err(),
        "\"40s..10s\" ends before it starts"
    );
    assert_eq!(
        Span::parse("..").unwrap_err(),
        "\"..\" names neither a start nor an end"
    );
    assert_eq!(
        Span::parse("10s").unwrap_err(),
        "\"10s\" is not START..END (such as 10s..40s)"
    );
    assert_eq!(Span::parse("..30s").unwrap(), during(0, Some(30)));
}

/// docs/simulate-timeline.svg, which the README shows, is the plot of the chain's
/// cn-shanghai outage from 10 s to 40 s: this pins the plot's bytes.
#[test]
fn the_plot_in_the_docs_is_what_its_timeline_draws() {
    let scenario = from(HZ).with(SH, Condition::Down, during(10, Some(40)));
    let svg = plot::svg(&timeline("three-region-chain", &scenario, 70)).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/simulate-timeline.svg");
    if std::env::var_os("GEOLB_BLESS").is_some() {
        std::fs::write(&path, &svg).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).unwrap_or_default() == svg,
        "docs/simulate-timeline.svg is stale: run scripts/bless.sh"
    );
}
