//! An empty proxy-wasm HTTP filter: a root context and an HTTP context that do nothing.
//!
//! It exists only as the baseline of the e2e benchmark (Envoy with an empty Rust filter
//! vs. Envoy with geolb vs. bare Envoy) and as a stand-in module for the Envoy-fact tests
//! that need *a* wasm filter but not geolb's logic. Built by `scripts/build-wasm.sh` into
//! `wasm-out/empty_filter.wasm`. Its only behaviour: `on_configure` returns false when the
//! plugin configuration is exactly `reject` (to test rejected config updates).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(EmptyRoot) });
}}

struct EmptyRoot;

impl Context for EmptyRoot {}

impl RootContext for EmptyRoot {
    /// Accepts any configuration except the exact bytes `reject`, which lets the harness
    /// exercise a rejected plugin-config update without geolb. Runs only at configure
    /// time, so the per-request path stays empty.
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.get_plugin_configuration().as_deref() != Some(b"reject".as_slice())
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EmptyHttp))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct EmptyHttp;

impl Context for EmptyHttp {}

impl HttpContext for EmptyHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}
