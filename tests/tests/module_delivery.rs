//! Module delivery through a real registry: the filter's OCI image (`wasm-out/oci`,
//! written by scripts/build-wasm.sh) is pushed by scripts/push-image.sh to a
//! distribution registry on 127.0.0.1 (Debian's `docker-registry`), pulled back with
//! skopeo, and checked the way istio-agent uses it: the manifest digest the registry
//! serves is the examples' `sha256` pin, the last layer's `plugin.wasm` is the module
//! byte for byte, and a real Envoy runs the pulled module.
//!
//! Needs skopeo and docker-registry (scripts/setup.sh). Run:
//! `cargo test -p geolb-e2e --test module_delivery`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // tests fail by panicking

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use geolb_e2e::istiod::GEOLB_MODULE_URL;
use geolb_e2e::paths::{geolb_image_digest, geolb_image_layout};
use geolb_e2e::*;
use serde_json::json;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// Any one step (registry start, push, pull): each takes well under a second here.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
const TAG: &str = "0.1.0";

/// Runs `cmd` in its own process group with output to files in `dir`, killing the group
/// after `timeout`; returns stdout, panics with both outputs unless it succeeded.
fn run(dir: &Path, name: &str, cmd: &mut Command, timeout: Duration) -> String {
    let (out, err) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.err")),
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/setup.sh)"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > timeout {
            kill_group(&mut child);
            panic!(
                "{name} did not finish in {timeout:?}:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert!(
        status.success(),
        "{name} failed ({status}):\n{stdout}\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    stdout
}

/// Kills the process group `child` leads (it was spawned with `process_group(0)`).
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// A distribution registry on 127.0.0.1, storage in a temporary directory; killed on drop.
struct Registry {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).is_file(),
            "{REGISTRY_BIN} is missing: run scripts/setup.sh"
        );
        // A port another process takes between probe and bind makes the registry exit:
        // try again on a new one.
        let mut last_log = String::new();
        for attempt in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let config = dir.join(format!("registry-{attempt}.yml"));
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n\
                     http:\n  addr: {addr}\n",
                    dir.join("storage").display()
                ),
            )
            .unwrap();
            let log = dir.join(format!("registry-{attempt}.log"));
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(File::create(&log).unwrap())
                .stderr(File::create(&log).unwrap())
                .process_group(0)
                .spawn()
                .unwrap();
            let mut registry = Registry { child, addr, log };
            if registry.wait_ready() {
                return registry;
            }
            last_log = std::fs::read_to_string(&registry.log).unwrap_or_default();
        }
        panic!("the registry did not start:\n{last_log}");
    }

    /// Until `GET /v2/` answers 200 (true), or the registry exits or times out (false).
    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < STEP_TIMEOUT {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if send_one(self.addr, &Request::get("/v2/")).is_ok_and(|r| r.status == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Every `sha256` pin and `url` in the WasmPlugins rendered under `manifests/<scenario>/`.
fn rendered_pins() -> Vec<(PathBuf, String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() && name != "examples" {
                walk(&p, out);
            } else if name.starts_with("wasmplugin-") && name.ends_with(".yaml") {
                let doc: serde_json::Value =
                    serde_norway::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                let spec = &doc["spec"];
                out.push((
                    p.clone(),
                    spec["url"].as_str().unwrap_or_default().to_string(),
                    spec["sha256"].as_str().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("manifests"), &mut out);
    out
}

#[test]
fn the_image_pushed_to_a_registry_is_the_examples_pin_and_its_pulled_module_runs_in_envoy() {
    let started = Instant::now();
    let module = std::fs::read(geolb_wasm()).unwrap();
    let digest = geolb_image_digest();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let local = geolb_image::read_layout(&geolb_image_layout(), Some(TAG)).unwrap();
    assert_eq!(
        local.manifest_digest, digest,
        "wasm-out/oci and wasm-out/geolb_filter.oci-digest disagree: run scripts/build-wasm.sh"
    );
    assert_eq!(
        local.module, module,
        "wasm-out/oci is stale: run scripts/build-wasm.sh"
    );

    // The examples pin this image: every rendered WasmPlugin names it and its digest.
    let pins = rendered_pins();
    assert!(pins.len() >= 4, "{pins:?}");
    for (file, url, sha256) in &pins {
        assert_eq!(url, GEOLB_MODULE_URL, "{}", file.display());
        assert_eq!(
            sha256,
            hex,
            "{} pins another image than this checkout builds: run scripts/bless.sh",
            file.display()
        );
    }

    let tmp = tempfile::Builder::new()
        .prefix("geolb-module-delivery-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let registry = Registry::start(dir);
    // The examples' repository and tag, on the local registry.
    let (_, path) = GEOLB_MODULE_URL
        .strip_prefix("oci://")
        .unwrap()
        .split_once('/')
        .unwrap();
    let reference = format!("{}/{path}", registry.addr);
    assert!(reference.ends_with(&format!(":{TAG}")), "{reference}");

    let printed = run(
        dir,
        "push",
        Command::new(repo_root().join("scripts/push-image.sh"))
            .arg("--dest-tls-verify=false")
            .arg(&reference),
        STEP_TIMEOUT,
    );
    assert!(
        printed.contains(&format!("  url: oci://{reference}\n  sha256: {hex}\n")),
        "{printed}"
    );

    // What istio-agent's fetcher receives: the manifest by tag; its sha256 is the digest
    // it compares with the pin.
    let served = send_one(
        registry.addr,
        &Request::get(&format!(
            "/v2/{}/manifests/{TAG}",
            path.rsplit_once(':').unwrap().0
        ))
        .header("Accept", geolb_image::MANIFEST_MEDIA_TYPE),
    )
    .unwrap();
    assert_eq!(served.status, 200, "{}", served.body_str());
    assert_eq!(geolb_image::digest_of(&served.body), digest);
    assert_eq!(
        served.header("docker-content-digest"),
        Some(digest.as_str())
    );

    let pulled_dir = dir.join("pulled");
    run(
        dir,
        "pull",
        Command::new("skopeo").args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{}:{TAG}", pulled_dir.display()),
        ]),
        STEP_TIMEOUT,
    );
    let pulled = geolb_image::read_layout(&pulled_dir, Some(TAG)).unwrap();
    assert_eq!(pulled.manifest_digest, digest);
    assert_eq!(pulled.manifest, local.manifest);
    assert!(
        pulled.module == module,
        "plugin.wasm from the pulled image ({} bytes) is not wasm-out/geolb_filter.wasm ({} bytes)",
        pulled.module.len(),
        module.len()
    );
    drop(registry);

    // A real Envoy runs the pulled module: from cn-hangzhou, everything to cn-shanghai.
    let plugin = dir.join("plugin.wasm");
    std::fs::write(&plugin, &pulled.module).unwrap();
    let hz = Upstream::start("cn-hangzhou");
    let sh = Upstream::start("cn-shanghai");
    let policy = json!({
        "apiVersion": "geolb.io/v1alpha1",
        "routeToken": ROUTE_TOKEN,
        "regions": ["cn-hangzhou", "cn-shanghai"],
        "services": [{
            "name": "reviews.default",
            "hosts": ["reviews.default.svc.cluster.local"],
            "regions": ["cn-hangzhou", "cn-shanghai"],
            "distribute": { "cn-hangzhou": { "cn-shanghai": 100 } }
        }]
    });
    let cfg = MeshConfig::for_upstreams(&[&hz, &sh])
        .with_wasm(WasmFilter::new(plugin.clone(), &policy.to_string()));
    let envoy = Envoy::start(&cfg);
    let r = send_one(envoy.addr(), &Request::reviews()).unwrap();
    assert_eq!(
        (r.status, r.served_region()),
        (200, Some("cn-shanghai")),
        "{}",
        envoy.log_tail(40)
    );
    assert_eq!(sh.served(), 1);
    assert_eq!(hz.served(), 0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
