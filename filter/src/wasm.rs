//! proxy-wasm bindings: the only code that talks to Envoy. Every host call goes
//! through `proxy_wasm::hostcalls` with its error handled (the SDK's `Context`
//! helpers unwrap), and a panic hook logs before the VM dies.

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use geolb_policy::store::{SharedStore, StoreError};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};

use crate::host::{Host, Level};
use crate::request::Request;
use crate::root::{Root, VmMemory};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("geolb: panic: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(GeolbRoot {
            root: Root::in_vm(VM_MEMORY.with(Rc::clone)),
        })
    });
}}

thread_local! {
    /// Shared by every root context of this VM (a wasm VM runs on one thread).
    static VM_MEMORY: Rc<VmMemory> = Rc::default();
}

/// [`Host`] over proxy-wasm host calls; the current context is implicit in the ABI.
struct ProxyWasmHost;

impl SharedStore for ProxyWasmHost {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(bytes), cas)) => Ok(Some((bytes, cas.unwrap_or(0)))),
            Ok((None, _)) => Ok(None),
            Err(status) => Err(StoreError::Host(format!("{status:?}"))),
        }
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let cas = (cas != 0).then_some(cas);
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(status) => Err(StoreError::Host(format!("{status:?}"))),
        }
    }
}

impl Host for ProxyWasmHost {
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let _ = hostcalls::log(level, message);
    }
    fn define_counter(&self, name: &str) -> Option<u32> {
        hostcalls::define_metric(MetricType::Counter, name).ok()
    }
    fn add(&self, counter: u32, n: u64) {
        let _ = hostcalls::increment_metric(counter, i64::try_from(n).unwrap_or(i64::MAX));
    }
    fn define_gauge(&self, name: &str) -> Option<u32> {
        hostcalls::define_metric(MetricType::Gauge, name).ok()
    }
    fn set_gauge(&self, gauge: u32, value: u64) {
        let _ = hostcalls::record_metric(gauge, value);
    }
    fn set_tick_period_ms(&self, period: u32) {
        let _ = hostcalls::set_tick_period(std::time::Duration::from_millis(u64::from(period)));
    }
    fn plugin_configuration(&self) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
    }
    fn request_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
    }
    fn set_request_header(&self, name: &str, value: Option<&str>) {
        // Replace (or remove), never add: a client-sent value must not survive.
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value);
    }
    fn response_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value(MapType::HttpResponseHeaders, name)
            .ok()
            .flatten()
    }
    fn set_response_header(&self, name: &str, value: &str) {
        let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value));
    }
    fn clear_route_cache(&self) {
        let _ = hostcalls::call_foreign_function("clear_route_cache", None);
    }
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Result<u32, String> {
        hostcalls::dispatch_http_call(
            cluster,
            headers.to_vec(),
            None,
            vec![],
            std::time::Duration::from_millis(timeout_ms),
        )
        .map_err(|status| format!("{status:?}"))
    }
    fn http_call_status(&self) -> Option<u16> {
        hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|status| status.parse().ok())
    }
}

struct GeolbRoot {
    root: Root,
}

impl Context for GeolbRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        self.root.probe_answered(&ProxyWasmHost, token);
    }
}

impl RootContext for GeolbRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.root.configure(&ProxyWasmHost)
    }
    fn on_tick(&mut self) {
        self.root.tick(&ProxyWasmHost);
    }
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(GeolbHttp {
            request: self.root.request(),
        }))
    }
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct GeolbHttp {
    request: Request,
}

impl Context for GeolbHttp {}

impl HttpContext for GeolbHttp {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.request.on_request_headers(&ProxyWasmHost);
        Action::Continue
    }
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.request.on_response_headers(&ProxyWasmHost);
        Action::Continue
    }
    fn on_log(&mut self) {
        self.request.on_log(&ProxyWasmHost);
    }
}
