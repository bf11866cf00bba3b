//! What the filter needs from Envoy, behind a trait so the shell logic is tested
//! natively with a fake host. The real implementation (`wasm.rs`) calls
//! `proxy_wasm::hostcalls` and turns every error into `None`/a no-op.

use geolb_policy::store::SharedStore;

/// Log levels, as proxy-wasm has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Progress worth knowing in normal operation.
    Info,
    /// Something is off but traffic flows.
    Warn,
    /// Something was refused.
    Error,
}

/// Envoy, as seen from the filter.
pub trait Host: SharedStore {
    /// A property (attribute) by path segments, e.g. `["xds", "node", "locality", "region"]`.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// The host clock, ms since the epoch.
    fn now_ms(&self) -> u64;
    /// Writes one log line.
    fn log(&self, level: Level, message: &str);
    /// Defines (or finds) a counter; `None` when the host refuses.
    fn define_counter(&self, name: &str) -> Option<u32>;
    /// Adds `n` to a counter.
    fn add(&self, counter: u32, n: u64);
    /// Defines (or finds) a gauge; `None` when the host refuses.
    fn define_gauge(&self, name: &str) -> Option<u32>;
    /// Sets a gauge.
    fn set_gauge(&self, gauge: u32, value: u64);
    /// Asks for `on_tick` every `period` ms.
    fn set_tick_period_ms(&self, period: u32);
    /// The plugin configuration bytes (`on_configure`).
    fn plugin_configuration(&self) -> Option<Vec<u8>>;
    /// A request header of the current stream.
    fn request_header(&self, name: &str) -> Option<String>;
    /// Replaces (`Some`) or removes (`None`) a request header of the current stream.
    fn set_request_header(&self, name: &str, value: Option<&str>);
    /// A response header of the current stream.
    fn response_header(&self, name: &str) -> Option<String>;
    /// Replaces a response header of the current stream (in the response-headers
    /// callback).
    fn set_response_header(&self, name: &str, value: &str);
    /// Makes Envoy select the route again for the headers as they are now (the
    /// `clear_route_cache` foreign function). Envoy does it by itself after a header
    /// change only for ABI 0.2.1 modules, and a filter before this one may already
    /// have selected the route; a host without the function ignores the call.
    fn clear_route_cache(&self);
    /// Sends an HTTP request to `cluster` outside any stream (`dispatch_http_call`);
    /// the answer comes to the root context's `on_http_call_response` with the
    /// returned token. `Err` names why the host refused (an unknown cluster, ...).
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, String>;
    /// The `:status` of the HTTP call whose answer is being delivered; `None` when
    /// the call got no answer (timeout, reset, no healthy endpoint).
    fn http_call_status(&self) -> Option<u16>;
}

/// Reads an integer property (Envoy encodes them as 8 little-endian bytes).
pub fn int_property<H: Host + ?Sized>(host: &H, path: &[&str]) -> Option<i64> {
    let bytes = host.property(path)?;
    let array: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(i64::from_le_bytes(array))
}

/// Reads a string property.
pub fn string_property<H: Host + ?Sized>(host: &H, path: &[&str]) -> Option<String> {
    host.property(path)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|s| !s.is_empty())
}

/// The upstream cluster of the route Envoy selected for the current request. Read in
/// the request-headers callback it names the route chosen for the headers as they
/// arrived (and keeps naming it after the filter changes them); `None` without a route.
/// Pinned in `tests/tests/envoy_facts.rs` for Envoy 1.40.
pub fn route_cluster<H: Host + ?Sized>(host: &H) -> Option<String> {
    string_property(host, &ROUTE_CLUSTER)
}

/// Property path of [`route_cluster`] (one segment each: dotted paths read nothing).
pub const ROUTE_CLUSTER: [&str; 2] = ["xds", "cluster_name"];
