//! TEST ONLY: a proxy-wasm HTTP filter that reports what Envoy's routing properties say
//! while a request is handled, so `tests/tests/envoy_facts.rs` can pin the facts geolb's
//! gateway lookup relies on without geolb's own logic in the way. Never deployed.
//! Built by `scripts/build-wasm.sh` into `wasm-out/xds_probe.wasm`.
//!
//! In `on_http_request_headers` it reads `xds.cluster_name` and `xds.route_name` (the
//! route Envoy selected for the headers as they arrived); if the request carries
//! `x-probe-set-region: R`, it then replaces the routing header `x-geolb-region` with `R`
//! (as geolb does) and reads `xds.cluster_name` once more. If the request also carries
//! `x-probe-clear-route-cache` (any value), it then calls the foreign function
//! `clear_route_cache` (what a filter must do when Envoy does not clear the route cache
//! on a header change by itself) and reads `xds.cluster_name` again. In
//! `on_http_response_headers` it reads `xds.cluster_name` again (the cluster that served)
//! and returns every reading as a response header:
//!
//! | response header              | reading                                      |
//! |------------------------------|----------------------------------------------|
//! | `x-probe-request-cluster`    | `xds.cluster_name` in the request callback   |
//! | `x-probe-request-route`      | `xds.route_name` in the request callback     |
//! | `x-probe-after-set-cluster`  | `xds.cluster_name` right after the header change (absent when none was asked for) |
//! | `x-probe-clear-route-cache`  | what `call_foreign_function("clear_route_cache", None)` returned: `ok` (no bytes), `ok:<n> bytes`, `error:<status>` (absent when not asked for) |
//! | `x-probe-after-clear-cluster`| `xds.cluster_name` right after that call (absent when not asked for) |
//! | `x-probe-response-cluster`   | `xds.cluster_name` in the response callback  |
//! | `x-probe-node-cluster-id`    | `xds.node.metadata.CLUSTER_ID` (only when the request carries `x-probe-node`) |
//! | `x-probe-node-network`       | `xds.node.metadata.NETWORK` (idem)           |
//! | `x-probe-node-region`        | `xds.node.locality.region` (idem)            |
//!
//! A property Envoy does not have reads as [`ABSENT`], a failed read as `error:<status>`;
//! the node readings tell an empty value ([`EMPTY`]) from an absent one.
//!
//! `scripts/build-wasm.sh` also publishes copies of the module that differ only in the
//! Proxy-Wasm ABI version they declare (the name of the exported `proxy_abi_version_*`
//! marker function, patched in place): `xds_probe_abi_0_2_0.wasm` and
//! `xds_probe_abi_0_2_2.wasm` (a version Envoy 1.40 does not know).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

/// The request header that asks the probe to set the routing header.
const SET_REGION: &str = "x-probe-set-region";
/// The request header that asks the probe to call `clear_route_cache` after setting it.
const CLEAR_ROUTE_CACHE: &str = "x-probe-clear-route-cache";
/// The request header that asks the probe to report what the node tells about itself.
const NODE: &str = "x-probe-node";
/// The routing header the harness's route table matches: the core's default.
use geolb_policy::DEFAULT_ROUTING_HEADER as ROUTING_HEADER;
/// What a reading of a property Envoy does not provide reports.
pub const ABSENT: &str = "-";
/// What [`read_exactly`] reports for a property that is there but empty.
pub const EMPTY: &str = "(empty)";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ProbeRoot) });
}}

/// Reads one property as text, never panicking (the SDK's `Context::get_property`
/// unwraps).
fn read(path: &[&str]) -> String {
    match hostcalls::get_property(path.to_vec()) {
        Ok(Some(bytes)) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(_) => ABSENT.to_owned(),
        Err(status) => format!("error:{status:?}"),
    }
}

/// Like [`read`], but tells an empty value ([`EMPTY`]) from an absent one.
fn read_exactly(path: &[&str]) -> String {
    match hostcalls::get_property(path.to_vec()) {
        Ok(Some(bytes)) if bytes.is_empty() => EMPTY.to_owned(),
        _ => read(path),
    }
}

struct ProbeRoot;

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe::default()))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The readings of one request, in the order they were taken.
#[derive(Default)]
struct Probe {
    readings: Vec<(&'static str, String)>,
}

impl Context for Probe {}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.readings
            .push(("x-probe-request-cluster", read(&["xds", "cluster_name"])));
        self.readings
            .push(("x-probe-request-route", read(&["xds", "route_name"])));
        if let Ok(Some(_)) = hostcalls::get_map_value(MapType::HttpRequestHeaders, NODE) {
            for (name, path) in [
                (
                    "x-probe-node-cluster-id",
                    ["xds", "node", "metadata", "CLUSTER_ID"],
                ),
                (
                    "x-probe-node-network",
                    ["xds", "node", "metadata", "NETWORK"],
                ),
                ("x-probe-node-region", ["xds", "node", "locality", "region"]),
            ] {
                self.readings.push((name, read_exactly(&path)));
            }
        }
        if let Ok(Some(region)) = hostcalls::get_map_value(MapType::HttpRequestHeaders, SET_REGION)
        {
            let _ = hostcalls::set_map_value(
                MapType::HttpRequestHeaders,
                ROUTING_HEADER,
                Some(&region),
            );
            self.readings
                .push(("x-probe-after-set-cluster", read(&["xds", "cluster_name"])));
            if let Ok(Some(_)) =
                hostcalls::get_map_value(MapType::HttpRequestHeaders, CLEAR_ROUTE_CACHE)
            {
                let outcome = match hostcalls::call_foreign_function("clear_route_cache", None) {
                    Ok(None) => "ok".to_owned(),
                    Ok(Some(bytes)) => format!("ok:{} bytes", bytes.len()),
                    Err(status) => format!("error:{status:?}"),
                };
                self.readings.push(("x-probe-clear-route-cache", outcome));
                self.readings.push((
                    "x-probe-after-clear-cluster",
                    read(&["xds", "cluster_name"]),
                ));
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.readings
            .push(("x-probe-response-cluster", read(&["xds", "cluster_name"])));
        for (name, value) in &self.readings {
            let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value);
        }
        Action::Continue
    }
}
