//! Load-test helpers for the benchmark: an nginx upstream (cheaper per request than
//! [`crate::Upstream`], so Envoy's cost dominates) and a `wrk` runner that reports Envoy's
//! CPU time per request. Both come from Debian via `scripts/setup.sh`.
//!
//! Requests per second swing a lot on shared 2-core machines: compare Envoy CPU per
//! request, in interleaved rounds, never absolute throughput.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::Envoy;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// An nginx answering `200 region=<region>` with `x-served-region: <region>` on
/// 127.0.0.1. Killed on drop.
pub struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    region: String,
}

impl Nginx {
    /// Starts nginx (one process, keep-alive, backlog 1024) on a free port.
    pub fn start(region: &str) -> Nginx {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("nginx not installed: run scripts/setup.sh"));
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("geolb-e2e-nginx-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  keepalive_requests 1000000;\n  keepalive_timeout 75s;\n\
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             server {{\n    listen 127.0.0.1:{port} backlog=1024;\n    location / {{\n      default_type text/plain;\n\
             add_header x-served-region {region} always;\n      return 200 \"region={region}\\n\";\n    }}\n  }}\n}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap_or_else(|e| panic!("write nginx.conf: {e}"));
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn nginx: {e}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut nginx = Nginx {
            child,
            addr,
            dir,
            region: region.to_string(),
        };
        let up = crate::wait_until(Duration::from_secs(5), || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        if !up {
            let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
            nginx.kill();
            panic!("nginx did not listen on {addr}: {log}");
        }
        nginx
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its region.
    pub fn region(&self) -> &str {
        &self.region
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// One `wrk` run against an Envoy.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Requests completed.
    pub requests: u64,
    /// Non-2xx/3xx responses.
    pub non_2xx: u64,
    /// Socket errors (connect + read + write + timeout).
    pub socket_errors: u64,
    /// Requests per second as wrk reports it.
    pub requests_per_sec: f64,
    /// Envoy CPU time (user + system) during the run.
    pub envoy_cpu: Duration,
}

impl LoadResult {
    /// Envoy CPU microseconds per request.
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.requests == 0 {
            return f64::NAN;
        }
        self.envoy_cpu.as_secs_f64() * 1e6 / self.requests as f64
    }
}

/// Runs `wrk -t<threads> -c<connections> -d<duration, whole seconds, at least 1>` against `envoy` with the given
/// request headers (Host defaults to `reviews:9080`) and measures Envoy's CPU time over
/// the run.
pub fn wrk(
    envoy: &Envoy,
    path: &str,
    headers: &[(&str, &str)],
    threads: u32,
    connections: u32,
    duration: Duration,
) -> LoadResult {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .arg("-d")
        // wrk takes whole seconds (no "ms" suffix).
        .arg(format!("{}s", duration.as_secs_f64().ceil().max(1.0)))
        .args(["--timeout", "5s"]);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        cmd.args(["-H", &format!("Host: {}", crate::DEFAULT_AUTHORITY)]);
    }
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    cmd.arg(format!("http://{}{path}", envoy.addr()));
    let cpu_before = envoy.cpu_time().unwrap_or_default();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run wrk (scripts/setup.sh installs it): {e}"));
    let cpu_after = envoy.cpu_time().unwrap_or_default();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = parse_wrk(&text);
    r.envoy_cpu = cpu_after.saturating_sub(cpu_before);
    r
}

/// The host name a browser sends to an ingress gateway in the benchmark: the virtual
/// host accepts it ([`crate::MeshConfig::extra_domains`]) but it names no service in the
/// policy, so geolb finds the service by the route's cluster (`xds.cluster_name`).
pub const GATEWAY_AUTHORITY: &str = "bookinfo.example.com";

/// `policy` (JSON) as `geolb render` writes it for an ingress gateway: with
/// `serviceFromRoute` on, the filter finds the service of a [`GATEWAY_AUTHORITY`] request
/// by the route's cluster; without it, such requests are not routed by geolb at all.
pub fn gateway_policy(policy: &str) -> String {
    let mut json: serde_json::Value =
        serde_json::from_str(policy).unwrap_or_else(|e| panic!("policy JSON: {e}"));
    json["serviceFromRoute"] = serde_json::Value::Bool(true);
    json.to_string()
}

/// Requests geolb routed to a region in `envoy` so far (`wasmcustom.geolb.routed`, all
/// services and regions), after waiting for the filter's tick to flush its counters.
pub fn geolb_routed(envoy: &Envoy) -> u64 {
    std::thread::sleep(Duration::from_millis(250));
    envoy
        .counters_with_prefix("wasmcustom.geolb.routed;")
        .values()
        .sum()
}

/// Parses wrk's summary output.
pub fn parse_wrk(text: &str) -> LoadResult {
    let mut r = LoadResult::default();
    for line in text.lines().map(str::trim) {
        if line.contains(" requests in ") {
            r.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = rest.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            r.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some(rest) = line.strip_prefix("Requests/sec:") {
            r.requests_per_sec = rest.trim().parse().unwrap_or(0.0);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 2s test @ http://127.0.0.1:1/\n  2 threads and 32 connections\n  \
                    39000 requests in 2.00s, 5.1MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  \
                    Non-2xx or 3xx responses: 7\nRequests/sec:  19500.12\nTransfer/sec:      2.55MB\n";
        let r = parse_wrk(text);
        assert_eq!((r.requests, r.non_2xx, r.socket_errors), (39000, 7, 3));
        assert!((r.requests_per_sec - 19500.12).abs() < 1e-6);
    }
}
