//! Tests of the CRD validator in `tests/support/crd.rs` itself: hand-written manifests of every
//! kind geolb emits must pass, and each must fail for an unknown field, a wrong type, a missing
//! required field, an enum violation and a violated CEL rule.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)] // each test binary uses a part of the shared support
mod support;

use serde_json::{Value as Json, json};
use support::crd::{self, Report, Validator};

fn v() -> &'static Validator {
    crd::validator()
}

// ---------------------------------------------------------------------------------------------
// Valid manifests, one per kind geolb emits (shapes from Istio 1.30.3 CRDs and
// docs/routing-contract.md).
// ---------------------------------------------------------------------------------------------

const DESTINATION_RULE: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews-geolb
  namespace: bookinfo
  labels:
    app.kubernetes.io/managed-by: geolb
  annotations:
    geolb.io/policy-version: "7"
spec:
  host: reviews.bookinfo.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        failover:
        - from: cn-hangzhou
          to: cn-shanghai
        - from: cn-shanghai
          to: cn-hangzhou
    outlierDetection:
      consecutive5xxErrors: 3
      consecutiveGatewayErrors: 3
      interval: 5s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
      minHealthPercent: 0
  subsets:
  - name: geolb-cn-hangzhou
    trafficPolicy:
      loadBalancer:
        simple: LEAST_REQUEST
        localityLbSetting:
          enabled: true
          failoverPriority:
          - topology.kubernetes.io/region=cn-hangzhou
          - topology.kubernetes.io/region=cn-shanghai
      outlierDetection:
        consecutive5xxErrors: 1
        interval: 1s
        baseEjectionTime: 15s
        maxEjectionPercent: 100
      connectionPool:
        http:
          idleTimeout: 60s
  - name: geolb-cn-shanghai
    labels:
      topology.kubernetes.io/region: cn-shanghai
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
        localityLbSetting:
          enabled: true
          failoverPriority:
          - topology.istio.io/network=network2
      outlierDetection:
        consecutive5xxErrors: 1
        interval: 1s
        baseEjectionTime: 15s
        maxEjectionPercent: 100
"#;

const VIRTUAL_SERVICE: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-geolb
  namespace: bookinfo
spec:
  hosts:
  - reviews.bookinfo.svc.cluster.local
  http:
  - name: geolb-cn-hangzhou
    match:
    - headers:
        x-geolb-region:
          exact: cn-hangzhou
    headers:
      request:
        remove:
        - x-geolb-region
    route:
    - destination:
        host: reviews.bookinfo.svc.cluster.local
        subset: geolb-cn-hangzhou
        port:
          number: 9080
    retries:
      attempts: 2
      perTryTimeout: 2s
      retryOn: connect-failure,refused-stream,reset,503
      retryRemoteLocalities: true
    timeout: 10s
  - name: geolb-cn-shanghai
    match:
    - headers:
        x-geolb-region:
          exact: cn-shanghai
    headers:
      request:
        remove:
        - x-geolb-region
    route:
    - destination:
        host: reviews.bookinfo.svc.cluster.local
        subset: geolb-cn-shanghai
    retries:
      attempts: 2
      perTryTimeout: 500ms
      retryOn: connect-failure,refused-stream,reset,503
  - name: geolb-fail-open
    route:
    - destination:
        host: reviews.bookinfo.svc.cluster.local
    retries:
      attempts: 2
      retryOn: connect-failure,refused-stream,reset,503
"#;

/// expose-services.yaml (D.2) and expose-istiod.yaml (D.3), with namespaces.
const GATEWAYS: &str = r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: cross-network-gateway
  namespace: istio-system
spec:
  selector:
    istio: eastwestgateway
  servers:
    - port:
        number: 15443
        name: tls
        protocol: TLS
      tls:
        mode: AUTO_PASSTHROUGH
      hosts:
        - "*.local"
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istiod-gateway
  namespace: istio-system
spec:
  selector:
    istio: eastwestgateway
  servers:
    - port:
        name: tls-istiod
        number: 15012
        protocol: tls
      tls:
        mode: PASSTHROUGH
      hosts:
        - "*"
    - port:
        name: tls-istiodwebhook
        number: 15017
        protocol: tls
      tls:
        mode: PASSTHROUGH
      hosts:
        - "*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: istiod-vs
  namespace: istio-system
spec:
  hosts:
  - "*"
  gateways:
  - istiod-gateway
  tls:
  - match:
    - port: 15012
      sniHosts:
      - "*"
    route:
    - destination:
        host: istiod.istio-system.svc.cluster.local
        port:
          number: 15012
  - match:
    - port: 15017
      sniHosts:
      - "*"
    route:
    - destination:
        host: istiod.istio-system.svc.cluster.local
        port:
          number: 443
"#;

const WASM_PLUGIN: &str = r#"
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: geolb
  namespace: bookinfo
spec:
  selector:
    matchLabels:
      app: productpage
  url: https://artifacts.example.com/geolb/geolb_filter-0.1.0.wasm
  sha256: 0f2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809
  imagePullPolicy: IfNotPresent
  pluginName: geolb
  failStrategy: FAIL_OPEN
  phase: UNSPECIFIED_PHASE
  priority: 10
  type: HTTP
  match:
  - mode: CLIENT
    ports:
    - number: 9080
  vmConfig:
    env:
    - name: GEOLB_LOG
      value: info
  pluginConfig:
    version: 7
    header: x-geolb-region
    services:
    - host: reviews.bookinfo.svc.cluster.local
      regions:
        cn-hangzhou: {weight: 90, failover: [cn-shanghai]}
        cn-shanghai: {weight: 10, failover: [cn-hangzhou]}
    health:
      statuses: [502, 503, 504]
      ejectAfter: 3
      probe: null
"#;

const WASM_PLUGIN_OCI: &str = r#"
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: geolb-eastwest
  namespace: istio-system
spec:
  selector:
    matchLabels:
      istio: eastwestgateway
  url: oci://ghcr.io/geolb/geolb-filter:0.1.0
  failStrategy: FAIL_CLOSE
  phase: AUTHN
  match:
  - mode: CLIENT_AND_SERVER
"#;

const TRAFFIC_EXTENSION: &str = r#"
apiVersion: extensions.istio.io/v1alpha1
kind: TrafficExtension
metadata:
  name: geolb
  namespace: bookinfo
spec:
  selector:
    matchLabels:
      app: productpage
  phase: UNSPECIFIED
  priority: 10
  match:
  - mode: CLIENT
    ports:
    - number: 9080
  wasm:
    url: file:///var/local/lib/wasm/geolb_filter.wasm
    sha256: 0f2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809
    pluginName: geolb
    failStrategy: FAIL_OPEN
    type: HTTP
    pluginConfig:
      version: 7
      header: x-geolb-region
"#;

const CORE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
  labels:
    topology.istio.io/network: network1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  meshNetworks: |-
    networks:
      network1:
        endpoints:
        - fromRegistry: cluster1
        gateways:
        - registryServiceName: istio-eastwestgateway.istio-system.svc.cluster.local
          port: 15443
  geolb.policy.json: '{"version": 7}'
---
apiVersion: v1
kind: Service
metadata:
  name: istio-eastwestgateway
  namespace: istio-system
  labels:
    topology.istio.io/network: network1
spec:
  type: LoadBalancer
  selector:
    istio: eastwestgateway
  ports:
  - name: status-port
    port: 15021
    targetPort: 15021
  - name: tls
    port: 15443
    targetPort: 15443
"#;

const ISTIO_OPERATOR: &str = r#"
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: eastwest
  namespace: istio-system
spec:
  revision: ""
  profile: empty
  components:
    ingressGateways:
      - name: istio-eastwestgateway
        label:
          istio: eastwestgateway
          app: istio-eastwestgateway
          topology.istio.io/network: network1
        enabled: true
        k8s:
          env:
            - name: ISTIO_META_REQUESTED_NETWORK_VIEW
              value: network1
          service:
            ports:
              - name: status-port
                port: 15021
                targetPort: 15021
              - name: tls
                port: 15443
                targetPort: 15443
  values:
    gateways:
      istio-ingressgateway:
        injectionTemplate: gateway
    global:
      network: network1
      meshID: mesh1
      multiCluster:
        clusterName: cluster1
"#;

const KUSTOMIZATION: &str = r#"
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: bookinfo
resources:
- destinationrule.yaml
- virtualservice.yaml
- wasmplugin.yaml
commonLabels:
  app.kubernetes.io/managed-by: geolb
"#;

const ALL_VALID: &[(&str, &str)] = &[
    ("DestinationRule", DESTINATION_RULE),
    ("VirtualService", VIRTUAL_SERVICE),
    ("Gateways", GATEWAYS),
    ("WasmPlugin", WASM_PLUGIN),
    ("WasmPlugin (oci)", WASM_PLUGIN_OCI),
    ("TrafficExtension", TRAFFIC_EXTENSION),
    ("core", CORE),
    ("IstioOperator", ISTIO_OPERATOR),
    ("Kustomization", KUSTOMIZATION),
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn doc(yaml: &str) -> Json {
    let docs = crd::parse_yaml_stream(yaml).expect("fixture parses");
    docs.into_iter()
        .flatten()
        .next()
        .expect("fixture has a document")
}

/// Sets `pointer` (JSON pointer) to `value`, creating intermediate objects.
fn set(d: &mut Json, pointer: &str, value: Json) {
    let mut cur = d;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let parts: Vec<String> = parts
        .iter()
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, p) in parts.iter().enumerate() {
        let p = p.as_str();
        let last = i + 1 == parts.len();
        cur = match cur {
            Json::Array(a) => {
                let idx: usize = p
                    .parse()
                    .unwrap_or_else(|_| panic!("{pointer}: {p} is not an index"));
                if last {
                    a[idx] = value;
                    return;
                }
                &mut a[idx]
            }
            Json::Object(o) => {
                if last {
                    o.insert(p.to_owned(), value);
                    return;
                }
                o.entry(p.to_owned()).or_insert_with(|| json!({}))
            }
            other => panic!("{pointer}: cannot descend into {other}"),
        };
    }
}

fn remove(d: &mut Json, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let p = d
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{parent} missing"));
    let removed = p.as_object_mut().and_then(|o| o.remove(key));
    assert!(removed.is_some(), "{pointer} was not present");
}

/// Mutates the first document of `yaml`, renders it back to YAML and validates the text.
fn mutated(yaml: &str, f: impl FnOnce(&mut Json)) -> Report {
    let mut d = doc(yaml);
    f(&mut d);
    let text = serde_norway::to_string(&d).expect("render YAML");
    v().validate_documents(&text, "mutated.yaml")
}

#[track_caller]
fn expect_error(yaml: &str, what: &str, f: impl FnOnce(&mut Json), needles: &[&str]) {
    let r = mutated(yaml, f);
    assert!(
        r.errors
            .iter()
            .any(|e| needles.iter().all(|n| e.contains(n))),
        "{what}: expected an error containing {needles:?}\n{}",
        r.render()
    );
}

// ---------------------------------------------------------------------------------------------
// The validator itself
// ---------------------------------------------------------------------------------------------

#[test]
fn loads_every_served_version_of_every_crd() {
    let kinds = v().kinds();
    for (av, k) in [
        ("networking.istio.io/v1", "DestinationRule"),
        ("networking.istio.io/v1beta1", "DestinationRule"),
        ("networking.istio.io/v1alpha3", "DestinationRule"),
        ("networking.istio.io/v1", "VirtualService"),
        ("networking.istio.io/v1", "Gateway"),
        ("extensions.istio.io/v1alpha1", "WasmPlugin"),
        ("extensions.istio.io/v1alpha1", "TrafficExtension"),
        ("security.istio.io/v1", "AuthorizationPolicy"),
        ("telemetry.istio.io/v1", "Telemetry"),
    ] {
        assert!(
            kinds.contains(&(av.to_owned(), k.to_owned())),
            "{k} {av} not loaded; have {kinds:?}"
        );
    }
    assert!(
        kinds.len() >= 30,
        "expected every served version, got {}",
        kinds.len()
    );
}

#[test]
fn cel_rules_not_evaluable_are_listed_and_few() {
    let rules = v().cel_rules();
    let bad = v().unevaluable_rules();
    println!(
        "{} CEL rule sites in the CRD file (+ hand-written), {} not evaluable with the `cel` crate + geolb's Kubernetes extensions:",
        rules.len(),
        bad.len()
    );
    for b in &bad {
        println!("  - {b}");
    }
    assert!(
        rules.len() >= 362,
        "expected every rule of the CRD file, got {}",
        rules.len()
    );
    assert!(
        bad.is_empty(),
        "CEL rules that cannot be evaluated:\n{}",
        bad.join("\n")
    );
}

#[test]
fn valid_manifests_pass() {
    for (name, yaml) in ALL_VALID {
        let r = v().validate_documents(yaml, name);
        assert!(r.is_clean(), "{name} should be valid\n{}", r.render());
        assert!(r.documents >= 1, "{name}: no document validated");
    }
}

#[test]
fn valid_manifests_evaluate_cel_rules() {
    let r = v().validate_documents(DESTINATION_RULE, "dr.yaml");
    // durations (interval, baseEjectionTime, idleTimeout...) are CEL-checked
    assert!(r.cel_evaluations >= 6, "{}", r.render());
    let r = v().validate_documents(WASM_PLUGIN, "wasm.yaml");
    // spec one-of, matchLabels key/value rules, url scheme
    assert!(r.cel_evaluations >= 4, "{}", r.render());
}

#[test]
fn a_whole_stream_validates_and_reports_document_indexes() {
    let stream = ALL_VALID
        .iter()
        .map(|(_, y)| y.trim())
        .collect::<Vec<_>>()
        .join("\n---\n");
    let r = v().validate_documents(&stream, "all.yaml");
    r.assert_clean();
    assert_eq!(r.documents, 13, "{}", r.render());
    // Kustomization and IstioOperator have only partial hand-written schemas: reported.
    assert!(
        r.no_schema.iter().any(|n| n.contains("IstioOperator")),
        "{}",
        r.render()
    );
    assert!(
        r.no_schema.iter().any(|n| n.contains("Kustomization")),
        "{}",
        r.render()
    );

    let broken = stream.replacen("interval: 5s", "interval: 0s", 1);
    let r = v().validate_documents(&broken, "all.yaml");
    r.assert_error_containing(&[
        "all.yaml doc#0 DestinationRule/reviews-geolb",
        "spec.trafficPolicy.outlierDetection.interval",
        "must be a valid duration greater than 1ms",
    ]);
    let broken = stream.replacen("mode: PASSTHROUGH", "mode: PASSTHRU", 1);
    let r = v().validate_documents(&broken, "all.yaml");
    r.assert_error_containing(&[
        "doc#3 Gateway/istiod-gateway",
        "spec.servers[0].tls.mode",
        "PASSTHRU",
    ]);
}

#[test]
fn validate_dir_walks_yaml_files() {
    let dir = std::env::temp_dir().join(format!("geolb-crd-validator-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("cluster1")).unwrap();
    std::fs::write(dir.join("cluster1/dr.yaml"), DESTINATION_RULE).unwrap();
    std::fs::write(dir.join("cluster1/vs.yml"), VIRTUAL_SERVICE).unwrap();
    std::fs::write(
        dir.join("wasm.yaml"),
        WASM_PLUGIN.replace("FAIL_OPEN", "FAIL_WHENEVER"),
    )
    .unwrap();
    std::fs::write(dir.join("README.md"), "not yaml").unwrap();
    let r = v().validate_dir(&dir);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(r.documents, 3, "{}", r.render());
    assert_eq!(r.errors.len(), 1, "{}", r.render());
    r.assert_error_containing(&[
        "wasm.yaml doc#0 WasmPlugin/geolb",
        "spec.failStrategy",
        "FAIL_WHENEVER",
    ]);
    let msg = std::panic::catch_unwind(|| r.assert_clean()).expect_err("assert_clean must panic");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("spec.failStrategy") && msg.contains("1 error(s)"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Each kind must fail: unknown field, wrong type, missing required field, enum, CEL rule
// ---------------------------------------------------------------------------------------------

#[test]
fn destination_rule_failures() {
    let y = DESTINATION_RULE;
    expect_error(
        y,
        "unknown field",
        |d| {
            set(
                d,
                "/spec/trafficPolicy/outlierDetection/maxEjectionPercnt",
                json!(100),
            )
        },
        &[
            "spec.trafficPolicy.outlierDetection.maxEjectionPercnt",
            "unknown field",
        ],
    );
    expect_error(
        y,
        "unknown field in a subset",
        |d| {
            set(
                d,
                "/spec/subsets/0/trafficPolicy/loadBalancer/localityLbSetting/failoverPriorities",
                json!(["a"]),
            )
        },
        &[
            "spec.subsets[0].trafficPolicy.loadBalancer.localityLbSetting.failoverPriorities",
            "unknown field",
        ],
    );
    expect_error(
        y,
        "wrong type",
        |d| {
            set(
                d,
                "/spec/trafficPolicy/outlierDetection/maxEjectionPercent",
                json!("100"),
            )
        },
        &[
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
            "must be of type integer",
            "string \"100\"",
        ],
    );
    expect_error(
        y,
        "wrong type (list)",
        |d| {
            set(
                d,
                "/spec/subsets/0/trafficPolicy/loadBalancer/localityLbSetting/failoverPriority",
                json!("topology.kubernetes.io/region"),
            )
        },
        &["failoverPriority", "must be of type array"],
    );
    expect_error(
        y,
        "missing host",
        |d| remove(d, "/spec/host"),
        &["spec.host", "required field missing"],
    );
    expect_error(
        y,
        "missing subset name",
        |d| remove(d, "/spec/subsets/1/name"),
        &["spec.subsets[1].name", "required field missing"],
    );
    expect_error(
        y,
        "enum",
        |d| {
            set(
                d,
                "/spec/trafficPolicy/loadBalancer/simple",
                json!("ROUND_ROBINISH"),
            )
        },
        &[
            "spec.trafficPolicy.loadBalancer.simple",
            "unsupported value",
            "ROUND_ROBINISH",
            "LEAST_REQUEST",
        ],
    );
    expect_error(
        y,
        "CEL duration rule",
        |d| {
            set(
                d,
                "/spec/subsets/0/trafficPolicy/outlierDetection/interval",
                json!("0s"),
            )
        },
        &[
            "spec.subsets[0].trafficPolicy.outlierDetection.interval",
            "must be a valid duration greater than 1ms",
        ],
    );
    expect_error(
        y,
        "CEL duration rule, unparsable",
        |d| {
            set(
                d,
                "/spec/trafficPolicy/outlierDetection/baseEjectionTime",
                json!("thirty seconds"),
            )
        },
        &[
            "spec.trafficPolicy.outlierDetection.baseEjectionTime",
            "failed to evaluate",
        ],
    );
    expect_error(
        y,
        "CEL wildcard label rule",
        |d| {
            set(
                d,
                "/spec/workloadSelector/matchLabels",
                json!({"app": "review*"}),
            )
        },
        &[
            "spec.workloadSelector.matchLabels[app]",
            "wildcard not allowed in label value match",
        ],
    );
    expect_error(
        y,
        "oneOf: simple and consistentHash",
        |d| {
            set(
                d,
                "/spec/trafficPolicy/loadBalancer/consistentHash",
                json!({"useSourceIp": true}),
            )
        },
        &[
            "spec.trafficPolicy.loadBalancer",
            "at most one of",
            "simple",
            "consistentHash",
        ],
    );
    expect_error(
        y,
        "distribute weights are integers",
        |d| {
            set(
                d,
                "/spec/trafficPolicy/loadBalancer/localityLbSetting/distribute",
                json!([{"from": "a/*", "to": {"a/*": "80"}}]),
            )
        },
        &[
            "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to[a/*]",
            "must be of type integer",
        ],
    );
}

#[test]
fn virtual_service_failures() {
    let y = VIRTUAL_SERVICE;
    expect_error(
        y,
        "unknown field",
        |d| set(d, "/spec/http/0/retries/retryOnn", json!("5xx")),
        &["spec.http[0].retries.retryOnn", "unknown field"],
    );
    expect_error(
        y,
        "unknown field in header match",
        |d| {
            set(
                d,
                "/spec/http/0/match/0/headers/x-geolb-region",
                json!({"equals": "cn-hangzhou"}),
            )
        },
        &[
            "spec.http[0].match[0].headers[x-geolb-region].equals",
            "unknown field",
        ],
    );
    expect_error(
        y,
        "wrong type",
        |d| set(d, "/spec/http/0/retries/attempts", json!("2")),
        &["spec.http[0].retries.attempts", "must be of type integer"],
    );
    expect_error(
        y,
        "wrong type: remove is a list",
        |d| {
            set(
                d,
                "/spec/http/0/headers/request/remove",
                json!("x-geolb-region"),
            )
        },
        &[
            "spec.http[0].headers.request.remove",
            "must be of type array",
        ],
    );
    expect_error(
        y,
        "missing destination host",
        |d| remove(d, "/spec/http/1/route/0/destination/host"),
        &[
            "spec.http[1].route[0].destination.host",
            "required field missing",
        ],
    );
    expect_error(
        y,
        "enum",
        |d| {
            set(
                d,
                "/spec/http/2/corsPolicy",
                json!({"unmatchedPreflights": "DROP"}),
            )
        },
        &[
            "spec.http[2].corsPolicy.unmatchedPreflights",
            "unsupported value",
        ],
    );
    expect_error(
        y,
        "CEL duration rule",
        |d| set(d, "/spec/http/0/retries/perTryTimeout", json!("0s")),
        &[
            "spec.http[0].retries.perTryTimeout",
            "must be a valid duration greater than 1ms",
        ],
    );
    expect_error(
        y,
        "CEL duration rule on timeout",
        |d| set(d, "/spec/http/0/timeout", json!("0.0001s")),
        &["spec.http[0].timeout", "greater than 1ms"],
    );
    expect_error(
        y,
        "oneOf: exact and prefix",
        |d| {
            set(
                d,
                "/spec/http/0/match/0/headers/x-geolb-region/prefix",
                json!("cn-"),
            )
        },
        &[
            "spec.http[0].match[0].headers[x-geolb-region]",
            "at most one of",
        ],
    );
}

#[test]
fn gateway_failures() {
    let y = GATEWAYS;
    expect_error(
        y,
        "unknown field",
        |d| set(d, "/spec/servers/0/port/protocl", json!("TLS")),
        &["spec.servers[0].port.protocl", "unknown field"],
    );
    expect_error(
        y,
        "wrong type",
        |d| set(d, "/spec/servers/0/port/number", json!("15443")),
        &["spec.servers[0].port.number", "must be of type integer"],
    );
    expect_error(
        y,
        "wrong type: hosts",
        |d| set(d, "/spec/servers/0/hosts", json!("*.local")),
        &["spec.servers[0].hosts", "must be of type array"],
    );
    expect_error(
        y,
        "missing hosts",
        |d| remove(d, "/spec/servers/0/hosts"),
        &["spec.servers[0].hosts", "required field missing"],
    );
    expect_error(
        y,
        "missing port name",
        |d| remove(d, "/spec/servers/0/port/name"),
        &["spec.servers[0].port.name", "required field missing"],
    );
    expect_error(
        y,
        "enum",
        |d| set(d, "/spec/servers/0/tls/mode", json!("AUTO_PASSTHRU")),
        &[
            "spec.servers[0].tls.mode",
            "unsupported value",
            "AUTO_PASSTHROUGH",
        ],
    );
    expect_error(
        y,
        "CEL: credentialName and credentialNames",
        |d| {
            set(
                d,
                "/spec/servers/0/tls",
                json!({"mode": "SIMPLE", "credentialName": "a", "credentialNames": ["b"]}),
            )
        },
        &[
            "spec.servers[0].tls",
            "only one of credentialName or credentialNames can be set",
        ],
    );
    expect_error(
        y,
        "port range (the CRD allows 0..=4294967295; istiod's webhook is stricter)",
        |d| set(d, "/spec/servers/0/port/number", json!(-1)),
        &["spec.servers[0].port.number", ">= 0"],
    );
}

#[test]
fn wasm_plugin_failures() {
    let y = WASM_PLUGIN;
    expect_error(
        y,
        "unknown field",
        |d| set(d, "/spec/pluginConf", json!({})),
        &["spec.pluginConf", "unknown field"],
    );
    expect_error(
        y,
        "wrong type",
        |d| set(d, "/spec/priority", json!("10")),
        &["spec.priority", "must be of type integer"],
    );
    expect_error(
        y,
        "int32",
        |d| set(d, "/spec/priority", json!(3_000_000_000_i64)),
        &["spec.priority", "int32"],
    );
    expect_error(
        y,
        "wrong type: pluginConfig",
        |d| set(d, "/spec/pluginConfig", json!("{}")),
        &["spec.pluginConfig", "must be of type object"],
    );
    expect_error(
        y,
        "missing url",
        |d| remove(d, "/spec/url"),
        &["spec.url", "required field missing"],
    );
    expect_error(
        y,
        "missing match port number",
        |d| set(d, "/spec/match/0/ports/0", json!({})),
        &["spec.match[0].ports[0].number", "required field missing"],
    );
    expect_error(
        y,
        "enum",
        |d| set(d, "/spec/failStrategy", json!("FAIL_OPENLY")),
        &["spec.failStrategy", "unsupported value", "FAIL_RELOAD"],
    );
    expect_error(
        y,
        "enum: match mode",
        |d| set(d, "/spec/match/0/mode", json!("OUTBOUND")),
        &["spec.match[0].mode", "unsupported value"],
    );
    expect_error(
        y,
        "CEL: selector and targetRefs",
        |d| {
            set(
                d,
                "/spec/targetRefs",
                json!([{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "gw"}]),
            )
        },
        &[
            "mutated.yaml doc#0 WasmPlugin/geolb: spec:",
            "only one of targetRefs or selector can be set",
        ],
    );
    expect_error(
        y,
        "CEL: url scheme",
        |d| {
            set(
                d,
                "/spec/url",
                json!("ftp://artifacts.example.com/geolb.wasm"),
            )
        },
        &[
            "spec.url",
            "url must have schema one of [http, https, file, oci]",
        ],
    );
    expect_error(
        y,
        "CEL: env value with valueFrom HOST",
        |d| set(d, "/spec/vmConfig/env/0/valueFrom", json!("HOST")),
        &[
            "spec.vmConfig.env[0]",
            "value may only be set when valueFrom is INLINE",
        ],
    );
    expect_error(
        y,
        "CEL: wildcard label key",
        |d| set(d, "/spec/selector/matchLabels", json!({"app*": "x"})),
        &[
            "spec.selector.matchLabels",
            "wildcard not allowed in label key match",
        ],
    );
    expect_error(
        y,
        "pattern",
        |d| set(d, "/spec/sha256", json!("ABC")),
        &["spec.sha256", "does not match pattern"],
    );
    expect_error(
        y,
        "list-map key unique",
        |d| {
            set(
                d,
                "/spec/match/0/ports",
                json!([{"number": 9080}, {"number": 9080}]),
            )
        },
        &["spec.match[0].ports[1]", "duplicate entry"],
    );
    // A scheme-less URL is fine (oci:// is implied), as the rule's "http://" + self branch says.
    let r = mutated(y, |d| {
        set(d, "/spec/url", json!("ghcr.io/geolb/geolb-filter:0.1.0"))
    });
    r.assert_clean();
}

#[test]
fn traffic_extension_failures() {
    let y = TRAFFIC_EXTENSION;
    expect_error(
        y,
        "unknown field",
        |d| set(d, "/spec/wasm/pluginConf", json!({})),
        &["spec.wasm.pluginConf", "unknown field"],
    );
    expect_error(
        y,
        "wrong type",
        |d| set(d, "/spec/match/0/ports/0/number", json!("9080")),
        &["spec.match[0].ports[0].number", "must be of type integer"],
    );
    expect_error(
        y,
        "missing wasm url",
        |d| remove(d, "/spec/wasm/url"),
        &["spec.wasm.url", "required field missing"],
    );
    expect_error(
        y,
        "enum: WasmPlugin's phase name is not TrafficExtension's",
        |d| set(d, "/spec/phase", json!("UNSPECIFIED_PHASE")),
        &["spec.phase", "unsupported value", "UNSPECIFIED_PHASE"],
    );
    expect_error(
        y,
        "CEL: wasm and lua",
        |d| {
            set(
                d,
                "/spec/lua",
                json!({"inlineCode": "function envoy_on_request(h) end"}),
            )
        },
        &["spec", "exactly one of wasm or lua must be set"],
    );
    expect_error(
        y,
        "CEL: neither wasm nor lua",
        |d| remove(d, "/spec/wasm"),
        &["spec", "exactly one of wasm or lua must be set"],
    );
    expect_error(
        y,
        "CEL: wasm url scheme",
        |d| set(d, "/spec/wasm/url", json!("s3://bucket/geolb.wasm")),
        &["spec.wasm.url", "url must have schema"],
    );
}

#[test]
fn metadata_and_envelope_failures() {
    expect_error(
        DESTINATION_RULE,
        "no name",
        |d| remove(d, "/metadata/name"),
        &["metadata.name", "required field missing"],
    );
    expect_error(
        DESTINATION_RULE,
        "bad name",
        |d| set(d, "/metadata/name", json!("Reviews_GeoLB")),
        &["metadata.name", "DNS-1123 subdomain"],
    );
    expect_error(
        DESTINATION_RULE,
        "no namespace",
        |d| remove(d, "/metadata/namespace"),
        &["metadata.namespace", "required"],
    );
    expect_error(
        DESTINATION_RULE,
        "unknown metadata field",
        |d| set(d, "/metadata/label", json!({"a": "b"})),
        &["metadata.label", "unknown field"],
    );
    expect_error(
        DESTINATION_RULE,
        "label value not a string",
        |d| set(d, "/metadata/labels/geolb.io~1version", json!(7)),
        &["metadata.labels[geolb.io/version]", "must be a string"],
    );
    expect_error(
        DESTINATION_RULE,
        "bad label value",
        |d| set(d, "/metadata/labels/region", json!("cn hangzhou")),
        &["metadata.labels[region]", "invalid label value"],
    );
    expect_error(
        DESTINATION_RULE,
        "unknown top-level field",
        |d| set(d, "/specs", json!({})),
        &["specs", "unknown field"],
    );
    // WasmPlugin's schema requires spec (DestinationRule's does not).
    expect_error(
        WASM_PLUGIN,
        "missing spec",
        |d| remove(d, "/spec"),
        &["WasmPlugin/geolb: spec: required field missing"],
    );
    expect_error(
        GATEWAYS,
        "unserved version",
        |d| set(d, "/apiVersion", json!("networking.istio.io/v2")),
        &["no matches for kind \"Gateway\" in version \"networking.istio.io/v2\""],
    );
    expect_error(
        GATEWAYS,
        "unknown kind in an Istio group",
        |d| set(d, "/kind", json!("Gateways")),
        &["no matches for kind \"Gateways\""],
    );
    expect_error(
        GATEWAYS,
        "no kind",
        |d| remove(d, "/kind"),
        &["kind: required"],
    );
    expect_error(
        GATEWAYS,
        "no apiVersion",
        |d| remove(d, "/apiVersion"),
        &["apiVersion: required"],
    );
    // null for a non-nullable field
    expect_error(
        VIRTUAL_SERVICE,
        "null",
        |d| set(d, "/spec/http/0/timeout", Json::Null),
        &["spec.http[0].timeout", "null is not allowed"],
    );
    // nullable fields may be null
    mutated(WASM_PLUGIN, |d| set(d, "/spec/priority", Json::Null)).assert_clean();
}

#[test]
fn core_kind_failures() {
    let core: Vec<String> = CORE.split("\n---\n").map(str::to_owned).collect();
    let (ns, cm, svc) = (&core[0], &core[1], &core[2]);
    expect_error(
        ns,
        "namespace on a Namespace",
        |d| set(d, "/metadata/namespace", json!("default")),
        &["metadata.namespace", "cluster-scoped"],
    );
    expect_error(
        ns,
        "namespace name is a label",
        |d| set(d, "/metadata/name", json!("istio.system")),
        &["metadata.name", "DNS-1123 label"],
    );
    expect_error(
        ns,
        "unknown field",
        |d| set(d, "/data", json!({})),
        &["data", "unknown field"],
    );
    expect_error(
        cm,
        "ConfigMap data value is not a string",
        |d| set(d, "/data/port", json!(15443)),
        &["data[port]", "must be of type string", "integer 15443"],
    );
    expect_error(
        cm,
        "ConfigMap bool value",
        |d| set(d, "/data/enabled", json!(true)),
        &["data[enabled]", "must be of type string"],
    );
    expect_error(
        cm,
        "ConfigMap bad key",
        |d| set(d, "/data/a~1b", json!("x")),
        &["data", "ConfigMap keys"],
    );
    expect_error(
        cm,
        "ConfigMap unknown field",
        |d| set(d, "/spec", json!({})),
        &["spec", "unknown field"],
    );
    expect_error(
        cm,
        "ConfigMap without namespace",
        |d| remove(d, "/metadata/namespace"),
        &["metadata.namespace", "required"],
    );
    expect_error(
        svc,
        "Service port range",
        |d| set(d, "/spec/ports/0/port", json!(0)),
        &["spec.ports[0].port", ">= 1"],
    );
    expect_error(
        svc,
        "Service name",
        |d| set(d, "/metadata/name", json!("1gateway")),
        &["metadata.name", "DNS-1035"],
    );
    expect_error(
        svc,
        "Service type enum",
        |d| set(d, "/spec/type", json!("Loadbalancer")),
        &["spec.type", "unsupported value"],
    );
    expect_error(
        ISTIO_OPERATOR,
        "IstioOperator unknown field",
        |d| set(d, "/spec/component", json!({})),
        &["spec.component", "unknown field"],
    );
    expect_error(
        ISTIO_OPERATOR,
        "IstioOperator gateway enabled type",
        |d| {
            set(
                d,
                "/spec/components/ingressGateways/0/enabled",
                json!("true"),
            )
        },
        &[
            "spec.components.ingressGateways[0].enabled",
            "must be of type boolean",
        ],
    );
    expect_error(
        ISTIO_OPERATOR,
        "IstioOperator without name",
        |d| remove(d, "/metadata/name"),
        &["metadata.name", "required"],
    );
    expect_error(
        KUSTOMIZATION,
        "Kustomization unknown field",
        |d| set(d, "/resource", json!([])),
        &["resource", "unknown field"],
    );
    expect_error(
        KUSTOMIZATION,
        "Kustomization resources type",
        |d| set(d, "/resources", json!("a.yaml")),
        &["resources", "must be of type array"],
    );
}

#[test]
fn kinds_without_schema_are_reported_not_failed() {
    let y = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: istio-eastwest
  namespace: istio-system
spec:
  gatewayClassName: istio-east-west
"#;
    let r = v().validate_documents(y, "gw-api.yaml");
    assert!(r.errors.is_empty(), "{}", r.render());
    assert_eq!(r.no_schema.len(), 1, "{}", r.render());
    assert!(
        r.no_schema[0].contains("gateway.networking.k8s.io/v1")
            && r.no_schema[0].contains("doc#0 Gateway/istio-eastwest"),
        "{}",
        r.render()
    );
    // The envelope is still checked.
    let r = v().validate_documents(
        &y.replace("name: istio-eastwest", "name: Istio_EastWest"),
        "gw-api.yaml",
    );
    r.assert_error_containing(&["metadata.name", "DNS-1123"]);
}

#[test]
fn yaml_level_problems_are_errors() {
    // Non-string key (the API server's JSON only has string keys).
    let r = v().validate_documents(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: b}\ndata:\n  15443: tls\n",
        "k.yaml",
    );
    r.assert_error_containing(&["k.yaml", "not a string"]);
    // Duplicate keys.
    let r = v().validate_documents(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  name: b\n",
        "d.yaml",
    );
    r.assert_error_containing(&["d.yaml", "duplicate"]);
    // Empty documents are skipped, indexes still count them ("---\n---\n": one empty document).
    let text = format!("---\n---\n{}", GATEWAYS.trim_start());
    let r = v().validate_documents(&text.replacen("number: 15443", "number: -1", 1), "e.yaml");
    r.assert_error_containing(&[
        "e.yaml doc#1 Gateway/cross-network-gateway",
        "spec.servers[0].port.number",
    ]);
    assert_eq!(r.documents, 3);
}

#[test]
fn kubernetes_url_functions_follow_go_parse_request_uri() {
    for (s, scheme) in [
        ("oci://ghcr.io/x/y:1.0", "oci"),
        ("https://a.b/c.wasm", "https"),
        ("HTTP://a.b/c.wasm", "http"),
        ("file:///opt/x.wasm", "file"),
        ("http://h:8080/p?q=1", "http"),
        ("/abs/path", ""),
        ("mailto:x", "mailto"),
    ] {
        assert_eq!(crd::k8s_url_scheme(s).as_deref(), Ok(scheme), "{s}");
    }
    for bad in [
        "",
        "ghcr.io/x:1",
        "relative/path",
        "http://a b/",
        "http://h:80x/",
        "://x",
        "http://h/%zz",
    ] {
        assert!(
            crd::k8s_url_scheme(bad).is_err(),
            "{bad:?} should not be a URL"
        );
    }
}

/// Every distinct CEL rule of the CRD file, evaluated on an input that satisfies it and one
/// that violates it, so a library gap (wrong result, missing overload) shows up here even for
/// kinds geolb does not emit.
#[test]
fn every_distinct_cel_rule_evaluates_correctly() {
    let url_rule_wp = r#"isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) &&
url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])"#;
    let cases: Vec<(&str, Json, Json)> = vec![
        (
            "(has(self.selector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1",
            json!({"selector": {}}),
            json!({"selector": {}, "targetRefs": []}),
        ),
        (
            "has(self.wasm) != has(self.lua)",
            json!({"wasm": {}}),
            json!({}),
        ),
        (
            r#"self.all(key, !key.contains("*"))"#,
            json!({"app": "x"}),
            json!({"a*": "x"}),
        ),
        (
            "self.all(key, key.size() != 0)",
            json!({"app": "x"}),
            json!({"": "x"}),
        ),
        (r#"!self.contains("*")"#, json!("x"), json!("x*")),
        ("self.size() == 0", json!(""), json!("other-ns")),
        (
            url_rule_wp,
            json!("oci://ghcr.io/a/b:1"),
            json!("ftp://h/x.wasm"),
        ),
        (url_rule_wp, json!("ghcr.io/a/b:1"), json!("s3://b/x")),
        // Go accepts "http://bad host/x" through the "http://" + self branch; a bad escape fails both.
        (
            url_rule_wp,
            json!("file:///opt/x.wasm"),
            json!("http://h/%zz"),
        ),
        (
            r#"(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)"#,
            json!({"name": "a", "valueFrom": "HOST"}),
            json!({"name": "a", "valueFrom": "HOST", "value": "v"}),
        ),
        (
            "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1",
            json!({"targetRef": {}}),
            json!({"targetRef": {}, "selector": {}}),
        ),
        (
            "duration(self) >= duration('1ms')",
            json!("1h30m"),
            json!("500us"),
        ),
        (
            "duration(self) >= duration('1ms')",
            json!("0.5s"),
            json!("0s"),
        ),
        (
            "(has(self.workloadSelector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1",
            json!({}),
            json!({"workloadSelector": {}, "targetRefs": []}),
        ),
        (
            r#"has(self.context) ? ((self.context == "WAYPOINT") ? has(self.waypoint) : !has(self.waypoint)) : !has(self.waypoint)"#,
            json!({"context": "WAYPOINT", "waypoint": {}}),
            json!({"context": "SIDECAR_INBOUND", "waypoint": {}}),
        ),
        ("0 < self && self <= 65535", json!(8080), json!(65536)),
        (
            "(has(self.tlsCertificates) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1",
            json!({"credentialNames": ["a"]}),
            json!({"credentialNames": ["a"], "tlsCertificates": []}),
        ),
        (
            "(has(self.credentialName) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1",
            json!({"credentialName": "a"}),
            json!({"credentialName": "a", "credentialNames": ["b"]}),
        ),
        (
            "(has(self.credentialNames) ? 1 : 0) + (has(self.tlsCertificates) ? 1 : 0) <= 1",
            json!({"tlsCertificates": []}),
            json!({"tlsCertificates": [], "credentialNames": ["b"]}),
        ),
        (
            "(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1",
            json!({"endpoints": []}),
            json!({"endpoints": [], "workloadSelector": {}}),
        ),
        (
            r#"!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && !((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))"#,
            json!({"addresses": ["10.0.0.0/8"]}),
            json!({"addresses": ["10.0.0.0/8"], "resolution": "DNS"}),
        ),
        (
            r#"((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true"#,
            json!({"resolution": "STATIC", "endpoints": []}),
            json!({"endpoints": []}),
        ),
        (
            r#"((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? ((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true"#,
            json!({"resolution": "DNS_ROUND_ROBIN", "endpoints": [{}]}),
            json!({"resolution": "DNS_ROUND_ROBIN", "endpoints": [{}, {}]}),
        ),
        (
            "has(self.address) || has(self.network)",
            json!({"network": "n"}),
            json!({}),
        ),
        (
            r#"(has(self.address) ? self.address : "").startsWith("unix://") ? !has(self.ports) : true"#,
            json!({"address": "unix:///s", "labels": {}}),
            json!({"address": "unix:///s", "ports": {}}),
        ),
        (
            r#"self.startsWith("unix://") ? (self.substring(7, 8) == "/" || self.substring(7, 8) == "@") : true"#,
            json!("unix://@abstract"),
            json!("unix://relative"),
        ),
        (
            r#"self.startsWith("unix://") ? !self.endsWith("/") : true"#,
            json!("unix:///sock"),
            json!("unix:///dir/"),
        ),
        (
            r#"self.all(key, size(key) < 63 && key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))"#,
            json!({"http-web": 80}),
            json!({"-bad": 80}),
        ),
        (r#"self != "*""#, json!("*.local"), json!("*")),
        (
            "self.all(l1, self.exists_one(l2, l1.number == l2.number))",
            json!([{"number": 80}, {"number": 443}]),
            json!([{"number": 80}, {"number": 80}]),
        ),
        (
            r#"self in ["", "HTTP", "HTTPS"]"#,
            json!("HTTPS"),
            json!("https"),
        ),
        (
            "(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? (!has(self.principals) &&\n!has(self.notPrincipals) && !has(self.namespaces) && !has(self.notNamespaces)) : true",
            json!({"serviceAccounts": ["a"]}),
            json!({"serviceAccounts": ["a"], "namespaces": ["b"]}),
        ),
        (
            "has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? self.selector.matchLabels : {}).size() > 0) : true",
            json!({"portLevelMtls": {}, "selector": {"matchLabels": {"a": "b"}}}),
            json!({"portLevelMtls": {}}),
        ),
        (
            "self.all(key, 0 < int(key) && int(key) <= 65535)",
            json!({"8080": {}}),
            json!({"70000": {}}),
        ),
        (
            "(has(self.jwksUri) ? 1 : 0) + (has(self.jwks_uri) ? 1 : 0) + (has(self.jwks) ? 1 : 0) <= 1",
            json!({"jwks": "{}"}),
            json!({"jwks": "{}", "jwksUri": "https://x"}),
        ),
        (
            r#"url(self).getScheme() in ["http", "https"]"#,
            json!("https://idp.example.com/jwks"),
            json!("file:///jwks"),
        ),
        (
            r#"((has(self.operation) ? self.operation : "") == "UPSERT") ? (self.value != "") : true"#,
            json!({"operation": "UPSERT", "value": "x"}),
            json!({"operation": "UPSERT", "value": ""}),
        ),
        (
            r#"((has(self.operation) ? self.operation : "") == "REMOVE") ? !has(self.value) : true"#,
            json!({"operation": "REMOVE"}),
            json!({"operation": "REMOVE", "value": "x"}),
        ),
    ];
    let mut failures = Vec::new();
    for (rule, good, bad) in &cases {
        match v().eval_rule(rule, good) {
            Ok(true) => {}
            other => failures.push(format!("{rule:?} on {good}: expected true, got {other:?}")),
        }
        match v().eval_rule(rule, bad) {
            Ok(false) => {}
            other => failures.push(format!("{rule:?} on {bad}: expected false, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The table covers every distinct rule text of the CRD file.
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    let covered: std::collections::HashSet<String> =
        cases.iter().map(|(r, _, _)| norm(r)).collect();
    let missing: std::collections::BTreeSet<String> = v()
        .cel_rules()
        .iter()
        .filter(|r| r.resource.contains(".istio.io/"))
        .map(|r| r.rule.clone())
        .filter(|r| !covered.contains(&norm(r)))
        .collect();
    // Rules that differ from a covered one only in the scheme list order of the url rule.
    let missing: Vec<&String> = missing
        .iter()
        .filter(|r| !r.contains("isURL(self)"))
        .collect();
    assert!(missing.is_empty(), "rules without a case: {missing:#?}");
}

#[test]
fn yaml_1_1_booleans_that_kubectl_would_see_are_errors() {
    // Norway: `no` is the string "no" in YAML 1.2 but `false` for kubectl.
    let y = VIRTUAL_SERVICE.replacen("exact: cn-hangzhou", "exact: no", 1);
    let r = v().validate_documents(&y, "vs.yaml");
    r.assert_error_containing(&["vs.yaml doc#0 line", "`no`", "YAML 1.1"]);
    let y = format!(
        "{}\n---\n{}",
        GATEWAYS.trim(),
        CORE.replacen("network1", "on", 1).trim()
    );
    let r = v().validate_documents(&y, "s.yaml");
    r.assert_error_containing(&["s.yaml doc#3 line", "`on`"]);
    assert_eq!(r.errors.len(), 1, "{}", r.render());
    // Quoted, or inside a block scalar, is fine.
    let y = VIRTUAL_SERVICE.replacen("exact: cn-hangzhou", "exact: \"no\"", 1);
    v().validate_documents(&y, "vs.yaml").assert_clean();
    let y = CORE.replacen(
        "  geolb.policy.json:",
        "  flags: |\n    on\n    - no\n  geolb.policy.json:",
        1,
    );
    v().validate_documents(&y, "cm.yaml").assert_clean();
}

/// A rule the library cannot evaluate is listed with its text and schema path, never skipped.
#[test]
fn unevaluable_rules_are_reported_with_path() {
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.geolb.io
spec:
  group: example.geolb.io
  names: {kind: Widget, plural: widgets}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.size <"
              message: broken syntax
            properties:
              memory:
                type: string
                x-kubernetes-validations:
                - rule: "quantity(self).isGreaterThan(quantity('1Mi'))"
                  message: at least 1Mi
              port:
                type: integer
                x-kubernetes-validations:
                - rule: "self <= 65535"
                  message: port too large
  - name: v0
    served: false
    storage: false
    schema:
      openAPIV3Schema: {type: object}
"#;
    let val = Validator::from_crd_yaml(crd, "widgets.yaml");
    let bad = val.unevaluable_rules();
    assert_eq!(bad.len(), 2, "{bad:#?}");
    assert!(
        bad.iter().any(
            |b| b.contains("Widget example.geolb.io/v1 spec: \"self.size <\"")
                && b.contains("parse error")
        ),
        "{bad:#?}"
    );
    assert!(
        bad.iter()
            .any(|b| b.contains("spec.memory") && b.contains("quantity")),
        "{bad:#?}"
    );
    assert_eq!(
        val.kinds(),
        vec![("example.geolb.io/v1".to_owned(), "Widget".to_owned())],
        "unserved versions are not loaded"
    );

    let doc = "apiVersion: example.geolb.io/v1\nkind: Widget\nmetadata: {name: w}\nspec: {memory: 2Gi, port: 70000}\n";
    let r = val.validate_documents(doc, "w.yaml");
    r.assert_error_containing(&["w.yaml doc#0 Widget/w: spec.port", "port too large"]);
    assert_eq!(r.not_evaluated.len(), 2, "{}", r.render());
    assert!(
        r.not_evaluated
            .iter()
            .any(|n| n.contains("spec.memory") && n.contains("quantity(self)")),
        "{}",
        r.render()
    );
    assert!(!r.is_clean());
    // Cluster-scoped: a namespace is an error, its absence is not.
    let r = val.validate_documents(
        &doc.replace("{name: w}", "{name: w, namespace: default}"),
        "w.yaml",
    );
    r.assert_error_containing(&["metadata.namespace", "cluster-scoped"]);
    // The version that is not served is unknown.
    let r = val.validate_documents(&doc.replace("/v1", "/v0"), "w.yaml");
    r.assert_error_containing(&[
        "no matches for kind \"Widget\" in version \"example.geolb.io/v0\"",
    ]);
}

/// Each OpenAPI keyword with the meaning the API server gives it, on a schema that has
/// them all: the structural part is `jsonschema`'s, so this pins the translation.
#[test]
fn openapi_keywords_keep_their_kubernetes_meaning() {
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.geolb.io
spec:
  group: example.geolb.io
  names: {kind: Gadget, plural: gadgets}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              port: {type: integer, format: int32, minimum: 1, maximum: 65535}
              weight: {type: integer, minimum: 0, exclusiveMinimum: true}
              target: {x-kubernetes-int-or-string: true, anyOf: [{type: integer}, {type: string}]}
              mode: {type: string, enum: [A, B]}
              name: {type: string, maxLength: 5, pattern: '^[a-z]+$'}
              note: {type: string, nullable: true}
              since: {type: string, format: date-time}
              blob: {type: string, format: byte}
              tags: {type: array, maxItems: 2, items: {type: string}, x-kubernetes-list-type: set}
              labels: {type: object, additionalProperties: {type: string}}
              free: {type: object, x-kubernetes-preserve-unknown-fields: true}
              sealed: {type: object}
"#;
    let val = Validator::from_crd_yaml(crd, "gadgets.yaml");
    let check = |spec: &str| {
        let doc = format!(
            "apiVersion: example.geolb.io/v1\nkind: Gadget\nmetadata: {{name: g}}\nspec: {spec}\n"
        );
        val.validate_documents(&doc, "g.yaml")
    };
    let good = r#"{port: 80, weight: 1, target: 8080, mode: A, name: abc, note: null, since: "2026-12-07T00:00:00Z", blob: aGk=, tags: [a, b], labels: {k: v}, free: {any: [1]}, sealed: {}}"#;
    check(good).assert_clean();
    assert!(
        check(r#"{target: "http"}"#).is_clean(),
        "int-or-string takes a string"
    );
    let cases: &[(&str, &[&str])] = &[
        ("{port: 70000}", &["spec.port", "70000 must be <= 65535"]),
        ("{port: 0}", &["spec.port", "0 must be >= 1"]),
        (
            "{port: 3000000000}",
            &["spec.port", "does not fit format int32"],
        ),
        ("{weight: 0}", &["spec.weight", "0 must be > 0"]),
        (
            "{target: true}",
            &["spec.target", "must be an integer or a string, got boolean"],
        ),
        (
            "{mode: C}",
            &[
                "spec.mode",
                "unsupported value string \"C\"",
                "\"A\", \"B\"",
            ],
        ),
        (
            "{name: abcdefg}",
            &["spec.name", "too long: 7 characters > maxLength 5"],
        ),
        ("{name: ab1}", &["spec.name", "does not match pattern"]),
        (
            "{port: null}",
            &["spec.port", "null is not allowed here (expected integer)"],
        ),
        (
            "{since: yesterday}",
            &["spec.since", "not an RFC 3339 date-time"],
        ),
        ("{blob: '%%'}", &["spec.blob", "not valid base64"]),
        (
            "{tags: [a, b, c]}",
            &["spec.tags", "too many items: 3 > maxItems 2"],
        ),
        ("{tags: [a, a]}", &["spec.tags[1]", "duplicate value"]),
        (
            "{labels: {k: 1}}",
            &["spec.labels[k]", "must be of type string, got integer 1"],
        ),
        (
            "{sealed: {x: 1}}",
            &[
                "spec.sealed.x",
                "unknown field (this object accepts no fields)",
            ],
        ),
        ("{prot: 80}", &["spec.prot", "unknown field (known: "]),
    ];
    for (spec, needles) in cases {
        let report = check(spec);
        assert!(
            report
                .errors
                .iter()
                .any(|e| needles.iter().all(|n| e.contains(n))),
            "{spec}: expected an error containing {needles:?}\n{}",
            report.render()
        );
    }
}
