//! A real Envoy process on loopback, with admin helpers.
//!
//! [`Envoy::start`] renders a [`MeshConfig`] into a fresh directory
//! (`$TMPDIR/geolb-e2e-<pid>-<n>/`: `envoy.yaml`, `ecds/wasm-ecds.yaml`, `envoy.log`,
//! `access.log`, `outlier.log`, `stdout-stderr.log`), starts
//! `envoy --concurrency N --disable-hot-restart --base-id <unique> -l info --log-path ...`
//! with ephemeral admin and listener ports, waits until `/ready` says LIVE and reads the
//! bound listener port. Drop kills it; if the thread is panicking (a failed test), the
//! tail of the Envoy and access logs is printed and the directory is kept.
//! `GEOLB_E2E_KEEP=1` keeps the directory in any case.
//!
//! [`Envoy::start_translated`] runs what the istiod stand-in built for one proxy
//! ([`crate::istiod::Translated`]): `envoy.json` plus the ECDS files under `ecds/`, with
//! the run directory as Envoy's working directory (the bootstrap's log and ECDS paths
//! are relative); [`Envoy::listener_addr`] gives each listener's bound address.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::config::{Delivery, ECDS_FILE, MeshConfig, RenderPaths, WasmFilter};
use crate::istiod::Translated;

/// How long [`Envoy::start`] waits for LIVE.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`Envoy::update_plugin_config`] waits for the update's outcome.
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accepted ECDS update before returning, so every worker has the new
/// filter config (the main thread posts it to workers asynchronously).
pub const UPDATE_SETTLE: Duration = Duration::from_millis(100);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Why Envoy did not become ready.
#[derive(Debug)]
pub struct StartError {
    /// Exit status if the process exited.
    pub exit: Option<ExitStatus>,
    /// What went wrong.
    pub reason: String,
    /// Tail of `envoy.log` and of stdout/stderr.
    pub log_tail: String,
    /// The run directory (kept).
    pub dir: PathBuf,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "envoy did not start: {} (exit: {:?}); files in {}\n--- log tail ---\n{}",
            self.reason,
            self.exit,
            self.dir.display(),
            self.log_tail
        )
    }
}

impl std::error::Error for StartError {}

/// Result of a plugin config update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// `update_success` +1: new streams use the new config.
    Applied,
    /// `update_rejected` +1 (e.g. `on_configure` returned false): the previous config
    /// keeps serving.
    Rejected,
}

/// A running Envoy. Killed on drop.
pub struct Envoy {
    child: Option<Child>,
    dir: PathBuf,
    admin: SocketAddr,
    listener: SocketAddr,
    /// Every listener's bound address, by name.
    listeners: BTreeMap<String, SocketAddr>,
    /// What it was started from: a [`MeshConfig`] or a translation.
    source: Source,
    ecds_version: u64,
    keep_dir: bool,
}

enum Source {
    Mesh(Box<MeshConfig>),
    Translated(Box<Translated>),
}

/// A fresh run directory `$TMPDIR/geolb-e2e-<pid>-<n>[suffix]` and its number.
fn new_run_dir(suffix: &str) -> (PathBuf, u32) {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("geolb-e2e-{}-{n}{suffix}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (dir, n)
}

/// A [`Translated`] bootstrap with its ECDS-delivered filters configured inline (for
/// `envoy --mode validate`, which does not fetch ECDS).
fn inline_ecds(t: &Translated) -> serde_json::Value {
    let mut by_name = BTreeMap::new();
    for response in t.ecds.values() {
        for r in response
            .get("resources")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(name), Some(tc)) = (
                r.get("name").and_then(|n| n.as_str()),
                r.get("typed_config"),
            ) {
                by_name.insert(name.to_string(), tc.clone());
            }
        }
    }
    let mut bootstrap = t.bootstrap.clone();
    let listeners = bootstrap
        .pointer_mut("/static_resources/listeners")
        .and_then(serde_json::Value::as_array_mut);
    for listener in listeners.into_iter().flatten() {
        let chains = listener
            .get_mut("filter_chains")
            .and_then(serde_json::Value::as_array_mut);
        for chain in chains.into_iter().flatten() {
            let filters = chain
                .get_mut("filters")
                .and_then(serde_json::Value::as_array_mut);
            for filter in filters.into_iter().flatten() {
                let http = filter
                    .pointer_mut("/typed_config/http_filters")
                    .and_then(serde_json::Value::as_array_mut);
                for f in http.into_iter().flatten() {
                    let name = f.get("name").and_then(|n| n.as_str()).map(str::to_string);
                    if f.get("config_discovery").is_some()
                        && let Some(tc) = name.as_ref().and_then(|n| by_name.get(n))
                    {
                        *f = serde_json::json!({ "name": name, "typed_config": tc });
                    }
                }
            }
        }
    }
    bootstrap
}

impl Envoy {
    /// Starts Envoy for `config`; panics with the log tail if it does not become ready.
    pub fn start(config: &MeshConfig) -> Envoy {
        Envoy::try_start(config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts Envoy for `config`, or says why it did not become ready (including a
    /// start-up exit, e.g. `on_configure` returning false on the initial config).
    pub fn try_start(config: &MeshConfig) -> Result<Envoy, StartError> {
        let (dir, n) = new_run_dir("");
        let paths = RenderPaths::in_dir(&dir);
        let fail = |reason: String| StartError {
            exit: None,
            reason,
            log_tail: String::new(),
            dir: dir.clone(),
        };
        std::fs::create_dir_all(&paths.ecds_dir)
            .map_err(|e| fail(format!("create {}: {e}", paths.ecds_dir.display())))?;
        let bootstrap = config.render_bootstrap(&paths);
        let cfg_path = dir.join("envoy.yaml");
        std::fs::write(&cfg_path, &bootstrap).map_err(|e| fail(format!("write config: {e}")))?;
        if let Some(w) = config
            .wasm
            .as_ref()
            .filter(|w| w.delivery == Delivery::Ecds)
        {
            write_atomically(
                &dir,
                &paths.ecds_dir.join(ECDS_FILE),
                &MeshConfig::render_ecds(w, 1),
            )
            .map_err(|e| fail(format!("write ECDS file: {e}")))?;
        }
        Envoy::launch(
            dir,
            n,
            &cfg_path,
            config.concurrency,
            &config.log_level,
            Source::Mesh(Box::new(config.clone())),
        )
    }

    /// Starts Envoy on what the istiod stand-in translated for one proxy; panics with
    /// the log tail if it does not become ready.
    pub fn start_translated(translated: &Translated) -> Envoy {
        Envoy::try_start_translated(translated).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts Envoy on a translation: writes `envoy.json` and the ECDS files into a
    /// fresh run directory (Envoy's working directory), waits for LIVE and reads every
    /// listener's bound port.
    pub fn try_start_translated(translated: &Translated) -> Result<Envoy, StartError> {
        let (dir, n) = new_run_dir("");
        let fail = |reason: String| StartError {
            exit: None,
            reason,
            log_tail: String::new(),
            dir: dir.clone(),
        };
        std::fs::create_dir_all(dir.join(crate::istiod::wasm::ECDS_DIR))
            .map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
        let cfg_path = dir.join("envoy.json");
        let text = serde_json::to_string_pretty(&translated.bootstrap).unwrap_or_default();
        std::fs::write(&cfg_path, text).map_err(|e| fail(format!("write config: {e}")))?;
        for (file, response) in &translated.ecds {
            let text = serde_json::to_string_pretty(response).unwrap_or_default();
            write_atomically(&dir, &dir.join(file), &text)
                .map_err(|e| fail(format!("write ECDS file {file}: {e}")))?;
        }
        Envoy::launch(
            dir,
            n,
            &cfg_path,
            translated.concurrency,
            "info",
            Source::Translated(Box::new(translated.clone())),
        )
    }

    /// Spawns Envoy on `cfg_path` in `dir` and waits until it is ready.
    fn launch(
        dir: PathBuf,
        n: u32,
        cfg_path: &Path,
        concurrency: u32,
        log_level: &str,
        source: Source,
    ) -> Result<Envoy, StartError> {
        let binary = crate::paths::try_envoy_binary().map_err(|reason| StartError {
            exit: None,
            reason,
            log_tail: String::new(),
            dir: dir.clone(),
        })?;
        let pid = std::process::id();
        let fail = |reason: String| StartError {
            exit: None,
            reason,
            log_tail: String::new(),
            dir: dir.clone(),
        };
        let out = std::fs::File::create(dir.join("stdout-stderr.log"))
            .map_err(|e| fail(format!("create stdout log: {e}")))?;
        let err = out
            .try_clone()
            .map_err(|e| fail(format!("dup stdout log: {e}")))?;
        // base-id only matters for hot-restart shared memory; keep it unique anyway.
        let base_id = (pid % 100_000) * 100 + (n % 100) + 1;
        let admin_addr_file = dir.join("admin.addr");
        let child = Command::new(&binary)
            .current_dir(&dir)
            .arg("-c")
            .arg(cfg_path)
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--disable-hot-restart")
            .args(["--base-id", &base_id.to_string()])
            .args(["-l", log_level])
            .arg("--log-path")
            .arg(dir.join("envoy.log"))
            .arg("--admin-address-path")
            .arg(&admin_addr_file)
            .args(["--file-flush-interval-msec", "50"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| fail(format!("spawn {}: {e}", binary.display())))?;
        let mut envoy = Envoy {
            child: Some(child),
            dir: dir.clone(),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: BTreeMap::new(),
            source,
            ecds_version: 1,
            keep_dir: std::env::var_os("GEOLB_E2E_KEEP").is_some(),
        };
        match envoy.wait_ready(&admin_addr_file) {
            Ok(()) => Ok(envoy),
            Err((exit, reason)) => {
                envoy.kill();
                envoy.keep_dir = true;
                Err(StartError {
                    exit,
                    reason,
                    log_tail: envoy.log_tail(60),
                    dir,
                })
            }
        }
    }

    fn wait_ready(&mut self, admin_addr_file: &Path) -> Result<(), (Option<ExitStatus>, String)> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::from("no admin address yet");
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err((Some(status), "envoy exited during start-up".into()));
            }
            if Instant::now() > deadline {
                return Err((None, format!("not LIVE after {START_TIMEOUT:?}: {last}")));
            }
            if self.admin.port() == 0
                && let Some(addr) = std::fs::read_to_string(admin_addr_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<SocketAddr>().ok())
            {
                self.admin = addr;
            }
            if self.admin.port() != 0 {
                match http_get(self.admin, "/ready") {
                    Ok((200, body)) if body.trim() == "LIVE" => break,
                    Ok((code, body)) => last = format!("/ready: {code} {}", body.trim()),
                    Err(e) => last = format!("/ready: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let listeners = self
            .try_admin_get("/listeners?format=json")
            .map_err(|e| (None, format!("/listeners: {e}")))?;
        let parsed = serde_json::from_str::<serde_json::Value>(&listeners).unwrap_or_default();
        for l in parsed
            .get("listener_statuses")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = l.get("name").and_then(|n| n.as_str());
            let port = l
                .pointer("/local_address/socket_address/port_value")
                .and_then(serde_json::Value::as_u64)
                .and_then(|p| u16::try_from(p).ok());
            if let (Some(name), Some(port)) = (name, port) {
                self.listeners
                    .insert(name.to_string(), SocketAddr::from(([127, 0, 0, 1], port)));
            }
        }
        let main = match &self.source {
            Source::Mesh(config) => format!("outbound_{}", config.port),
            Source::Translated(t) => t
                .listeners
                .first()
                .map(|(n, _)| n.clone())
                .unwrap_or_default(),
        };
        let expected: Vec<String> = match &self.source {
            Source::Mesh(_) => vec![main.clone()],
            Source::Translated(t) => t.listeners.iter().map(|(n, _)| n.clone()).collect(),
        };
        if let Some(missing) = expected.iter().find(|n| !self.listeners.contains_key(*n)) {
            return Err((
                None,
                format!("no port for listener {missing} in /listeners: {listeners}"),
            ));
        }
        self.listener = self.listeners.get(&main).copied().unwrap_or(self.listener);
        Ok(())
    }

    /// Runs `envoy --mode validate` on `config` rendered with the wasm filter inline
    /// (validation does not fetch ECDS). Runs `on_vm_start`/`on_configure`, so a plugin
    /// config the filter rejects fails here. `Ok(output)` if valid, `Err(output)` if not.
    pub fn validate(config: &MeshConfig) -> Result<String, String> {
        let binary = crate::paths::try_envoy_binary()?;
        let mut config = config.clone();
        if let Some(w) = config.wasm.as_mut() {
            w.delivery = Delivery::Inline;
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("geolb-e2e-{}-{n}-validate", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let cfg_path = dir.join("envoy.yaml");
        std::fs::write(
            &cfg_path,
            config.render_bootstrap(&RenderPaths::in_dir(&dir)),
        )
        .map_err(|e| e.to_string())?;
        run_validate(&binary, &dir, &cfg_path)
    }

    /// Runs `envoy --mode validate` on a translation, its ECDS filters inlined
    /// (validation does not fetch ECDS; it does run the wasm `on_configure`).
    /// `Ok(output)` if valid, `Err(output)` if not.
    pub fn validate_translated(translated: &Translated) -> Result<String, String> {
        let binary = crate::paths::try_envoy_binary()?;
        let (dir, _) = new_run_dir("-validate");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let cfg_path = dir.join("envoy.json");
        let text =
            serde_json::to_string_pretty(&inline_ecds(translated)).map_err(|e| e.to_string())?;
        std::fs::write(&cfg_path, text).map_err(|e| e.to_string())?;
        run_validate(&binary, &dir, &cfg_path)
    }

    /// The listener address (send requests here): `outbound_<port>` for a
    /// [`MeshConfig`], the first listener of a translation.
    pub fn addr(&self) -> SocketAddr {
        self.listener
    }

    /// The bound address of the listener named `name` (`0.0.0.0_9080`); panics listing
    /// the names it has.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        match self.listeners.get(name) {
            Some(a) => *a,
            None => panic!(
                "no listener {name:?}; listeners: {:?}",
                self.listeners.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// Every listener's bound address, by name.
    pub fn listeners(&self) -> &BTreeMap<String, SocketAddr> {
        &self.listeners
    }

    /// The translation it was started from (`None` for a [`MeshConfig`] start).
    pub fn translated(&self) -> Option<&Translated> {
        match &self.source {
            Source::Translated(t) => Some(t),
            Source::Mesh(_) => None,
        }
    }

    /// Pushes a re-translation's ECDS changes (a WasmPlugin edited and re-rendered) to
    /// the running Envoy, like istiod's ECDS push: every ECDS file whose content changed
    /// is replaced atomically and its outcome awaited. The rest of the configuration
    /// must be unchanged (listeners and clusters would need LDS/CDS: restart instead);
    /// panics if not. Returns the outcome per changed ECDS file.
    pub fn update_translated(&mut self, new: &Translated) -> Vec<(String, UpdateOutcome)> {
        let Source::Translated(old) = &self.source else {
            panic!("update_translated needs an Envoy started with start_translated")
        };
        assert!(
            old.bootstrap == new.bootstrap && old.ecds.keys().eq(new.ecds.keys()),
            "the re-translation changes more than the ECDS resources: restart Envoy instead"
        );
        let changed: Vec<(String, serde_json::Value)> = new
            .ecds
            .iter()
            .filter(|(file, v)| old.ecds.get(*file) != Some(*v))
            .map(|(f, v)| (f.clone(), v.clone()))
            .collect();
        let mut outcomes = Vec::new();
        for (file, response) in changed {
            let name = response
                .pointer("/resources/0/name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            let prefix = format!("extension_config_discovery.http_filter.{name}.");
            self.ecds_version += 1;
            let mut versioned = response.clone();
            if let Some(obj) = versioned.as_object_mut() {
                obj.insert(
                    "version_info".into(),
                    serde_json::json!(self.ecds_version.to_string()),
                );
            }
            let text = serde_json::to_string_pretty(&versioned).unwrap_or_default();
            let outcome = self.write_ecds_and_wait(&prefix, &self.dir.join(&file), &text);
            if outcome == UpdateOutcome::Applied
                && let Source::Translated(t) = &mut self.source
            {
                t.ecds.insert(file.clone(), response);
            }
            outcomes.push((file, outcome));
        }
        outcomes
    }

    /// Replaces an ECDS file atomically and waits until the filter `prefix`'s stats say
    /// it was applied or rejected; panics after [`UPDATE_TIMEOUT`].
    fn write_ecds_and_wait(&self, prefix: &str, path: &Path, text: &str) -> UpdateOutcome {
        let before = self.counters_with_prefix(prefix);
        let get = |m: &BTreeMap<String, u64>, s: &str| {
            m.get(&format!("{prefix}{s}")).copied().unwrap_or(0)
        };
        if let Err(e) = write_atomically(&self.dir, path, text) {
            panic!("write ECDS file {}: {e}", path.display());
        }
        let deadline = Instant::now() + UPDATE_TIMEOUT;
        loop {
            let now = self.counters_with_prefix(prefix);
            if get(&now, "update_success") > get(&before, "update_success") {
                std::thread::sleep(UPDATE_SETTLE);
                return UpdateOutcome::Applied;
            }
            if get(&now, "update_rejected") > get(&before, "update_rejected") {
                return UpdateOutcome::Rejected;
            }
            if Instant::now() > deadline {
                panic!(
                    "ECDS update {} of {} neither applied nor rejected after {UPDATE_TIMEOUT:?}; stats {now:?}; envoy dir {}",
                    self.ecds_version,
                    path.display(),
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The config it was started with (its `wasm` is the initial one); panics for an
    /// Envoy started from a translation.
    pub fn config(&self) -> &MeshConfig {
        match &self.source {
            Source::Mesh(c) => c,
            Source::Translated(_) => panic!("started from a translation, not a MeshConfig"),
        }
    }

    /// The run directory (config, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Envoy's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// User + system CPU time Envoy has used so far (from `/proc/<pid>/stat`; for the
    /// benchmark: compare CPU per request, not requests per second).
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the ")" of the command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        // USER_HZ is 100 on Linux.
        Some(Duration::from_millis((utime + stime) * 10))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// GET an admin path (e.g. `/clusters`, `/config_dump`), or an error.
    pub fn try_admin_get(&self, path: &str) -> io::Result<String> {
        match http_request(self.admin, "GET", path)? {
            (200, body) => Ok(body),
            (code, body) => Err(io::Error::other(format!("admin GET {path}: {code} {body}"))),
        }
    }

    /// GET an admin path; panics on failure.
    pub fn admin_get(&self, path: &str) -> String {
        self.try_admin_get(path)
            .unwrap_or_else(|e| panic!("{e}; envoy dir {}", self.dir.display()))
    }

    /// All counters and gauges from `/stats` (histograms and text stats are skipped).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.admin_get("/stats")
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(": ")?;
                Some((k.to_string(), v.trim().parse::<u64>().ok()?))
            })
            .collect()
    }

    /// A counter or gauge by exact name, `None` if Envoy does not have it.
    pub fn try_counter(&self, name: &str) -> Option<u64> {
        self.stats().get(name).copied()
    }

    /// A counter or gauge by exact name; panics (listing similar names) if missing.
    pub fn counter(&self, name: &str) -> u64 {
        let stats = self.stats();
        if let Some(v) = stats.get(name) {
            return *v;
        }
        let stem = name.rsplit_once('.').map_or(name, |(a, _)| a);
        let similar: Vec<&String> = stats
            .keys()
            .filter(|k| k.starts_with(stem))
            .take(20)
            .collect();
        panic!("no stat {name:?} in /stats; similar: {similar:?}")
    }

    /// Counters and gauges whose name starts with `prefix`.
    pub fn counters_with_prefix(&self, prefix: &str) -> BTreeMap<String, u64> {
        self.stats()
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect()
    }

    /// A cluster stat, e.g. `cluster_stat(&cfg.subset_cluster("a"), "upstream_rq_total")`.
    pub fn cluster_stat(&self, cluster: &str, stat: &str) -> u64 {
        self.try_counter(&format!("cluster.{cluster}.{stat}"))
            .unwrap_or(0)
    }

    /// `/clusters` (text).
    pub fn clusters(&self) -> String {
        self.admin_get("/clusters")
    }

    /// `health_flags` of one host of a cluster from `/clusters` (e.g. `healthy`,
    /// `/failed_outlier_check`), `None` if not found.
    pub fn host_health(&self, cluster: &str, host: SocketAddr) -> Option<String> {
        let key = format!("{cluster}::{host}::health_flags::");
        self.clusters()
            .lines()
            .find_map(|l| l.strip_prefix(&key).map(str::to_string))
    }

    /// Envoy's own log (`-l` level) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// The access log lines so far (format: [`crate::config::ACCESS_LOG_FORMAT`]).
    /// Flushed every 50 ms; use [`wait_until`] when you need the latest line.
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The value of one `key=` field (e.g. `route=`) of every access log line so far;
    /// "" for a line without it.
    pub fn access_log_field(&self, key: &str) -> Vec<String> {
        self.access_log()
            .iter()
            .map(|line| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(key))
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    fn ecds_filter(&self) -> &WasmFilter {
        let wasm = match &self.source {
            Source::Mesh(c) => c.wasm.as_ref(),
            Source::Translated(_) => None,
        };
        match wasm {
            Some(w) if w.delivery == Delivery::Ecds => w,
            _ => panic!("plugin config updates need a wasm filter delivered by ECDS (the default)"),
        }
    }

    /// Prefix of the ECDS stats of the wasm filter:
    /// `extension_config_discovery.http_filter.<filter_name>.` (then `update_success`,
    /// `update_rejected`, `config_reload`, `config_fail`, `version_text`...).
    pub fn ecds_stat_prefix(&self) -> String {
        format!(
            "extension_config_discovery.http_filter.{}.",
            self.ecds_filter().filter_name
        )
    }

    /// Pushes a new plugin configuration (JSON text) to the running Envoy, like istiod
    /// pushing an updated WasmPlugin: rewrites the ECDS file atomically and waits for
    /// `update_success` (→ [`UpdateOutcome::Applied`], after a [`UPDATE_SETTLE`] pause) or
    /// `update_rejected` (→ [`UpdateOutcome::Rejected`]). No restart, no connection drain:
    /// new streams on existing connections see the new config. Panics on a time-out.
    pub fn update_plugin_config(&mut self, plugin_config: &str) -> UpdateOutcome {
        let mut w = self.ecds_filter().clone();
        w.plugin_config = plugin_config.to_string();
        self.update_wasm_filter(&w)
    }

    /// Like [`Envoy::update_plugin_config`] for any change of the wasm filter's ECDS
    /// resource (module, failure policy, ...; not its `filter_name` or delivery).
    pub fn update_wasm_filter(&mut self, wasm: &WasmFilter) -> UpdateOutcome {
        let prefix = self.ecds_stat_prefix();
        self.ecds_version += 1;
        let mut wasm = wasm.clone();
        wasm.filter_name = self.ecds_filter().filter_name.clone();
        let paths = RenderPaths::in_dir(&self.dir);
        let text = MeshConfig::render_ecds(&wasm, self.ecds_version);
        let outcome = self.write_ecds_and_wait(&prefix, &paths.ecds_dir.join(ECDS_FILE), &text);
        if outcome == UpdateOutcome::Applied
            && let Source::Mesh(c) = &mut self.source
            && let Some(w) = c.wasm.as_mut()
        {
            *w = wasm;
        }
        outcome
    }

    /// The last `n` lines of the Envoy log and of its stdout/stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let tail = |f: &str| {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            // Skip the start-up banner (extension lists, header map sizes).
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| !(l.contains("[info][main] [source/server/server.cc:")))
                .collect();
            lines
                .get(lines.len().saturating_sub(n)..)
                .unwrap_or_default()
                .join("\n")
        };
        format!(
            "[envoy.log]\n{}\n[stdout-stderr.log]\n{}",
            tail("envoy.log"),
            tail("stdout-stderr.log")
        )
    }

    /// Kills the process (idempotent).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let access = self.access_log();
            let from = access.len().saturating_sub(20);
            eprintln!(
                "=== envoy run dir (kept): {}\n{}\n[access.log, last 20]\n{}",
                self.dir.display(),
                self.log_tail(40),
                access.get(from..).unwrap_or_default().join("\n")
            );
        } else if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Polls `cond` every 20 ms until it is true or `timeout` passes; returns whether it
/// became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `dest` by writing a temp file in `tmp_dir` (outside the watched directory, same
/// filesystem) and renaming it, so a watcher never sees a partial file.
fn write_atomically(tmp_dir: &Path, dest: &Path, content: &str) -> io::Result<()> {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let tmp = tmp_dir.join(format!(".tmp-{n}"));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, dest)
}

fn http_get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    http_request(addr, "GET", path)
}

/// A one-shot admin request (`Connection: close`, body read to EOF).
fn http_request(addr: SocketAddr, method: &str, path: &str) -> io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let resp = crate::client::parse_full_response(&raw)?;
    Ok((resp.status, resp.body_str()))
}

/// `envoy --mode validate -c <cfg_path>` run in `dir` (relative paths in the config
/// resolve there), then `dir` removed: `Ok(output)` if valid, `Err(output)` if not.
fn run_validate(binary: &Path, dir: &Path, cfg_path: &Path) -> Result<String, String> {
    let out = Command::new(binary)
        .current_dir(dir)
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "info",
            "-c",
        ])
        .arg(cfg_path)
        .output()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}
