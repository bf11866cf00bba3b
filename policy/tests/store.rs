//! Shared health across worker VMs: compare-and-swap loses no update, seeding never
//! overwrites, and one worker's ejection is every worker's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::sync::Arc;

use geolb_policy::health::{
    HealthConfig, HealthView, RegionHealth, TableShape, Transition, decode_table,
};
use geolb_policy::store::{
    LEASE_MS, MemoryStore, Observation, SharedStore, SharedTable, StoreError, applied_key,
    claim_update, health_key, hold_lease, prober_key, take_vm_number, vm_number_key,
};

const TWO: TableShape = TableShape {
    slots: 2,
    layout: 2,
};
const ONE: TableShape = TableShape {
    slots: 1,
    layout: 1,
};

fn config(threshold: u32) -> HealthConfig {
    HealthConfig {
        consecutive_failures: threshold,
        base_ejection_ms: 1_000,
        max_ejection_ms: 10_000,
        recovery_ramp_ms: 0,
        ..HealthConfig::default()
    }
}

#[test]
fn concurrent_failures_from_many_workers_are_all_counted() {
    let store = Arc::new(MemoryStore::default());
    let key = health_key("geolb", "reviews.default");
    SharedTable {
        store: &*store,
        key: &key,
        shape: TWO,
    }
    .seed(&[], &HealthConfig::default(), 0)
    .unwrap();
    let cfg = config(10_000);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, key, cfg) = (store.clone(), key.clone(), cfg.clone());
            std::thread::spawn(move || {
                for _ in 0..250 {
                    // Contention may exhaust the retries; count only what landed.
                    loop {
                        match (SharedTable {
                            store: &*store,
                            key: &key,
                            shape: TWO,
                        })
                        .record(1, Observation::Failure, &cfg, 5)
                        {
                            Ok(_) => break,
                            Err(StoreError::Contended(_)) => continue,
                            Err(other) => panic!("{other}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (bytes, _) = store.get(&key).unwrap().unwrap();
    assert_eq!(
        decode_table(Some(&bytes), TWO)[1].consecutive_failures,
        2_000
    );
}

#[test]
fn seeding_keeps_what_is_there() {
    let store = MemoryStore::default();
    let key = health_key("geolb", "reviews.default");
    SharedTable {
        store: &store,
        key: &key,
        shape: ONE,
    }
    .seed(&[], &HealthConfig::default(), 0)
    .unwrap();
    SharedTable {
        store: &store,
        key: &key,
        shape: ONE,
    }
    .record(0, Observation::Failure, &config(5), 1)
    .unwrap();
    SharedTable {
        store: &store,
        key: &key,
        shape: ONE,
    }
    .seed(&[], &HealthConfig::default(), 0)
    .unwrap();
    let (bytes, _) = store.get(&key).unwrap().unwrap();
    assert_eq!(decode_table(Some(&bytes), ONE)[0].consecutive_failures, 1);
}

#[test]
fn an_ejection_recorded_by_one_worker_is_seen_by_another() {
    let store = MemoryStore::default();
    let key = health_key("geolb", "reviews.default");
    SharedTable {
        store: &store,
        key: &key,
        shape: TWO,
    }
    .seed(&[], &HealthConfig::default(), 0)
    .unwrap();
    let t = SharedTable {
        store: &store,
        key: &key,
        shape: TWO,
    }
    .record(0, Observation::Failure, &config(1), 100)
    .unwrap();
    assert_eq!(t, Transition::Ejected { until_ms: 1_100 });
    // "Another worker" reads the same key.
    let (bytes, _) = store.get(&key).unwrap().unwrap();
    let view = HealthView::new(Some(&bytes), TWO);
    assert_eq!(
        view.get(0).admission(&config(1), 500),
        geolb_policy::health::Admission::Ejected
    );
}

#[test]
fn a_success_on_a_healthy_region_writes_nothing() {
    struct CountingStore(MemoryStore, std::sync::atomic::AtomicU32);
    impl SharedStore for CountingStore {
        fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
            self.0.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.set(key, value, cas)
        }
    }
    let store = CountingStore(MemoryStore::default(), Default::default());
    let key = health_key("geolb", "reviews.default");
    SharedTable {
        store: &store,
        key: &key,
        shape: TWO,
    }
    .seed(&[], &HealthConfig::default(), 0)
    .unwrap();
    for now in 0..100 {
        SharedTable {
            store: &store,
            key: &key,
            shape: TWO,
        }
        .record(0, Observation::Success, &config(5), now)
        .unwrap();
    }
    assert_eq!(
        store.1.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "only the seed wrote"
    );
}

#[test]
fn only_news_is_recorded_a_success_on_a_pristine_region_is_not() {
    use geolb_policy::outcome::{FailureKind, Verdict};
    let failure = Verdict::Failure(FailureKind::Status(503));
    let elsewhere = Verdict::Failure(FailureKind::ServedElsewhere);
    for pristine in [true, false] {
        assert_eq!(
            Observation::to_record(failure, pristine),
            Some(Observation::Failure)
        );
        assert_eq!(
            Observation::to_record(elsewhere, pristine),
            Some(Observation::ServedElsewhere)
        );
        assert_eq!(Observation::to_record(Verdict::Ignore, pristine), None);
    }
    assert_eq!(Observation::to_record(Verdict::Success, true), None);
    // A success after failures resets the count: news.
    assert_eq!(
        Observation::to_record(Verdict::Success, false),
        Some(Observation::Success)
    );
}

#[test]
fn keys_are_prefixed_by_plugin_and_policy() {
    assert_eq!(
        health_key("default.geolb", "reviews.default"),
        "geolb/default.geolb/v1alpha1/health/reviews.default"
    );
}

#[test]
fn a_table_for_other_regions_is_replaced_and_one_for_the_same_regions_kept() {
    let store = MemoryStore::default();
    let key = health_key("geolb", "reviews.default");
    let (hz_sh, hz_bj) = (
        TableShape::of(["cn-hangzhou", "cn-shanghai"]),
        TableShape::of(["cn-hangzhou", "cn-beijing"]),
    );
    SharedTable {
        store: &store,
        key: &key,
        shape: hz_sh,
    }
    .seed(&[], &HealthConfig::default(), 0)
    .unwrap();
    SharedTable {
        store: &store,
        key: &key,
        shape: hz_sh,
    }
    .record(0, Observation::Failure, &config(5), 1)
    .unwrap();
    // A policy update that keeps the service's regions keeps its health ...
    SharedTable {
        store: &store,
        key: &key,
        shape: hz_sh,
    }
    .seed(&[], &HealthConfig::default(), 0)
    .unwrap();
    let (bytes, _) = store.get(&key).unwrap().unwrap();
    assert_eq!(decode_table(Some(&bytes), hz_sh)[0].consecutive_failures, 1);
    // ... one that changes them starts clean, in the same key (no key is left behind).
    SharedTable {
        store: &store,
        key: &key,
        shape: hz_bj,
    }
    .seed(&[], &HealthConfig::default(), 0)
    .unwrap();
    let (bytes, _) = store.get(&key).unwrap().unwrap();
    assert!(hz_bj.matches(&bytes));
    assert_eq!(
        decode_table(Some(&bytes), hz_bj),
        vec![RegionHealth::default(); 2]
    );
}

#[test]
fn one_vm_per_update_claims_it_and_a_later_return_to_a_configuration_is_claimed_again() {
    let store = MemoryStore::default();
    let key = applied_key("geolb");
    // The canary and two workers apply configuration 1: only the first claims it.
    let claims: Vec<bool> = (0..3)
        .map(|_| claim_update(&store, &key, 1).unwrap())
        .collect();
    assert_eq!(claims, [true, false, false]);
    // Configuration 2, then 1 again: each is a new update, claimed once.
    assert!(claim_update(&store, &key, 2).unwrap());
    assert!(!claim_update(&store, &key, 2).unwrap());
    assert!(claim_update(&store, &key, 1).unwrap());
    assert!(!claim_update(&store, &key, 1).unwrap());
}

#[test]
fn concurrent_workers_claim_an_update_exactly_once() {
    let store = Arc::new(MemoryStore::default());
    let key = applied_key("geolb");
    // The first write of the key is unconditional (CAS 0): Envoy's canary makes it
    // alone, before any worker VM applies the first configuration.
    assert!(claim_update(&*store, &key, 0).unwrap());
    for fingerprint in 1..=20u64 {
        let claims: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| claim_update(&*store, &key, fingerprint).unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(claims, 1, "update {fingerprint}");
    }
}

#[test]
fn every_vm_gets_its_own_number_even_when_they_race() {
    let store = Arc::new(MemoryStore::default());
    let key = vm_number_key("geolb");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|_| {
                        loop {
                            match take_vm_number(&*store, &key) {
                                Ok(n) => break n,
                                Err(StoreError::Contended(_)) => continue,
                                Err(other) => panic!("{other}"),
                            }
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=400).collect::<Vec<_>>());
}

#[test]
fn one_vm_holds_the_prober_lease_until_it_stops_renewing() {
    let store = MemoryStore::default();
    let key = prober_key("geolb");
    assert!(hold_lease(&store, &key, 1, 1_000).unwrap(), "free: taken");
    assert!(!hold_lease(&store, &key, 2, 1_100).unwrap(), "held by 1");
    assert!(hold_lease(&store, &key, 1, 1_100).unwrap(), "1 keeps it");
    // 1 renews each tick; 2 never gets it while it does.
    for t in (1_200..5_000).step_by(100) {
        assert!(hold_lease(&store, &key, 1, t).unwrap());
        assert!(!hold_lease(&store, &key, 2, t + 50).unwrap());
    }
    // 1 stops (gone): the lease lapses and 2 takes it over.
    let last = 4_900;
    assert!(!hold_lease(&store, &key, 2, last + LEASE_MS / 2).unwrap());
    assert!(hold_lease(&store, &key, 2, last + LEASE_MS).unwrap());
    assert!(
        !hold_lease(&store, &key, 1, last + LEASE_MS + 100).unwrap(),
        "1 came back late"
    );
}

#[test]
fn a_renewal_writes_only_once_half_the_lease_is_used() {
    let store = MemoryStore::default();
    let key = prober_key("geolb");
    hold_lease(&store, &key, 7, 0).unwrap();
    let cas = |s: &MemoryStore| s.get(&key).unwrap().unwrap().1;
    let first = cas(&store);
    hold_lease(&store, &key, 7, LEASE_MS / 2 - 1).unwrap();
    assert_eq!(cas(&store), first, "no write while more than half is left");
    hold_lease(&store, &key, 7, LEASE_MS / 2).unwrap();
    assert_ne!(cas(&store), first);
}

#[test]
fn a_probe_recorded_by_the_prober_is_seen_by_every_worker() {
    let store = MemoryStore::default();
    let key = health_key("geolb", "reviews.default");
    let cfg = HealthConfig {
        probe: Some(geolb_policy::probe::ProbeConfig {
            path: "/".into(),
            authority: "reviews".into(),
            clusters: vec![],
            interval_ms: 100,
            timeout_ms: 50,
            expect_statuses: vec![200],
            healthy_after: 1,
            unhealthy_after: 1,
        }),
        ..config(5)
    };
    SharedTable {
        store: &store,
        key: &key,
        shape: TWO,
    }
    .seed(&[false, false], &HealthConfig::default(), 0)
    .unwrap();
    let t = SharedTable {
        store: &store,
        key: &key,
        shape: TWO,
    }
    .record(1, Observation::Probe { passed: false }, &cfg, 10)
    .unwrap();
    assert!(matches!(t, Transition::Ejected { .. }));
    let (bytes, _) = store.get(&key).unwrap().unwrap();
    let view = HealthView::new(Some(&bytes), TWO);
    assert_eq!(
        view.get(1).admission(&cfg, 20),
        geolb_policy::health::Admission::Ejected
    );
    assert_eq!(
        view.get(0).admission(&cfg, 20),
        geolb_policy::health::Admission::Healthy
    );
}
