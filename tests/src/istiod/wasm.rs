//! WasmPlugins (and TrafficExtensions) to ECDS-delivered HTTP filters, as Istio 1.30.3
//! does it:
//!
//! * pilot/pkg/config/kube/extensions/translate.go `translateWasmPlugin`: istiod turns
//!   every WasmPlugin into a synthetic TrafficExtension named
//!   `<name>~istio-translated-wasmplugin` (same namespace, selector, phase, priority,
//!   match, url, sha256, pull policy, pluginConfig, pluginName, failStrategy, type);
//! * pilot/pkg/model/extensions.go `convertToTrafficExtensionWrapper`, `buildWasmConfig`,
//!   `buildDataSource`, `buildVMConfig`: ECDS resource and HTTP filter name
//!   `extensions.istio.io/trafficextension/<ns>.<name>`, `PluginConfig.name`
//!   `<ns>.<name>`, `root_id` = `pluginName`, the pluginConfig as a JSON
//!   `StringValue` (left out when empty), V8, no `vm_id`, the failure policy from
//!   `failStrategy`; a `file://` url becomes a local filename as it is, with no sha256,
//!   any other (`oci://`) a remote source with the pin; the VM environment carries
//!   `ISTIO_META_WASM_IMAGE_PULL_POLICY` (when set) and
//!   `ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION` (the object's resourceVersion);
//! * pilot/pkg/networking/core/extension/extensionfilter.go `toEnvoyHTTPTrafficExtension`:
//!   the HTTP filter is config discovery for the Wasm and RBAC types;
//! * pkg/wasm/convert.go `MaybeConvertWasmExtensionConfig`, `rewriteVMConfig`, and
//!   pkg/wasm/cache.go, imagefetcher.go: istio-agent rewrites only remote modules (pulls
//!   the image, compares an `oci://` pin with its manifest digest, extracts
//!   `plugin.wasm`, points the code at the local file and strips the `ISTIO_META_*`
//!   variables, which leaves no environment); a local module passes to Envoy untouched,
//!   environment variables included.
//!
//! Beyond Istio, on purpose: the stand-in checks a `file://` module's sha256 against the
//! manifest's pin (Istio checks nothing for local files), so the examples' pin cannot go
//! stale unnoticed; and it serves ECDS from a watched file instead of ADS.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::load::Loaded;
use super::objects::{Metadata, TrafficSelector, WorkloadSelector};
use super::{Environment, Proxy, TranslateError};

/// Istio's root namespace: a WasmPlugin there applies mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";
pub const WASM_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// istio-agent may answer an ECDS request with an RBAC filter (allow-all when the
/// module cannot be fetched and the plugin fails open), so istiod lists both types.
pub const RBAC_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
/// The directory (relative to the Envoy run directory) holding the ECDS files.
pub const ECDS_DIR: &str = "ecds";

/// What `translateWasmPlugin` appends to a WasmPlugin's name (a `~` cannot be in a
/// Kubernetes name, so no real TrafficExtension collides).
pub const TRANSLATED_WASMPLUGIN_MARKER: &str = "~istio-translated-wasmplugin";
/// istiod's ECDS resource name prefix (`TrafficExtensionResourceNamePrefix`).
pub const RESOURCE_NAME_PREFIX: &str = "extensions.istio.io/trafficextension/";
/// `model.WasmPolicyEnv` (pkg/model/wasm.go).
pub const WASM_POLICY_ENV: &str = "ISTIO_META_WASM_IMAGE_PULL_POLICY";
/// `model.WasmResourceVersionEnv` (pkg/model/wasm.go).
pub const WASM_RESOURCE_VERSION_ENV: &str = "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION";

/// A WasmPlugin or TrafficExtension, reduced to what the filter needs.
struct Extension<'a, T> {
    loaded: &'a Loaded<T>,
    metadata: &'a Metadata,
    /// The TrafficExtension's name as istiod knows it: a WasmPlugin's name with
    /// [`TRANSLATED_WASMPLUGIN_MARKER`], a TrafficExtension's own.
    name: String,
    /// Stands for the object's Kubernetes `resourceVersion`: a digest of the object, so
    /// it changes with every edit as the API server's does.
    resource_version: String,
    /// Prefix of the wasm fields' paths (`spec` or `spec.wasm`).
    wasm_path: &'static str,
    selector: Option<&'a WorkloadSelector>,
    matches: &'a [TrafficSelector],
    phase: Option<&'a str>,
    priority: i32,
    url: &'a str,
    sha256: Option<&'a str>,
    plugin_name: &'a str,
    fail_strategy: Option<&'a str>,
    plugin_type: Option<&'a str>,
    image_pull_policy: Option<&'a str>,
    plugin_config: Option<&'a serde_json::Map<String, Value>>,
}

/// One wasm filter of the proxy: its HCM entry and its ECDS file.
#[derive(Clone, Debug, PartialEq)]
pub struct WasmFilterConfig {
    /// ECDS resource and HTTP filter name:
    /// `extensions.istio.io/trafficextension/<ns>.<name>`, `<name>` with
    /// [`TRANSLATED_WASMPLUGIN_MARKER`] for a WasmPlugin.
    pub resource_name: String,
    /// `PluginConfig.name`: `<ns>.<name>` (the filter's plugin name).
    pub plugin_name: String,
    /// File name relative to the run directory (`ecds/<ns>.<name>.json`).
    pub ecds_file: String,
    /// Where it goes in the HTTP filter chain.
    pub phase: Phase,
    /// The `TypedExtensionConfig.typed_config` (an `envoy.extensions.filters.http.wasm.v3.Wasm`).
    pub typed_config: Value,
}

impl WasmFilterConfig {
    /// The HTTP filter entry of the connection manager: config discovery from the
    /// watched ECDS file (istiod uses ADS; the file stands in for it).
    pub fn http_filter(&self) -> Value {
        json!({
            "name": self.resource_name,
            "config_discovery": {
                "config_source": {
                    "resource_api_version": "V3",
                    // defaultConfigSource: the listener waits for the extension.
                    "initial_fetch_timeout": "0s",
                    "path_config_source": {
                        "path": self.ecds_file,
                        "watched_directory": { "path": ECDS_DIR },
                    },
                },
                "type_urls": [WASM_TYPE_URL, RBAC_TYPE_URL],
            },
        })
    }

    /// The ECDS file content (a DiscoveryResponse) at `version`.
    pub fn ecds_response(&self, version: u64) -> Value {
        json!({
            "version_info": version.to_string(),
            "resources": [{
                "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                "name": self.resource_name,
                "typed_config": self.typed_config,
            }],
        })
    }
}

/// A WasmPlugin's `phase` (TrafficExtension `ExecutionPhase`, the same values): where
/// `buildHTTPConnectionManager` puts it among Istio's own filters
/// ([`super::translate`]'s HTTP filter chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Before Istio's authentication filters.
    Authn,
    /// Before Istio's authorization filters.
    Authz,
    /// After authorization, before the unspecified-phase extensions.
    Stats,
    /// Last of the extensions, before Istio's gRPC stats, fault, CORS and router.
    Unspecified,
}

fn phase_of(phase: Option<&str>) -> Option<Phase> {
    Some(match phase.unwrap_or("UNSPECIFIED_PHASE") {
        "AUTHN" => Phase::Authn,
        "AUTHZ" => Phase::Authz,
        "STATS" => Phase::Stats,
        "UNSPECIFIED_PHASE" | "UNSPECIFIED" => Phase::Unspecified,
        _ => return None,
    })
}

/// Whether an extension applies to this proxy: same namespace (no selector = every
/// workload there) or the root namespace (mesh-wide), the selector's labels matching
/// the pod labels; and a match mode that includes client traffic (outbound sidecar
/// listeners and gateways): CLIENT, CLIENT_AND_SERVER, UNDEFINED, or no `match`.
fn applies<T>(ext: &Extension<'_, T>, proxy: &Proxy) -> Result<bool, TranslateError> {
    let ns = ext.metadata.namespace();
    if ns != proxy.namespace && ns != ROOT_NAMESPACE {
        return Ok(false);
    }
    if let Some(sel) = ext.selector
        && !sel
            .match_labels
            .iter()
            .all(|(k, v)| proxy.labels.get(k) == Some(v))
    {
        return Ok(false);
    }
    if ext.matches.is_empty() {
        return Ok(true);
    }
    let mut client = false;
    for (i, m) in ext.matches.iter().enumerate() {
        match m.mode.as_str() {
            "CLIENT" | "CLIENT_AND_SERVER" | "UNDEFINED" => client = true,
            "SERVER" => {}
            other => {
                return Err(ext.loaded.error(
                    &format!("spec.match[{i}].mode"),
                    format!("unknown mode `{other}`"),
                ));
            }
        }
    }
    Ok(client)
}

/// A stand-in `resourceVersion`: the first 16 hex digits of a digest of the object.
fn resource_version<T: std::fmt::Debug>(object: &T) -> String {
    sha256_hex(format!("{object:?}").as_bytes())
        .chars()
        .take(16)
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Wasm` filter config istiod builds (`buildWasmConfig`: `PluginConfig{name:
/// <ns>.<name>, root_id: pluginName, configuration: StringValue(JSON of pluginConfig),
/// vm_config{runtime v8, code, environment_variables}, failure_policy}`, vm_id unset),
/// with the code as Envoy gets it: a `file://` module as istiod wrote it (a local
/// filename, the VM environment untouched), an `oci://` module rewritten by istio-agent
/// to the pulled local file after checking the pin, its `ISTIO_META_*` environment
/// variables stripped (`rewriteVMConfig`: none left, so no environment at all).
fn filter_config<T>(
    ext: &Extension<'_, T>,
    env: &Environment,
    phase: Phase,
) -> Result<WasmFilterConfig, TranslateError> {
    let at = |field: &str| format!("{}.{field}", ext.wasm_path);
    match ext.plugin_type.unwrap_or("HTTP") {
        "HTTP" | "UNSPECIFIED_PLUGIN_TYPE" => {}
        other => {
            return Err(ext.loaded.error(
                &at("type"),
                format!("plugin type `{other}` is not translated (geolb is an HTTP filter)"),
            ));
        }
    }
    if let Some(p) = ext.image_pull_policy
        && !matches!(p, "IfNotPresent" | "Always" | "UNSPECIFIED_POLICY")
    {
        return Err(ext
            .loaded
            .error(&at("imagePullPolicy"), format!("unknown policy `{p}`")));
    }
    // buildWasmConfig maps every strategy; none is FAIL_CLOSE (the enum's zero value).
    let failure_policy = match ext.fail_strategy.unwrap_or("FAIL_CLOSE") {
        "FAIL_CLOSE" => "FAIL_CLOSED",
        "FAIL_OPEN" => "FAIL_OPEN",
        "FAIL_RELOAD" => "FAIL_RELOAD",
        other => {
            return Err(ext
                .loaded
                .error(&at("failStrategy"), format!("unknown strategy `{other}`")));
        }
    };
    let local = if ext.url.starts_with("oci://") {
        pulled_module(ext, env)?
    } else if ext.url.starts_with("file://") {
        file_module(ext, env)?
    } else {
        return Err(ext.loaded.error(
            &at("url"),
            format!(
                "`{}`: only oci:// and file:// modules are translated (the test machine has no web server)",
                ext.url
            ),
        ));
    };
    let qualified = format!("{}.{}", ext.metadata.namespace(), ext.name);
    let mut vm_config = json!({
        "runtime": "envoy.wasm.runtime.v8",
        "code": { "local": { "filename": local.to_string_lossy() } },
    });
    if ext.url.starts_with("file://")
        && let Some(vm) = vm_config.as_object_mut()
    {
        let mut env = serde_json::Map::new();
        if let Some(p) = ext.image_pull_policy.filter(|p| *p != "UNSPECIFIED_POLICY") {
            env.insert(WASM_POLICY_ENV.into(), json!(p));
        }
        env.insert(
            WASM_RESOURCE_VERSION_ENV.into(),
            json!(ext.resource_version),
        );
        vm.insert("environment_variables".into(), json!({ "key_values": env }));
    }
    let mut config = serde_json::Map::new();
    config.insert("name".into(), json!(qualified));
    config.insert("root_id".into(), json!(ext.plugin_name));
    config.insert("vm_config".into(), vm_config);
    if let Some(map) = ext.plugin_config.filter(|m| !m.is_empty()) {
        config.insert(
            "configuration".into(),
            json!({
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": serde_json::to_string(map).unwrap_or_default(),
            }),
        );
    }
    config.insert("failure_policy".into(), json!(failure_policy));
    Ok(WasmFilterConfig {
        resource_name: format!("{RESOURCE_NAME_PREFIX}{qualified}"),
        plugin_name: qualified.clone(),
        ecds_file: format!("{ECDS_DIR}/{qualified}.json"),
        phase,
        typed_config: json!({ "@type": WASM_TYPE_URL, "config": config }),
    })
}

/// A `file://` module: its file, checked against the pin like a download.
fn file_module<T>(ext: &Extension<'_, T>, env: &Environment) -> Result<PathBuf, TranslateError> {
    let at = |field: &str| format!("{}.{field}", ext.wasm_path);
    let local = env.wasm_files.get(ext.url).ok_or_else(|| {
        ext.loaded.error(
            &at("url"),
            format!(
                "`{}` is not mapped to a module on this machine (Environment::wasm_files)",
                ext.url
            ),
        )
    })?;
    let bytes = std::fs::read(local).map_err(|e| {
        ext.loaded.error(
            &at("url"),
            format!("{} (for `{}`): {e}", local.display(), ext.url),
        )
    })?;
    if let Some(want) = ext.sha256 {
        let have = sha256_hex(&bytes);
        if !want.eq_ignore_ascii_case(&have) {
            return Err(ext.loaded.error(
                &at("sha256"),
                format!(
                    "the manifest pins {want}, but {} has sha256 {have} (the stand-in refuses it; Istio does not check a file:// module, so the pin would go stale unnoticed)",
                    local.display()
                ),
            ));
        }
    }
    Ok(local.clone())
}

/// An `oci://` module as istio-agent pulls it (pkg/wasm/cache.go, imagefetcher.go): the
/// pin is compared with the image's manifest digest, not the module's sha256, then
/// `plugin.wasm` is extracted. Envoy loads the mapped module file, which must hold it.
fn pulled_module<T>(ext: &Extension<'_, T>, env: &Environment) -> Result<PathBuf, TranslateError> {
    let at = |field: &str| format!("{}.{field}", ext.wasm_path);
    let image = env.wasm_images.get(ext.url).ok_or_else(|| {
        ext.loaded.error(
            &at("url"),
            format!(
                "`{}` is not mapped to an image on this machine (Environment::wasm_images)",
                ext.url
            ),
        )
    })?;
    let pulled = geolb_image::read_layout(&image.layout, None).map_err(|e| {
        ext.loaded.error(
            &at("url"),
            format!(
                "the image for `{}` (layout {}): {e}; run scripts/build-wasm.sh",
                ext.url,
                image.layout.display()
            ),
        )
    })?;
    if let Some(want) = ext.sha256
        && !want.eq_ignore_ascii_case(pulled.manifest_digest_hex())
    {
        return Err(ext.loaded.error(
            &at("sha256"),
            format!(
                "the manifest pins {want}, but the image for `{}` (layout {}) has manifest digest {}; istio-agent compares an oci:// pin with the manifest digest and would refuse the image (after a module change: scripts/bless.sh)",
                ext.url,
                image.layout.display(),
                pulled.manifest_digest
            ),
        ));
    }
    let module = std::fs::read(&image.module).map_err(|e| {
        ext.loaded.error(
            &at("url"),
            format!("{} (for `{}`): {e}", image.module.display(), ext.url),
        )
    })?;
    if module != pulled.module {
        return Err(ext.loaded.error(
            &at("url"),
            format!(
                "the plugin.wasm of the image for `{}` (layout {}, sha256 {}) is not {} (sha256 {}): run scripts/build-wasm.sh",
                ext.url,
                image.layout.display(),
                sha256_hex(&pulled.module),
                image.module.display(),
                sha256_hex(&module)
            ),
        ));
    }
    Ok(image.module.clone())
}

/// The wasm filters that apply to `proxy`'s client-side chains, in execution order
/// (phase, then priority descending, then namespace/name).
pub fn filters_for(
    manifests: &super::ClusterManifests,
    proxy: &Proxy,
    env: &Environment,
) -> Result<Vec<WasmFilterConfig>, TranslateError> {
    let mut ordered: BTreeMap<(Phase, i64, String, String), WasmFilterConfig> = BTreeMap::new();
    for p in &manifests.wasm_plugins {
        let s = &p.value.spec;
        let ext = Extension {
            loaded: p,
            metadata: &p.value.metadata,
            name: format!("{}{TRANSLATED_WASMPLUGIN_MARKER}", p.value.metadata.name),
            resource_version: resource_version(&p.value),
            wasm_path: "spec",
            selector: s.selector.as_ref(),
            matches: &s.matches,
            phase: s.phase.as_deref(),
            priority: s.priority.unwrap_or(0),
            url: &s.url,
            sha256: s.sha256.as_deref(),
            plugin_name: &s.plugin_name,
            fail_strategy: s.fail_strategy.as_deref(),
            plugin_type: s.plugin_type.as_deref(),
            image_pull_policy: s.image_pull_policy.as_deref(),
            plugin_config: s.plugin_config.as_ref(),
        };
        insert(&mut ordered, &ext, proxy, env)?;
    }
    for t in &manifests.traffic_extensions {
        let s = &t.value.spec;
        let ext = Extension {
            loaded: t,
            metadata: &t.value.metadata,
            name: t.value.metadata.name.clone(),
            resource_version: resource_version(&t.value),
            wasm_path: "spec.wasm",
            selector: s.selector.as_ref(),
            matches: &s.matches,
            phase: s.phase.as_deref(),
            priority: s.priority.unwrap_or(0),
            url: &s.wasm.url,
            sha256: s.wasm.sha256.as_deref(),
            plugin_name: &s.wasm.plugin_name,
            fail_strategy: s.wasm.fail_strategy.as_deref(),
            plugin_type: s.wasm.plugin_type.as_deref(),
            image_pull_policy: s.wasm.image_pull_policy.as_deref(),
            plugin_config: s.wasm.plugin_config.as_ref(),
        };
        insert(&mut ordered, &ext, proxy, env)?;
    }
    Ok(ordered.into_values().collect())
}

fn insert<T>(
    ordered: &mut BTreeMap<(Phase, i64, String, String), WasmFilterConfig>,
    ext: &Extension<'_, T>,
    proxy: &Proxy,
    env: &Environment,
) -> Result<(), TranslateError> {
    let rank = phase_of(ext.phase).ok_or_else(|| {
        ext.loaded.error(
            "spec.phase",
            format!("unknown phase `{}`", ext.phase.unwrap_or_default()),
        )
    })?;
    if !applies(ext, proxy)? {
        return Ok(());
    }
    let config = filter_config(ext, env, rank)?;
    ordered.insert(
        (
            rank,
            -i64::from(ext.priority),
            ext.metadata.namespace().to_string(),
            ext.metadata.name.clone(),
        ),
        config,
    );
    Ok(())
}
