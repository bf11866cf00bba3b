//! The browser playground's engine: the generator's own validation, render and
//! simulation, compiled to `wasm32-unknown-unknown` and called from the page through
//! wasm-bindgen. Nothing here decides anything: each export maps text in to the
//! generator's answer out, as JSON the page draws.

mod analysis;
mod examples;
mod scenario;
mod topology;

use geolb::pipeline;
use geolb::plan::Plan;
use geolb::source::Source;
use geolb::validate;
use serde::Serialize;
use wasm_bindgen::prelude::wasm_bindgen;

pub use analysis::{Analysis, Diagnostic, analyse};
pub use examples::{EXAMPLES, Example};
pub use scenario::{Toggle, simulate, timeline};
pub use topology::{TopologyView, topology};

/// The name the page gives the plan in messages, as `geolb validate plan.yaml` would.
pub const PLAN_NAME: &str = "plan.yaml";

/// An answer or why there is none, as the page receives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
enum Answer<T> {
    Ok(T),
    Error(String),
}

/// The plan in `text` when it validates without errors.
fn valid_plan(text: &str) -> Result<Plan, String> {
    pipeline::valid_plan(validate::check(&Source::new(PLAN_NAME, text)))
        .map_err(|_| String::from("the plan has errors: see its diagnostics"))
}

fn json<T: Serialize>(answer: Result<T, String>) -> String {
    let answer = match answer {
        Ok(value) => Answer::Ok(value),
        Err(message) => Answer::Error(message),
    };
    serde_json::to_string(&answer)
        .unwrap_or_else(|e| format!("{{\"error\":\"the answer cannot be serialized: {e}\"}}"))
}

/// The example plans: `{"ok": [{name, title, text}]}`.
#[wasm_bindgen(js_name = examples)]
pub fn examples_json() -> String {
    json(Ok(EXAMPLES))
}

/// Validates and, when valid, renders `text` (a plan) for `extension_api`
/// (`wasmplugin` or `trafficextension`): `{"ok": Analysis}`.
#[wasm_bindgen(js_name = analyse)]
pub fn analyse_json(text: &str, extension_api: &str) -> String {
    json(analyse(text, extension_api))
}

/// The regions, clusters, networks, gateways and failover chains of a valid plan.
#[wasm_bindgen(js_name = topology)]
pub fn topology_json(text: &str) -> String {
    json(topology(text))
}

/// The settled split from proxies in `from` while `toggles` (a JSON list of
/// [`Toggle`]) hold: `{"ok": {service: {region: percent}}}`.
#[wasm_bindgen(js_name = simulate)]
pub fn simulate_json(text: &str, from: &str, toggles: &str) -> String {
    json(scenario::toggles(toggles).and_then(|t| simulate(text, from, &t)))
}

/// The toggles played for `length` (such as `60s`), each over its span: `{"ok":
/// {timeline, svg}}`.
#[wasm_bindgen(js_name = timeline)]
pub fn timeline_json(text: &str, from: &str, toggles: &str, length: &str) -> String {
    json(scenario::toggles(toggles).and_then(|t| timeline(text, from, &t, length)))
}
