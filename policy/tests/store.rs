//! Shared health across worker VMs: compare-and-swap loses no update, seeding never
//! overwrites, and one worker's ejection is every worker's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::sync::Arc;

use geolb_policy::health::{HealthConfig, HealthView, Transition, decode_table};
use geolb_policy::store::{
    MemoryStore, Observation, SharedStore, StoreError, health_key, record, seed,
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
    let key = health_key("geolb", 7, 0);
    seed(&*store, &key, 2).unwrap();
    let cfg = config(10_000);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (store, key, cfg) = (store.clone(), key.clone(), cfg.clone());
            std::thread::spawn(move || {
                for _ in 0..250 {
                    // Contention may exhaust the retries; count only what landed.
                    loop {
                        match record(&*store, &key, 2, 1, Observation::Failure, &cfg, 5) {
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
    assert_eq!(decode_table(Some(&bytes), 2)[1].consecutive_failures, 2_000);
}

#[test]
fn seeding_keeps_what_is_there() {
    let store = MemoryStore::default();
    let key = health_key("geolb", 1, 0);
    seed(&store, &key, 1).unwrap();
    record(&store, &key, 1, 0, Observation::Failure, &config(5), 1).unwrap();
    seed(&store, &key, 1).unwrap();
    let (bytes, _) = store.get(&key).unwrap().unwrap();
    assert_eq!(decode_table(Some(&bytes), 1)[0].consecutive_failures, 1);
}

#[test]
fn an_ejection_recorded_by_one_worker_is_seen_by_another() {
    let store = MemoryStore::default();
    let key = health_key("geolb", 1, 0);
    seed(&store, &key, 2).unwrap();
    let t = record(&store, &key, 2, 0, Observation::Failure, &config(1), 100).unwrap();
    assert_eq!(t, Transition::Ejected { until_ms: 1_100 });
    // "Another worker" reads the same key.
    let (bytes, _) = store.get(&key).unwrap().unwrap();
    let view = HealthView::new(Some(&bytes), 2);
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
    let key = health_key("geolb", 1, 0);
    seed(&store, &key, 2).unwrap();
    for now in 0..100 {
        record(&store, &key, 2, 0, Observation::Success, &config(5), now).unwrap();
    }
    assert_eq!(
        store.1.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "only the seed wrote"
    );
}

#[test]
fn keys_are_prefixed_by_plugin_and_policy() {
    assert_eq!(
        health_key("geolb-reviews", 0xabc, 3),
        "geolb/geolb-reviews/0000000000000abc/health/3"
    );
}
