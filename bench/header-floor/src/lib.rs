//! The benchmark's "header-write floor": the empty filter (`bench/empty-filter`) plus the
//! one thing geolb's design cannot do without, replacing the routing header
//! `x-geolb-region` on every request so that Envoy re-selects the route. No decision, no
//! health, no metrics. Built by `scripts/build-wasm.sh` into `wasm-out/header_floor.wasm`.
//!
//! The plugin configuration is the region to write, optionally followed by the word
//! `clear_route_cache` and a repeat count N (default 1, at most 1000): then the filter also
//! calls the foreign function `clear_route_cache` N times right after the write (geolb
//! calls it once). One module serves all benchmark variants, so they differ in exactly
//! those calls; N > 1 amplifies the cost of one call above the benchmark's noise.
//! `on_configure` rejects an empty configuration, an unknown word or a bad count.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};

/// The routing header the benchmark's routes match: the core's default.
use geolb_policy::DEFAULT_ROUTING_HEADER as ROUTING_HEADER;
/// The configuration word that turns on the `clear_route_cache` calls (the foreign
/// function's name, too).
const CLEAR_ROUTE_CACHE: &str = "clear_route_cache";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(FloorRoot::default()) });
}}

/// What every request does, parsed once in `on_configure`.
#[derive(Debug, PartialEq, Eq)]
struct Config {
    region: String,
    /// How many times to call `clear_route_cache` after the write.
    clear_route_cache: u32,
}

/// The largest repeat count `on_configure` accepts.
const MAX_CLEARS: u32 = 1000;

impl Config {
    /// `REGION [clear_route_cache [N]]`, whitespace-separated.
    fn parse(text: &str) -> Option<Config> {
        let mut words = text.split_whitespace();
        let region = words.next()?.to_owned();
        let clear_route_cache = match (words.next(), words.next()) {
            (None, _) => 0,
            (Some(CLEAR_ROUTE_CACHE), None) => 1,
            (Some(CLEAR_ROUTE_CACHE), Some(n)) => {
                n.parse().ok().filter(|n| (1..=MAX_CLEARS).contains(n))?
            }
            (Some(_), _) => return None,
        };
        if words.next().is_some() {
            return None;
        }
        Some(Config {
            region,
            clear_route_cache,
        })
    }
}

#[derive(Default)]
struct FloorRoot {
    config: Option<Rc<Config>>,
}

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        // hostcalls, not the SDK's unwrapping `get_plugin_configuration`.
        let text = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        self.config = std::str::from_utf8(&text)
            .ok()
            .and_then(Config::parse)
            .map(Rc::new);
        self.config.is_some()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FloorHttp {
            config: self.config.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FloorHttp {
    config: Option<Rc<Config>>,
}

impl Context for FloorHttp {}

impl HttpContext for FloorHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(config) = &self.config {
            let _ = hostcalls::set_map_value(
                MapType::HttpRequestHeaders,
                ROUTING_HEADER,
                Some(&config.region),
            );
            for _ in 0..config.clear_route_cache {
                let _ = hostcalls::call_foreign_function(CLEAR_ROUTE_CACHE, None);
            }
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_region_and_the_optional_clear_word_and_count() {
        let config = |clears| {
            Some(Config {
                region: "cn-hangzhou".into(),
                clear_route_cache: clears,
            })
        };
        assert_eq!(Config::parse("cn-hangzhou"), config(0));
        assert_eq!(
            Config::parse(" cn-hangzhou  clear_route_cache\n"),
            config(1)
        );
        assert_eq!(
            Config::parse("cn-hangzhou clear_route_cache 100"),
            config(100)
        );
        for bad in [
            "",
            "  ",
            "cn-hangzhou clear",
            "cn-hangzhou clear_route_cache x",
            "cn-hangzhou clear_route_cache 0",
            "cn-hangzhou clear_route_cache 1001",
            "cn-hangzhou clear_route_cache 2 x",
        ] {
            assert_eq!(Config::parse(bad), None, "{bad:?}");
        }
    }
}
