//! A fake Envoy for native tests of the shell: properties, headers, counters, logs,
//! a clock, and shared data that several fake "workers" can share.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;

use geolb_policy::store::{MemoryStore, SharedStore, StoreError};

use crate::host::{Host, Level, ROUTE_CLUSTER};

/// One worker's view of a fake Envoy. Clone the `store` into several to model workers.
#[derive(Debug, Default)]
pub struct FakeHost {
    /// Shared data, shared by all fake workers that hold the same `Arc`.
    pub store: Arc<MemoryStore>,
    /// Properties by path joined with '/'.
    pub properties: RefCell<BTreeMap<String, Vec<u8>>>,
    /// Current request headers (lowercase names; duplicates as repeated entries).
    pub request_headers: RefCell<Vec<(String, String)>>,
    /// Current response headers.
    pub response_headers: RefCell<Vec<(String, String)>>,
    /// Counter values by name.
    pub counters: Arc<RefCell<BTreeMap<String, u64>>>,
    counter_names: RefCell<Vec<String>>,
    /// Log lines written.
    pub logs: RefCell<Vec<(Level, String)>>,
    /// The clock, ms.
    pub now: Cell<u64>,
    /// Plugin configuration bytes.
    pub config: RefCell<Vec<u8>>,
    /// The tick period asked for.
    pub tick_period_ms: Cell<u32>,
    /// Every property path read, joined with '/', in order (what a request costs).
    pub property_reads: RefCell<Vec<String>>,
    /// The request headers as they were at each `clear_route_cache` call of the
    /// current request: what Envoy would select the route for.
    pub route_selections: RefCell<Vec<Vec<(String, String)>>>,
    /// HTTP calls dispatched, in order.
    pub http_calls: RefCell<Vec<HttpCall>>,
    /// Clusters the fake Envoy knows for HTTP calls; `None`: every cluster.
    pub known_clusters: RefCell<Option<Vec<String>>>,
    /// The status of the HTTP call answer being delivered.
    pub http_call_answer: Cell<Option<u16>>,
}

impl FakeHost {
    /// A worker in `region` sharing `store` with others.
    pub fn worker(store: Arc<MemoryStore>, region: &str) -> Self {
        let host = Self {
            store,
            ..Self::default()
        };
        host.set_property(&["xds", "node", "locality", "region"], region.as_bytes());
        host.set_property(&["plugin_name"], b"geolb-test");
        host.now.set(1_000_000);
        host
    }
    /// Sets a property.
    pub fn set_property(&self, path: &[&str], value: &[u8]) {
        self.properties
            .borrow_mut()
            .insert(path.join("/"), value.to_vec());
    }
    /// Removes a property.
    pub fn clear_property(&self, path: &[&str]) {
        self.properties.borrow_mut().remove(&path.join("/"));
    }
    /// Sets the plugin configuration.
    pub fn set_config(&self, json: &str) {
        *self.config.borrow_mut() = json.as_bytes().to_vec();
    }
    /// Starts a new request with these headers (response side and route cleared).
    pub fn begin_request(&self, headers: &[(&str, &str)]) {
        *self.request_headers.borrow_mut() = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        self.response_headers.borrow_mut().clear();
        self.route_selections.borrow_mut().clear();
        for path in [
            ["response", "code"].as_slice(),
            &["response", "flags"],
            &["upstream", "locality", "region"],
            &ROUTE_CLUSTER,
        ] {
            self.clear_property(path);
        }
    }
    /// The cluster of the route Envoy selected for the current request (set after
    /// [`Self::begin_request`], which forgets the previous request's).
    pub fn route_to_cluster(&self, cluster: &str) {
        self.set_property(&ROUTE_CLUSTER, cluster.as_bytes());
    }
    /// Sets the response: status header and the properties Envoy reports.
    pub fn respond(&self, status: Option<u16>, flags: u64, served_region: Option<&str>) {
        if let Some(code) = status {
            self.response_headers
                .borrow_mut()
                .push((":status".into(), code.to_string()));
            self.set_property(&["response", "code"], &i64::from(code).to_le_bytes());
        }
        #[allow(clippy::cast_possible_wrap)]
        self.set_property(&["response", "flags"], &(flags as i64).to_le_bytes());
        if let Some(region) = served_region {
            self.set_property(&["upstream", "locality", "region"], region.as_bytes());
        }
    }
    /// All values of a request header.
    pub fn request_header_values(&self, name: &str) -> Vec<String> {
        self.request_headers
            .borrow()
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// A counter's value (0 when never incremented).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.borrow().get(name).copied().unwrap_or(0)
    }
}

/// One HTTP call the filter dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// The token the fake host returned.
    pub token: u32,
    /// The cluster it went to.
    pub cluster: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
    /// Its timeout, ms.
    pub timeout_ms: u64,
}

impl FakeHost {
    /// Tokens of the HTTP calls dispatched so far to `cluster`.
    pub fn calls_to(&self, cluster: &str) -> Vec<u32> {
        self.http_calls
            .borrow()
            .iter()
            .filter(|call| call.cluster == cluster)
            .map(|call| call.token)
            .collect()
    }
}

impl SharedStore for FakeHost {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        self.store.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        self.store.set(key, value, cas)
    }
}

impl Host for FakeHost {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let key = path.join("/");
        let value = self.properties.borrow().get(&key).cloned();
        self.property_reads.borrow_mut().push(key);
        value
    }
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
    fn define_counter(&self, name: &str) -> Option<u32> {
        let mut names = self.counter_names.borrow_mut();
        let id = names.iter().position(|n| n == name).unwrap_or_else(|| {
            names.push(name.to_owned());
            names.len() - 1
        });
        u32::try_from(id).ok()
    }
    fn add(&self, counter: u32, n: u64) {
        let names = self.counter_names.borrow();
        if let Some(name) = usize::try_from(counter).ok().and_then(|i| names.get(i)) {
            *self.counters.borrow_mut().entry(name.clone()).or_default() += n;
        }
    }
    fn define_gauge(&self, name: &str) -> Option<u32> {
        self.define_counter(name)
    }
    fn set_gauge(&self, gauge: u32, value: u64) {
        let names = self.counter_names.borrow();
        if let Some(name) = usize::try_from(gauge).ok().and_then(|i| names.get(i)) {
            self.counters.borrow_mut().insert(name.clone(), value);
        }
    }
    fn set_tick_period_ms(&self, period: u32) {
        self.tick_period_ms.set(period);
    }
    fn plugin_configuration(&self) -> Option<Vec<u8>> {
        Some(self.config.borrow().clone()).filter(|c| !c.is_empty())
    }
    fn request_header(&self, name: &str) -> Option<String> {
        self.request_headers
            .borrow()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
    fn set_request_header(&self, name: &str, value: Option<&str>) {
        // Envoy's replace: drop every value of the name, then add one.
        let mut headers = self.request_headers.borrow_mut();
        headers.retain(|(k, _)| k != name);
        if let Some(v) = value {
            headers.push((name.to_owned(), v.to_owned()));
        }
    }
    fn response_header(&self, name: &str) -> Option<String> {
        self.response_headers
            .borrow()
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
    fn set_response_header(&self, name: &str, value: &str) {
        let mut headers = self.response_headers.borrow_mut();
        headers.retain(|(k, _)| k != name);
        headers.push((name.to_owned(), value.to_owned()));
    }
    fn clear_route_cache(&self) {
        let headers = self.request_headers.borrow().clone();
        self.route_selections.borrow_mut().push(headers);
    }
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        if let Some(known) = &*self.known_clusters.borrow()
            && !known.iter().any(|k| k == cluster)
        {
            return Err("BadArgument".into());
        }
        let mut calls = self.http_calls.borrow_mut();
        let token = u32::try_from(calls.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        calls.push(HttpCall {
            token,
            cluster: cluster.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            timeout_ms,
        });
        Ok(token)
    }
    fn http_call_status(&self) -> Option<u16> {
        self.http_call_answer.get()
    }
}
