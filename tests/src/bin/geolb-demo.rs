//! The newcomer's demo (`scripts/demo.sh`): seed scenario A's plan rendered with geolb,
//! translated by the istiod stand-in into the Envoys of Bookinfo's request chain in
//! ack-hangzhou (ingress gateway → productpage → productpage's sidecar → reviews), on
//! loopback with the real Envoy 1.40 and the geolb filter, under a steady light load.
//!
//! It shows, live, which region answers reviews (per second and per phase), the errors a
//! user would see, and the sidecar filter's counters (`wasmcustom.geolb.*`), through five
//! phases: the 90/10 split while healthy → cn-hangzhou's reviews stopped → failover (all
//! to cn-shanghai) → reviews restarted, still ejected for the plan's `baseEjectionTime`
//! (1m) → the recovery ramp (10s) → the split back.
//!
//! `--ejection-time` and `--recovery-ramp` CHANGE THE PLAN (reviews'
//! `outlierDetection.baseEjectionTime`, `health.recoveryRamp`) before rendering, so Envoy
//! and the filter both use the shorter times; the demo says so when they are set.
//! Ctrl-C stops it and cleans up (Envoys killed, fake apps stopped).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a demo driver: failing loudly is fine

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use geolb_e2e::apps::Page;
use geolb_e2e::bookinfo::{Bookinfo, Chain, productpage_request};
use geolb_e2e::from_plan::{RenderedPlan, example_plan};
use geolb_e2e::{Connection, Envoy, repo_root};

const SCENARIO: &str = "a-failover-distribution";
const CLUSTER: &str = "ack-hangzhou";
const SERVICE: &str = "reviews";
/// The filter's name for the service (`<name>.<namespace>`), in its counters.
const POLICY_SERVICE: &str = "reviews.default";
/// Envoy's default `base_ejection_time` when the plan sets none.
const ENVOY_DEFAULT_EJECTION: Duration = Duration::from_secs(30);
/// The filter's default `recoveryRamp` (policy/src/health.rs).
const FILTER_DEFAULT_RAMP: Duration = Duration::from_secs(10);
/// Where the ramp starts: the filter gives a returning region 5% of its share at once.
const RAMP_START_PERMILLE: u64 = 50;

#[derive(Parser, Debug)]
#[command(about = "geolb live demo: seed scenario A from plan to traffic in a local Envoy")]
struct Args {
    /// Length of the healthy, failover and recovered phases.
    #[arg(long, default_value = "10", value_name = "SECONDS")]
    phase_seconds: u64,
    /// Requests per second (one client connection, 127.0.0.1).
    #[arg(long, default_value = "20", value_parser = clap::value_parser!(u64).range(1..=200))]
    rate: u64,
    /// CHANGES THE PLAN: reviews' outlierDetection.baseEjectionTime (plan: 1m), e.g. 5s.
    #[arg(long, value_name = "DURATION")]
    ejection_time: Option<String>,
    /// CHANGES THE PLAN: reviews' health.recoveryRamp (plan: the filter's default 10s).
    #[arg(long, value_name = "DURATION")]
    recovery_ramp: Option<String>,
    /// One line per second instead of the in-place table (default when not a terminal).
    #[arg(long)]
    plain: bool,
    /// Where the rendered manifests go.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Answers counted over some time: per reviews region, and errors a user saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tally {
    by_region: BTreeMap<String, u64>,
    errors: u64,
}

impl Tally {
    fn add_page(&mut self, page: &Page) {
        match (&page.reviews_region, page.is_client_visible_error()) {
            (Some(region), false) => *self.by_region.entry(region.clone()).or_default() += 1,
            _ => self.errors += 1,
        }
    }

    fn add(&mut self, other: &Tally) {
        for (r, n) in &other.by_region {
            *self.by_region.entry(r.clone()).or_default() += n;
        }
        self.errors += other.errors;
    }

    fn total(&self) -> u64 {
        self.by_region.values().sum::<u64>() + self.errors
    }

    fn count(&self, region: &str) -> u64 {
        self.by_region.get(region).copied().unwrap_or(0)
    }

    /// `region`'s share of all requests, in percent (0 when none).
    fn percent(&self, region: &str) -> f64 {
        match self.total() {
            0 => 0.0,
            total => 100.0 * self.count(region) as f64 / total as f64,
        }
    }

    /// `cn-hangzhou=9 (90.0%) cn-shanghai=1 (10.0%) errors=0` over `regions`.
    fn line(&self, regions: &[String]) -> String {
        let mut parts: Vec<String> = regions
            .iter()
            .map(|r| format!("{r}={} ({:.1}%)", self.count(r), self.percent(r)))
            .collect();
        parts.push(format!("errors={}", self.errors));
        parts.join(" ")
    }
}

/// The filter's counters of reviews, per metric and region, from Envoy's stats.
fn filter_counters(stats: &BTreeMap<String, u64>) -> BTreeMap<(String, String), u64> {
    let prefix = "wasmcustom.geolb.";
    stats
        .iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(prefix)?;
            let (metric, tags) = rest.split_once(';')?;
            let service = tags.split(';').find_map(|t| t.strip_prefix("service="))?;
            let region = tags.split(';').find_map(|t| t.strip_prefix("region="))?;
            (service == POLICY_SERVICE).then(|| ((metric.to_string(), region.to_string()), *value))
        })
        .collect()
}

/// The geolb counters and gauges of an Envoy (`/stats` filtered by Envoy).
fn geolb_stats(envoy: &Envoy) -> BTreeMap<String, u64> {
    envoy
        .admin_get("/stats?filter=wasmcustom.geolb.")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The regions the demo is about and the plan's split from the local one.
struct Story {
    local: String,
    remote: String,
    /// The plan's `distribute[local][local]` (100 without a distribution).
    local_weight: u64,
}

impl Story {
    fn title(&self, phase: Phase) -> String {
        let (local, remote) = (&self.local, &self.remote);
        match phase {
            Phase::Healthy => format!("healthy: the plan's split from {local}"),
            Phase::Failover => format!("{local}'s reviews stopped: failover to {remote}"),
            Phase::Ejected => format!("{local}'s reviews restarted, still ejected"),
            Phase::Ramp => format!("{local} ramps back"),
            Phase::Recovered => "recovered: the split again".to_string(),
        }
    }

    fn expectation(&self, phase: Phase) -> String {
        let (local, remote, w) = (&self.local, &self.remote, self.local_weight);
        let split = format!("{local} {w}%, {remote} {}%, 0 errors", 100 - w);
        match phase {
            Phase::Healthy | Phase::Recovered => split,
            Phase::Failover | Phase::Ejected => format!("{remote} 100%, 0 errors"),
            Phase::Ramp => format!("{local}'s share grows from 5% of {w}% to {w}%, 0 errors"),
        }
    }
}

/// The demo's phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Healthy,
    Failover,
    Ejected,
    Ramp,
    Recovered,
}

impl Phase {
    fn key(self) -> &'static str {
        match self {
            Phase::Healthy => "healthy",
            Phase::Failover => "failover",
            Phase::Ejected => "ejected",
            Phase::Ramp => "ramp",
            Phase::Recovered => "recovered",
        }
    }
}

/// The plan file to render: the example, or a copy with the overridden times.
fn plan_to_render(args: &Args, out: &Path) -> (PathBuf, Vec<String>) {
    let example = example_plan(SCENARIO);
    if args.ejection_time.is_none() && args.recovery_ramp.is_none() {
        return (example, Vec::new());
    }
    let text = std::fs::read_to_string(&example).unwrap();
    let mut plan: serde_json::Value =
        serde_json::to_value(geolb::plan::Plan::from_text(&text).unwrap()).unwrap();
    let mut changes = Vec::new();
    let services = plan["services"].as_array_mut().unwrap();
    let reviews = services
        .iter_mut()
        .find(|s| s["name"] == SERVICE)
        .expect("the plan has reviews");
    if let Some(t) = &args.ejection_time {
        reviews["outlierDetection"]["baseEjectionTime"] = t.clone().into();
        changes.push(format!(
            "services[reviews].outlierDetection.baseEjectionTime = {t}"
        ));
    }
    if let Some(t) = &args.recovery_ramp {
        if reviews.get("health").is_none() {
            reviews["health"] = serde_json::json!({});
        }
        reviews["health"]["recoveryRamp"] = t.clone().into();
        changes.push(format!("services[reviews].health.recoveryRamp = {t}"));
    }
    let path = out.join("plan.yaml");
    let header = format!(
        "# {} with changes by geolb-demo: {}\n",
        example.display(),
        changes.join(", ")
    );
    std::fs::write(
        &path,
        header + &serde_json::to_string_pretty(&plan).unwrap(),
    )
    .unwrap();
    (path, changes)
}

/// What the load thread has counted since the display last took it; locked by the load
/// thread while a request is under way.
type Shared = Arc<Mutex<Tally>>;

/// Sends `GET /productpage` to the ingress at `rate` per second on one connection.
fn spawn_load(entry: std::net::SocketAddr, rate: u64, tally: Shared, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let every = Duration::from_micros(1_000_000 / rate);
        let mut next = Instant::now();
        let mut conn: Option<Connection> = None;
        while !stop.load(Ordering::SeqCst) {
            if conn.as_ref().is_none_or(Connection::is_closed) {
                conn = Connection::open(entry).ok();
            }
            // The tally stays locked for the whole request: the display can then switch
            // phases (stop or restart reviews) between two requests, never during one.
            let mut t = tally.lock().unwrap();
            let page = conn
                .as_mut()
                .map(|c| c.send(&productpage_request()))
                .and_then(Result::ok)
                .map(|r| Page::of(&r));
            match &page {
                Some(p) => t.add_page(p),
                None => t.errors += 1,
            }
            drop(t);
            next += every;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
    });
}

/// Draws the live view: a table redrawn in place, or one line per second.
struct Screen {
    plain: bool,
    drawn_lines: usize,
}

impl Screen {
    fn show(&mut self, lines: &[String], plain_line: &str) {
        let mut out = std::io::stdout().lock();
        if self.plain {
            let _ = writeln!(out, "{plain_line}");
        } else {
            if self.drawn_lines > 0 {
                // Back to the first line of the previous table, clear to the end.
                let _ = write!(out, "\x1b[{}F\x1b[J", self.drawn_lines);
            }
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            self.drawn_lines = lines.len();
        }
        let _ = out.flush();
    }

    /// Prints a line that stays (above the table).
    fn note(&mut self, line: &str) {
        let mut out = std::io::stdout().lock();
        if !self.plain && self.drawn_lines > 0 {
            let _ = write!(out, "\x1b[{}F\x1b[J", self.drawn_lines);
            self.drawn_lines = 0;
        }
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// What the rendered plan says the demo will show.
struct Setup {
    reviews: geolb::plan::Service,
    /// The plan's ejection time of reviews (Envoy's and the filter's).
    ejection: Duration,
    /// The filter's recovery ramp of reviews.
    ramp: Duration,
    story: Story,
    regions: Vec<String>,
}

/// Renders the plan (with the overridden times) and reads what the demo shows from it.
fn prepare(args: &Args, screen: &mut Screen) -> (Setup, RenderedPlan) {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| repo_root().join("out/demo"));
    let manifests = out.join(SCENARIO);
    let _ = std::fs::remove_dir_all(&manifests);
    std::fs::create_dir_all(&manifests).unwrap();
    let (plan_path, changes) = plan_to_render(args, &out);
    let rendered = RenderedPlan::render_into(&plan_path, &manifests);
    screen.note(&format!("plan:      {}", plan_path.display()));
    for c in &changes {
        screen.note(&format!("           CHANGED for this demo: {c}"));
    }
    screen.note(&format!(
        "manifests: {} (what `geolb render` writes)",
        manifests.display()
    ));
    let reviews = rendered
        .plan
        .services
        .iter()
        .find(|s| s.name == SERVICE)
        .expect("reviews in the plan")
        .clone();
    // What the rendered policy gives the filter (and the DestinationRule gives Envoy).
    let ejection = reviews
        .outlier_detection
        .as_ref()
        .and_then(|o| o.base_ejection_time.as_ref())
        .map_or(ENVOY_DEFAULT_EJECTION, |d| {
            Duration::from_millis(d.millis())
        });
    let ramp = reviews
        .health
        .as_ref()
        .and_then(|h| h.recovery_ramp.as_ref())
        .map_or(FILTER_DEFAULT_RAMP, |d| Duration::from_millis(d.millis()));
    let local = rendered.region_of(CLUSTER).to_string();
    let regions: Vec<String> = rendered
        .plan
        .regions
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let remote = regions
        .iter()
        .find(|r| **r != local)
        .cloned()
        .unwrap_or_default();
    let local_weight = reviews
        .traffic
        .as_ref()
        .and_then(|t| t.distribute.get(&local))
        .and_then(|to| to.get(&local))
        .map_or(100, |w| w.0);
    let setup = Setup {
        reviews,
        ejection,
        ramp,
        story: Story {
            local,
            remote,
            local_weight,
        },
        regions,
    };
    (setup, rendered)
}

/// `routed cn-hangzhou=9 cn-shanghai=1`: one filter counter over `regions`.
fn counter_text(
    counters: &BTreeMap<(String, String), u64>,
    regions: &[String],
    metric: &str,
) -> String {
    let per: Vec<String> = regions
        .iter()
        .map(|r| {
            let v = counters
                .get(&(metric.to_string(), r.clone()))
                .copied()
                .unwrap_or(0);
            format!("{r}={v}")
        })
        .collect();
    format!("{metric} {}", per.join(" "))
}

/// The filter counters the demo shows.
const SHOWN_COUNTERS: [&str; 4] = ["routed", "failovers", "failures", "ejections"];

/// The phases as they happen: which one runs, since when, what it counted, and what
/// the filter's counters said so far.
struct Run<'s> {
    setup: &'s Setup,
    started: Instant,
    phase_len: Duration,
    phase: Phase,
    phase_started: Instant,
    phase_tally: Tally,
    summary: Vec<(Phase, Tally, Duration)>,
    ejected_until: Option<Instant>,
    stopped_at: Option<Instant>,
    ejections_seen: u64,
    failures_seen: u64,
    /// Where the filter's ramp (re)started.
    ramp_from: Instant,
    last_tick: Instant,
}

impl Run<'_> {
    /// Adds the phase's last count and puts it in the summary.
    fn close(&mut self, counted: Tally, took: Duration) {
        self.phase_tally.add(&counted);
        self.summary
            .push((self.phase, std::mem::take(&mut self.phase_tally), took));
    }

    fn stamp(&self) -> String {
        format!("[{:>4.0}s]", self.started.elapsed().as_secs_f64())
    }

    /// Polls every 100 ms, but wakes exactly when the countdown of the ejection ends:
    /// a poll that came late would count the first requests of the ramp as ejected.
    fn poll_interval(&self) -> Duration {
        match (self.phase, self.ejected_until) {
            (Phase::Ejected, Some(t)) => t
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
            _ => Duration::from_millis(100),
        }
    }

    /// Closes the current phase, which took `took` and counted `counted` last, and
    /// starts `next`.
    fn begin(&mut self, next: Phase, counted: Tally, took: Duration) {
        self.close(counted, took);
        self.phase = next;
        self.phase_started = Instant::now();
        self.last_tick = Instant::now();
    }

    /// A new ejection of the local region: the filter keeps it out for
    /// baseEjectionTime × ejections in a row (Envoy's rule, the filter's too). One
    /// during the ramp or later sends the demo back to the ejected phase.
    fn watch_ejections(&mut self, ejections: u64, tally: &Shared, screen: &mut Screen) {
        if ejections <= self.ejections_seen {
            return;
        }
        let ejection = self.setup.ejection;
        let in_a_row = u32::try_from(ejections).unwrap_or(1);
        // The first ejection came with the first request to the stopped region, right
        // after the stop: counting from the stop never ends the countdown late (the
        // counter shows up to a filter tick after the ejection).
        let from = match self.stopped_at {
            Some(t) if self.ejections_seen == 0 => t,
            _ => Instant::now(),
        };
        self.ejected_until = Some(from + ejection * in_a_row);
        if self.ejections_seen > 0 || self.phase >= Phase::Ejected {
            screen.note(&format!(
                "{} the filter ejected {} again (ejection #{ejections}, {:?}): a request of its share was answered elsewhere",
                self.stamp(),
                self.setup.story.local,
                ejection * in_a_row
            ));
            if self.phase > Phase::Ejected {
                let counted = std::mem::take(&mut *tally.lock().unwrap());
                self.begin(Phase::Ejected, counted, self.phase_started.elapsed());
            }
        }
        self.ejections_seen = ejections;
    }

    /// During the ramp, a failure of the local region without an ejection is a probe
    /// Envoy answered from elsewhere: Envoy lifts its own ejection of the hosts only on
    /// its next outlier-detection interval, and until then the filter starts its ramp
    /// over (policy::health::RegionHealth::record_served_elsewhere). So does the demo.
    fn watch_ramp_restarts(&mut self, failures: u64, ejections: u64, screen: &mut Screen) {
        if self.phase == Phase::Ramp
            && failures > self.failures_seen
            && ejections == self.ejections_seen
        {
            let story = &self.setup.story;
            screen.note(&format!(
                "{} a probe of {} was answered by {}: Envoy has not lifted its own ejection yet (next outlier interval), the ramp starts over",
                self.stamp(),
                story.local,
                story.remote
            ));
            self.ramp_from = Instant::now();
        }
        self.failures_seen = failures;
    }

    /// The phase that is over, if one is.
    fn phase_over(&self) -> Option<Phase> {
        let phase = self.phase;
        match phase {
            Phase::Healthy | Phase::Failover | Phase::Recovered
                if self.phase_started.elapsed() >= self.phase_len =>
            {
                Some(phase)
            }
            // No ejection seen (the filter did not eject): nothing to wait for.
            Phase::Ejected if self.ejected_until.is_none_or(|t| Instant::now() >= t) => Some(phase),
            Phase::Ramp if self.ramp_from.elapsed() >= self.setup.ramp => Some(phase),
            _ => None,
        }
    }

    /// Ends `ending` and starts the next phase, stopping or restarting the local
    /// reviews where the story says so. `false` after the last phase.
    fn advance(
        &mut self,
        ending: Phase,
        tally: &Shared,
        bookinfo: &mut Bookinfo,
        screen: &mut Screen,
    ) -> bool {
        let took = self.phase_started.elapsed();
        // Held until the next phase has begun: no request straddles the switch.
        let mut between_requests = tally.lock().unwrap();
        let counted = std::mem::take(&mut *between_requests);
        let now = self.stamp();
        let local = &self.setup.story.local;
        let next = match ending {
            Phase::Healthy => {
                // Taken before the stop: a request cut off while the port closes
                // fails no earlier than this, so the filter's ejection never ends
                // before the demo's countdown does.
                self.stopped_at = Some(Instant::now());
                for u in bookinfo.upstreams_in_region(SERVICE, local) {
                    u.stop();
                }
                screen.note(&format!("{now} stopped {local}'s reviews"));
                Phase::Failover
            }
            Phase::Failover => {
                for u in bookinfo.upstreams_in_region(SERVICE, local) {
                    u.restart();
                }
                screen.note(&format!("{now} restarted {local}'s reviews"));
                Phase::Ejected
            }
            Phase::Ejected => {
                self.ramp_from = Instant::now();
                Phase::Ramp
            }
            Phase::Ramp => Phase::Recovered,
            Phase::Recovered => {
                self.close(counted, took);
                return false;
            }
        };
        self.begin(next, counted, took);
        drop(between_requests);
        true
    }

    /// What the phase's status column says: its countdown.
    fn status(&self) -> String {
        match self.phase {
            Phase::Ejected => format!(
                "ends in {:.0}s",
                self.ejected_until
                    .map(|t| t.saturating_duration_since(Instant::now()).as_secs_f64())
                    .unwrap_or(0.0)
            ),
            Phase::Ramp => {
                let permille = RAMP_START_PERMILLE
                    + (1000 - RAMP_START_PERMILLE) * self.ramp_from.elapsed().as_millis() as u64
                        / self.setup.ramp.as_millis().max(1) as u64;
                format!(
                    "ramp {:.0}% of {}%",
                    permille.min(1000) as f64 / 10.0,
                    self.setup.story.local_weight
                )
            }
            _ => format!(
                "{:.0}s left",
                self.phase_len
                    .saturating_sub(self.phase_started.elapsed())
                    .as_secs_f64()
            ),
        }
    }

    /// The live view of the last second: the split, the errors, the filter's
    /// counters and Envoy's own ejection of the local hosts.
    fn draw(
        &mut self,
        second_tally: &Tally,
        counters: &BTreeMap<(String, String), u64>,
        envoy_line: &str,
        screen: &mut Screen,
    ) {
        self.phase_tally.add(second_tally);
        let (story, regions) = (&self.setup.story, &self.setup.regions);
        let status = self.status();
        let elapsed = self.started.elapsed().as_secs_f64();
        let counter_line = SHOWN_COUNTERS
            .iter()
            .map(|m| counter_text(counters, regions, m))
            .collect::<Vec<_>>()
            .join(" | ");
        let mut lines = vec![
            format!(
                "[{elapsed:>4.0}s] phase: {} ({status})",
                story.title(self.phase)
            ),
            format!("        expected: {}", story.expectation(self.phase)),
            format!(
                "        {:<16}{:>16}{:>22}",
                "reviews from", "last second", "this phase"
            ),
        ];
        for r in regions {
            lines.push(format!(
                "        {r:<16}{:>8} {:>6.1}%{:>14} {:>6.1}%",
                second_tally.count(r),
                second_tally.percent(r),
                self.phase_tally.count(r),
                self.phase_tally.percent(r)
            ));
        }
        lines.push(format!(
            "        {:<16}{:>8}{:>23}",
            "errors", second_tally.errors, self.phase_tally.errors
        ));
        lines.push(format!(
            "        filter (sidecar, {POLICY_SERVICE}): {counter_line}"
        ));
        lines.push(format!(
            "        Envoy's outlier detection (sidecar): {envoy_line}"
        ));
        let plain = format!(
            "[{elapsed:>4.0}s] {:<9} {status:<14} last 1s: {} | envoy: {envoy_line} | geolb {counter_line}",
            self.phase.key(),
            second_tally.line(regions)
        );
        screen.show(&lines, &plain);
    }
}

fn main() {
    let args = Args::parse();
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
            .expect("install the Ctrl-C handler");
    }
    let started = Instant::now();
    let mut screen = Screen {
        plain: args.plain || !std::io::stdout().is_terminal(),
        drawn_lines: 0,
    };
    let (setup, rendered) = prepare(&args, &mut screen);
    let (local, remote) = (&setup.story.local, &setup.story.remote);
    let mut bookinfo = Bookinfo::start(rendered);
    let registry = bookinfo.registry(|_| false);
    let chain = Chain::start(&bookinfo, CLUSTER, &registry);
    screen.note(&format!(
        "chain:     client → ingress gateway Envoy ({CLUSTER}) → productpage → its sidecar Envoy ({local}) → reviews v1 ({local}) / v2 ({remote})"
    ));
    screen.note(&format!(
        "           ejection {:?} (plan), recovery ramp {:?}; {} requests/s on one connection; Ctrl-C to stop",
        setup.ejection, setup.ramp, args.rate
    ));
    if let Some(t) = chain.sidecar(CLUSTER).translated() {
        let node = &t.bootstrap["node"];
        screen.note(&format!(
            "proxies:   as on ACK: node.locality {} and CLUSTER_ID {} (the filters find their region in the policy's clusterRegions)",
            node["locality"], node["metadata"]["CLUSTER_ID"]
        ));
    }

    let tally: Shared = Arc::default();
    let stop_load = Arc::new(AtomicBool::new(false));
    spawn_load(chain.entry, args.rate, tally.clone(), stop_load.clone());

    let sidecar = chain.sidecar(CLUSTER);
    let reviews = &setup.reviews;
    // Envoy's own outlier detection of the local reviews hosts, in the subset the filter
    // routes the local share to (`outbound|PORT|SUBSET|HOST`, as istiod names it).
    let local_subset = format!(
        "outbound|{}|{}|{}.{}.svc.cluster.local",
        reviews.port,
        geolb::render::region_subset(local),
        reviews.name,
        reviews.namespace
    );
    let local_hosts: Vec<std::net::SocketAddr> = bookinfo
        .upstreams_in_region(SERVICE, local)
        .iter()
        .map(|u| u.addr())
        .collect();
    let mut run = Run {
        setup: &setup,
        started,
        phase_len: Duration::from_secs(args.phase_seconds),
        phase: Phase::Healthy,
        phase_started: Instant::now(),
        phase_tally: Tally::default(),
        summary: Vec::new(),
        ejected_until: None,
        stopped_at: None,
        ejections_seen: 0,
        failures_seen: 0,
        ramp_from: Instant::now(),
        last_tick: Instant::now(),
    };

    while !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(run.poll_interval());
        let counters = filter_counters(&geolb_stats(sidecar));
        let count = |metric: &str| {
            counters
                .get(&(metric.to_string(), local.clone()))
                .copied()
                .unwrap_or(0)
        };
        let (ejections, failures) = (count("ejections"), count("failures"));
        run.watch_ejections(ejections, &tally, &mut screen);
        run.watch_ramp_restarts(failures, ejections, &mut screen);
        if let Some(ending) = run.phase_over() {
            if !run.advance(ending, &tally, &mut bookinfo, &mut screen) {
                break;
            }
            continue;
        }
        if run.last_tick.elapsed() < Duration::from_secs(1) {
            continue;
        }
        run.last_tick += Duration::from_secs(1);
        let second_tally = std::mem::take(&mut *tally.lock().unwrap());
        let ejected_by_envoy = local_hosts
            .iter()
            .filter(|h| {
                sidecar
                    .host_health(&local_subset, **h)
                    .is_some_and(|f| f.contains("failed_outlier_check"))
            })
            .count();
        let envoy_line = format!(
            "{ejected_by_envoy} of {} {local} reviews hosts ejected",
            local_hosts.len()
        );
        run.draw(&second_tally, &counters, &envoy_line, &mut screen);
    }
    stop_load.store(true, Ordering::SeqCst);
    if interrupted.load(Ordering::SeqCst) {
        screen.note("interrupted: stopping Envoy and the fake apps");
    }
    screen.note(&format!(
        "summary ({:.0}s):",
        started.elapsed().as_secs_f64()
    ));
    for (p, t, took) in &run.summary {
        screen.note(&format!(
            "phase {:<9} {:>5.1}s {:>5} requests: {}",
            p.key(),
            took.as_secs_f64(),
            t.total(),
            t.line(&setup.regions)
        ));
    }
    let counters = filter_counters(&geolb_stats(sidecar));
    for metric in SHOWN_COUNTERS {
        let text = counter_text(&counters, &setup.regions, metric);
        let (name, per) = text.split_once(' ').unwrap_or((metric, ""));
        screen.note(&format!("filter {name:<9} {per}"));
    }
    // Envoys are killed and the fake apps stopped on drop.
    drop(chain);
    drop(bookinfo);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(region: Option<&str>, failed: bool) -> Page {
        Page {
            status: 200,
            productpage_region: Some("cn-hangzhou".into()),
            reviews_region: region.map(str::to_owned),
            full_stars_lines: 0,
            red_stars_lines: 0,
            reviews_failed: failed,
        }
    }

    #[test]
    fn a_tally_counts_regions_and_pages_without_reviews_as_errors() {
        let mut t = Tally::default();
        for _ in 0..9 {
            t.add_page(&page(Some("cn-hangzhou"), false));
        }
        t.add_page(&page(Some("cn-shanghai"), false));
        t.add_page(&page(None, true));
        let mut whole = Tally::default();
        whole.add(&t);
        whole.add(&t);
        assert_eq!(
            (whole.count("cn-hangzhou"), whole.errors, whole.total()),
            (18, 2, 22)
        );
        let regions = ["cn-hangzhou".to_string(), "cn-shanghai".to_string()];
        assert_eq!(
            t.line(&regions),
            "cn-hangzhou=9 (81.8%) cn-shanghai=1 (9.1%) errors=1"
        );
    }

    #[test]
    fn filter_counters_of_reviews_are_read_from_tagged_stat_names() {
        let stats = BTreeMap::from([
            (
                "wasmcustom.geolb.routed;service=reviews.default;region=cn-hangzhou".to_string(),
                9,
            ),
            (
                "wasmcustom.geolb.routed;service=details.default;region=cn-hangzhou".to_string(),
                4,
            ),
            ("wasmcustom.geolb.policy_accepted".to_string(), 1),
            ("cluster.x.upstream_rq_total".to_string(), 7),
        ]);
        assert_eq!(
            filter_counters(&stats),
            BTreeMap::from([(("routed".to_string(), "cn-hangzhou".to_string()), 9)])
        );
    }
}
