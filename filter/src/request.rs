//! One request: pick the region, set the routing header, and learn from the answer.
//!
//! The request path reads `:authority`, looks the service up, decides in the pure core
//! over this VM's copy of the shared health, and replaces one header. Nothing is
//! parsed; the only allocation is the host's copy of `:authority`.
//!
//! Where `:authority` names no service (an ingress gateway: a browser's Host is the
//! gateway's address or external name) and the policy asks for it (`serviceFromRoute`,
//! set in gateways' policies only), the cluster of the route Envoy selected for the
//! request as it arrived names it: `outbound|PORT|SUBSET|HOST`, split in place and
//! looked up by HOST. Only those requests pay this one more property read (and its
//! copy); the header set afterwards re-routes the request as it does at a sidecar. A
//! sidecar's requests to services outside the policy read no property at all.

use std::rc::Rc;

use geolb_policy::explain::{EXPLAIN_HEADER, Explanation, PassThrough};
use geolb_policy::flags::ResponseFlags;
use geolb_policy::health::Transition;
use geolb_policy::outcome::{ResponseFacts, Verdict, classify};
use geolb_policy::routing::{Decision, RouteReason};
use geolb_policy::store::Observation;
use geolb_policy::{DEFAULT_ROUTING_HEADER, ServiceId, Slot};

use crate::host::{Host, Level, int_property, route_cluster, string_property};
use crate::metrics::RegionCounter;
use crate::runtime::Active;

/// Per-request state.
#[derive(Debug)]
pub struct Request {
    active: Option<Rc<Active>>,
    /// Without an active policy: the routing header to strip (`None`: the default).
    strip_header: Option<Rc<str>>,
    /// (service, chosen slot) once routed.
    chosen: Option<(ServiceId, Slot)>,
    /// The chosen region's record was pristine when the request started: a success
    /// then changes nothing and needs no shared-data round trip.
    chosen_was_pristine: bool,
    /// The chosen region was ramping back (or draining): its outcome is the ejection
    /// state machine's to judge, not graded spill's.
    chosen_ramping: bool,
    /// The outcome was recorded (response headers seen) — `on_log` must not count it again.
    recorded: bool,
    /// The `x-geolb-explain` value for the response, when the policy explains.
    explanation: Option<String>,
}

impl Request {
    pub(crate) fn new(active: Option<Rc<Active>>, strip_header: Option<Rc<str>>) -> Self {
        Self {
            active,
            strip_header,
            chosen: None,
            chosen_was_pristine: false,
            chosen_ramping: false,
            recorded: false,
            explanation: None,
        }
    }

    /// The region chosen for this request, if any (for tests and logs).
    pub fn chosen_region(&self) -> Option<&str> {
        let active = self.active.as_ref()?;
        let (service, slot) = self.chosen?;
        let region = active.policy().service(service)?.region_of(slot)?;
        Some(active.policy().region_name(region))
    }

    /// `on_http_request_headers`: replaces the routing header with the decision, or
    /// removes it when there is none, so no client value ever survives.
    pub fn on_request_headers<H: Host>(&mut self, host: &H) {
        #[cfg(feature = "test-panic")]
        #[allow(clippy::panic)]
        if host.request_header("x-geolb-test-panic").is_some() {
            panic!("x-geolb-test-panic: deliberate panic of a test build");
        }
        let Some(active) = self.active.as_deref() else {
            let header = self
                .strip_header
                .as_deref()
                .unwrap_or(DEFAULT_ROUTING_HEADER);
            route_as(host, header, None);
            return;
        };
        let header = active.policy().routing_header();
        let found = host
            .request_header(":authority")
            .and_then(|authority| active.policy().service_for_authority(&authority))
            .or_else(|| {
                if !active.policy().service_from_route() {
                    return None;
                }
                route_cluster(host)
                    .and_then(|cluster| active.policy().service_for_cluster(&cluster))
            })
            .and_then(|id| Some((id, active.service(id)?)));
        let Some((id, (runtime, service))) = found else {
            route_as(host, header, None);
            if active.policy().explains() {
                let why = Explanation::pass_through(PassThrough::NotInPolicy);
                self.explanation = Some(why.to_string());
            }
            return;
        };
        let (decision, chosen_was_pristine) = active.decide(host, runtime, service);
        if active.policy().explains() {
            let why = Explanation::of(active.policy(), service, decision);
            self.explanation = Some(why.to_string());
        }
        match decision {
            Decision::Route {
                slot,
                primary,
                reason,
            } => {
                self.chosen_ramping = reason == RouteReason::Ramping;
                let value = service
                    .region_of(slot)
                    .map_or("", |r| active.policy().routing_value(r));
                route_as(host, header, Some(value));
                runtime.counters().region(RegionCounter::Routed, slot);
                if slot != primary {
                    runtime.counters().region(RegionCounter::Failovers, primary);
                }
                self.chosen = Some((id, slot));
                self.chosen_was_pristine = chosen_was_pristine;
            }
            Decision::NoHealthyRegion { .. } => {
                route_as(host, header, None);
                runtime.counters().no_healthy_region();
            }
            Decision::Passthrough => {
                route_as(host, header, None);
                runtime.counters().no_source_region();
            }
        }
    }

    /// `on_http_response_headers`: tells the calling app why (when the policy
    /// explains) and records the outcome as soon as it is known.
    pub fn on_response_headers<H: Host>(&mut self, host: &H) {
        if let Some(explanation) = self.explanation.take() {
            host.set_response_header(EXPLAIN_HEADER, &explanation);
        }
        if self.chosen.is_none() || self.recorded {
            return;
        }
        let status = host
            .response_header(":status")
            .and_then(|s| s.parse::<u16>().ok());
        self.observe(host, status);
    }

    /// `on_log`: records requests that never got response headers (resets, local
    /// replies that bypassed the encoder path).
    pub fn on_log<H: Host>(&mut self, host: &H) {
        if self.chosen.is_none() || self.recorded {
            return;
        }
        let status = int_property(host, &["response", "code"])
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c != 0);
        self.observe(host, status);
    }

    fn observe<H: Host>(&mut self, host: &H, status: Option<u16>) {
        self.recorded = true;
        let (Some(active), Some((id, slot))) = (self.active.as_ref(), self.chosen) else {
            return;
        };
        let Some((runtime, service)) = active.service(id) else {
            return;
        };
        // Counts made here, after the request's tick, must still be flushed.
        runtime.mark_active();
        let chosen_region = service
            .region_of(slot)
            .map_or("", |r| active.policy().region_name(r));
        // Failure flags (connect failure, reset, no healthy upstream) come with a 5xx or
        // no response at all: an upstream's 2xx-4xx needs no flag lookup.
        let flags = if status.is_none_or(|s| s >= 500) {
            int_property(host, &["response", "flags"]).map_or(0, |f| u64::try_from(f).unwrap_or(0))
        } else {
            0
        };
        let mut facts = ResponseFacts {
            status,
            flags: ResponseFlags(flags),
            served_region: None,
        };
        let mut verdict = classify(service.health(), chosen_region, &facts);
        // Which region really answered tells a success apart from one that Envoy's
        // priority failover served elsewhere. Reading it costs as much as the rest of
        // the request path, so successes are checked by sample (see `locality_check_due`).
        let served = if verdict == Verdict::Success && runtime.locality_check_due(slot) {
            string_property(host, &["upstream", "locality", "region"])
        } else {
            None
        };
        if served.is_some() {
            facts.served_region = served.as_deref();
            verdict = classify(service.health(), chosen_region, &facts);
        }
        runtime.learn(
            service,
            slot,
            verdict,
            served.is_some(),
            self.chosen_ramping,
            active.clock(),
        );
        if let Verdict::Failure(_) = verdict {
            runtime.counters().region(RegionCounter::Failures, slot);
        }
        let Some(observation) = Observation::to_record(verdict, self.chosen_was_pristine) else {
            return;
        };
        let (now, recorded) = runtime.record(host, service, slot, observation);
        match recorded {
            Ok(Transition::Ejected { until_ms }) => host.log(
                Level::Warn,
                &format!(
                    "geolb: region {chosen_region} of service {} ejected for {} ms (status {status:?}, flags {flags:#x}, served by {})",
                    service.name(),
                    until_ms.saturating_sub(now),
                    served.as_deref().unwrap_or("-"),
                ),
            ),
            // A ramp that starts over is not news worth a log line per probe.
            Ok(Transition::None | Transition::RampRestarted | Transition::ProbesPassed) => {}
            Err(err) => host.log(
                Level::Warn,
                &format!("geolb: health of {} not recorded: {err}", service.name()),
            ),
        }
    }
}

/// Leaves the routing header as the decision says, and makes Envoy select the route
/// again whenever that changed it: a filter before this one may have selected the
/// route for the headers as they arrived. `Some(value)` (the region's precomputed
/// `<region>.<token>`) replaces any client value;
/// `None` removes a client-sent one, and a request without it costs one header read
/// and no write.
fn route_as<H: Host>(host: &H, header: &str, value: Option<&str>) {
    if value.is_none() && host.request_header(header).is_none() {
        return;
    }
    host.set_request_header(header, value);
    host.clear_route_cache();
}
