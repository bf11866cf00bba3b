//! Health shared by every worker VM of a proxy: one shared-data key per service,
//! updated with compare-and-swap so that concurrent workers lose no failure.
//!
//! The host behind [`SharedStore`] is proxy-wasm's shared data in the filter and an
//! in-memory map in tests.

use crate::health::{
    HealthConfig, RegionHealth, TableShape, Transition, decode_table, encode_table,
};
use crate::outcome::{FailureKind, Verdict};
use crate::policy::Slot;
use crate::wire::API_VERSION;

/// Why a shared-data call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Another writer got there first; read again.
    #[error("compare-and-swap mismatch")]
    CasMismatch,
    /// Every retry lost the race.
    #[error("gave up after {0} compare-and-swap attempts")]
    Contended(u32),
    /// The host refused the call.
    #[error("host error: {0}")]
    Host(String),
}

/// Key-value store with compare-and-swap, as proxy-wasm shared data offers it.
pub trait SharedStore {
    /// The value and its CAS token; `None` when the key does not exist.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    /// Writes `value` if the key's CAS token is still `cas` (0: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// Attempts before a contended update gives up (and the outcome is dropped).
pub const MAX_CAS_ATTEMPTS: u32 = 16;

/// The shared-data key of a service's health table: prefixed with the plugin name
/// (Istio leaves `vm_id` empty, so every plugin of a proxy shares one key space) and the
/// policy format version; one key per service name, so policy updates reuse keys
/// instead of piling up new ones (proxy-wasm cannot delete shared data).
pub fn health_key(plugin: &str, service: &str) -> String {
    let version = API_VERSION.rsplit('/').next().unwrap_or(API_VERSION);
    format!("geolb/{plugin}/{version}/health/{service}")
}

/// One service's health table in the shared store: where it is kept and the shape it
/// must have. Every read-modify-write of the table goes through it.
#[derive(Debug)]
pub struct SharedTable<'a, S> {
    /// The proxy's shared data.
    pub store: &'a S,
    /// The table's key ([`health_key`]).
    pub key: &'a str,
    /// The shape of the service's regions.
    pub shape: TableShape,
}

impl<S: SharedStore> SharedTable<'_, S> {
    /// Makes sure a service's table exists with this shape, so that later updates always
    /// compare-and-swap (a CAS of 0 would overwrite a concurrent first write), and carries
    /// the policy's drain marks (`drained`, per slot). A table of another shape (the
    /// service's regions changed) is replaced by a fresh one.
    ///
    /// A mark that changes in a table this proxy already had moves the share over the
    /// drain ramp of `config` from `now_ms`; in a fresh table it holds at once, because a proxy that
    /// starts with a region drained has no traffic there to move. Every VM of the proxy
    /// calls this with the same marks: the first one to apply them writes, the others find
    /// them written. Returns the slots whose mark changed.
    pub fn seed(
        &self,
        drained: &[bool],
        config: &HealthConfig,
        now_ms: u64,
    ) -> Result<Vec<Slot>, StoreError> {
        let (store, key, shape) = (self.store, self.key, self.shape);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (mut table, cas, existed) = match store.get(key)? {
                Some((bytes, cas)) if shape.matches(&bytes) => {
                    (decode_table(Some(&bytes), shape), cas, true)
                }
                // Another shape (or unreadable): start over.
                Some((_, cas)) => (vec![RegionHealth::default(); shape.slots], cas, false),
                None => (vec![RegionHealth::default(); shape.slots], 0, false),
            };
            let mut changed = Vec::new();
            for (slot, record) in table.iter_mut().enumerate() {
                let mark = drained.get(slot).copied().unwrap_or(false);
                if record.mark_drained(mark, existed, config, now_ms) {
                    changed.push(slot);
                }
            }
            if existed && changed.is_empty() {
                return Ok(changed);
            }
            match store.set(key, &encode_table(&table, shape), cas) {
                Ok(()) => return Ok(changed),
                // Another VM wrote first: apply the marks to what it wrote.
                Err(StoreError::CasMismatch) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Contended(MAX_CAS_ATTEMPTS))
    }

    /// Records `observation` for `slot` with a CAS loop. Writes nothing when the record
    /// does not change (the common case: a success on a healthy region).
    pub fn record(
        &self,
        slot: Slot,
        observation: Observation,
        config: &HealthConfig,
        now_ms: u64,
    ) -> Result<Transition, StoreError> {
        let (store, key, shape) = (self.store, self.key, self.shape);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = store.get(key)?;
            let (bytes, cas) = match &current {
                Some((bytes, cas)) => (Some(bytes.as_slice()), *cas),
                None => (None, 0),
            };
            let mut table = decode_table(bytes, shape);
            let Some(record) = table.get_mut(slot) else {
                return Ok(Transition::None);
            };
            let before = *record;
            let transition = match observation {
                Observation::Success => record.record_success(config, now_ms),
                Observation::Failure => record.record_failure(config, now_ms),
                Observation::ServedElsewhere => record.record_served_elsewhere(config, now_ms),
                Observation::Probe { passed } => record.record_probe(config, passed, now_ms),
            };
            if *record == before && bytes.is_some() {
                return Ok(transition);
            }
            match store.set(key, &encode_table(&table, shape), cas) {
                Ok(()) => return Ok(transition),
                Err(StoreError::CasMismatch) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Contended(MAX_CAS_ATTEMPTS))
    }
}

/// The shared-data key naming the configuration a proxy applied last (its
/// fingerprint): what makes "once per proxy and update" countable when every VM of
/// the proxy applies the update.
pub fn applied_key(plugin: &str) -> String {
    format!("geolb/{plugin}/applied")
}

/// Claims the application of the configuration with `fingerprint` for this VM: true
/// for the first VM of the proxy to apply it since another configuration was applied
/// (it logs and counts for the whole proxy), false for the others. Refused
/// configurations are never claimed: the proxy keeps applying the previous one.
pub fn claim_update<S: SharedStore>(
    store: &S,
    key: &str,
    fingerprint: u64,
) -> Result<bool, StoreError> {
    let mark = fingerprint.to_le_bytes();
    for _ in 0..MAX_CAS_ATTEMPTS {
        let cas = match store.get(key)? {
            Some((bytes, _)) if bytes == mark => return Ok(false),
            Some((_, cas)) => cas,
            // Envoy's canary applies a configuration before any worker does.
            None => 0,
        };
        match store.set(key, &mark, cas) {
            Ok(()) => return Ok(true),
            Err(StoreError::CasMismatch) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Contended(MAX_CAS_ATTEMPTS))
}

/// The shared-data key of the proxy's prober lease.
pub fn prober_key(plugin: &str) -> String {
    format!("geolb/{plugin}/prober")
}

/// The shared-data key handing out VM numbers (lease owners).
pub fn vm_number_key(plugin: &str) -> String {
    format!("geolb/{plugin}/vms")
}

/// How long a prober lease lasts without renewal: a VM that stops ticking (gone,
/// crashed) hands probing to another within this time.
pub const LEASE_MS: u64 = 1_000;

/// Takes a number no other VM of the proxy has (1, 2, ...): the VM's name as a lease
/// owner.
pub fn take_vm_number<S: SharedStore>(store: &S, key: &str) -> Result<u64, StoreError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (last, cas) = match store.get(key)? {
            Some((bytes, cas)) => (u64_from(&bytes).unwrap_or(0), cas),
            None => (0, 0),
        };
        let mine = last.saturating_add(1);
        match store.set(key, &mine.to_le_bytes(), cas) {
            Ok(()) => return Ok(mine),
            Err(StoreError::CasMismatch) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::Contended(MAX_CAS_ATTEMPTS))
}

/// Whether VM `owner` holds the prober lease at `now_ms`: it does when it held it
/// already or the lease lapsed, and then renews it (writing only once half of it is
/// used up). Two VMs racing for a lapsed lease: the compare-and-swap lets one win.
pub fn hold_lease<S: SharedStore>(
    store: &S,
    key: &str,
    owner: u64,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let (current, cas) = match store.get(key)? {
        Some((bytes, cas)) => (Lease::decode(&bytes), cas),
        None => (None, 0),
    };
    if let Some(lease) = current
        && lease.owner != owner
        && now_ms < lease.expires_ms
    {
        return Ok(false);
    }
    if let Some(lease) = current
        && lease.owner == owner
        && lease.expires_ms.saturating_sub(now_ms) > LEASE_MS / 2
    {
        return Ok(true);
    }
    let renewed = Lease {
        owner,
        expires_ms: now_ms.saturating_add(LEASE_MS),
    };
    match store.set(key, &renewed.encode(), cas) {
        Ok(()) => Ok(true),
        Err(StoreError::CasMismatch) => Ok(false),
        Err(other) => Err(other),
    }
}

/// The prober lease: who probes, until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lease {
    owner: u64,
    expires_ms: u64,
}

impl Lease {
    fn encode(self) -> [u8; 16] {
        let mut out = [0; 16];
        let (owner, expires) = out.split_at_mut(8);
        owner.copy_from_slice(&self.owner.to_le_bytes());
        expires.copy_from_slice(&self.expires_ms.to_le_bytes());
        out
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Self {
            owner: u64_from(bytes.get(..8)?)?,
            expires_ms: u64_from(bytes.get(8..16)?)?,
        })
    }
}

fn u64_from(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// What an outcome to record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The region served the request.
    Success,
    /// The region failed the request.
    Failure,
    /// Envoy answered the request routed to the region from another region.
    ServedElsewhere,
    /// A probe of the region passed or failed.
    Probe {
        /// The answer was one of the expected statuses.
        passed: bool,
    },
}

impl Observation {
    /// What a classified request tells its region's record; `None` when nothing.
    pub fn of(verdict: Verdict) -> Option<Self> {
        match verdict {
            Verdict::Success => Some(Self::Success),
            Verdict::Failure(FailureKind::ServedElsewhere) => Some(Self::ServedElsewhere),
            Verdict::Failure(_) => Some(Self::Failure),
            Verdict::Ignore => None,
        }
    }

    /// What a finished request must write to its region's shared record; `None` when
    /// nothing. A success for a region whose record was pristine when the request
    /// was routed changes nothing, so it costs no shared-data round trip.
    pub fn to_record(verdict: Verdict, region_was_pristine: bool) -> Option<Self> {
        match verdict {
            Verdict::Success if region_was_pristine => None,
            verdict => Self::of(verdict),
        }
    }
}

/// An in-memory [`SharedStore`] with the host's CAS semantics, for tests.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: std::sync::Mutex<std::collections::BTreeMap<String, (Vec<u8>, u32)>>,
}

#[cfg(any(test, feature = "testing"))]
impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        let entries = self
            .entries
            .lock()
            .map_err(|e| StoreError::Host(e.to_string()))?;
        Ok(entries.get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|e| StoreError::Host(e.to_string()))?;
        let entry = entries
            .entry(key.to_owned())
            .or_insert_with(|| (Vec::new(), 0));
        if cas != 0 && entry.1 != cas {
            return Err(StoreError::CasMismatch);
        }
        entry.0 = value.to_vec();
        entry.1 = entry.1.wrapping_add(1).max(1);
        Ok(())
    }
}
