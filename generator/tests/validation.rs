//! Table-driven validation tests: each case mutates an example plan and expects a
//! finding of a given severity at a given field path whose message names the values.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use geolb::finding::{Finding, Severity};
use geolb::source::Source;
use geolb::validate;

fn example(scenario: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/examples")
        .join(scenario)
        .join("plan.yaml");
    std::fs::read_to_string(path).unwrap()
}

struct Case {
    name: &'static str,
    scenario: &'static str,
    /// (old, new) text replacements, each must apply exactly once.
    edits: &'static [(&'static str, &'static str)],
    severity: Severity,
    path: &'static str,
    message: &'static str,
}

const A: &str = "a-failover-distribution";
const C: &str = "c-multi-primary";
const D: &str = "d-multi-network";

const CASES: &[Case] = &[
    // CIDR syntax.
    Case {
        name: "non-canonical CIDR",
        scenario: A,
        edits: &[("cidrs: [20.0.0.0/8]", "cidrs: [20.0.0.1/8]")],
        severity: Severity::Error,
        path: "vpcs[0].cidrs[0]",
        message: "\"20.0.0.1/8\" has host bits set; the network is 20.0.0.0/8",
    },
    Case {
        name: "prefix too long",
        scenario: A,
        edits: &[("cidr: 21.0.0.0/16", "cidr: 21.0.0.0/33")],
        severity: Severity::Error,
        path: "vswitches[1].cidr",
        message: "prefix length /33",
    },
    Case {
        name: "IPv6 prefix too long",
        scenario: A,
        edits: &[(
            "podCidrs: [10.0.0.0/16]",
            "podCidrs: [10.0.0.0/16, fd00::/129]",
        )],
        severity: Severity::Error,
        path: "clusters[0].podCidrs[1]",
        message: "128 bits of an IPv6",
    },
    Case {
        name: "malformed CIDR",
        scenario: A,
        edits: &[(
            "serviceCidrs: [172.16.0.0/16]",
            "serviceCidrs: [172.16.0/16]",
        )],
        severity: Severity::Error,
        path: "clusters[0].serviceCidrs[0]",
        message: "not an IPv4 or IPv6 address",
    },
    // Containment and collisions.
    Case {
        name: "vSwitch outside its VPC",
        scenario: A,
        edits: &[("cidr: 20.0.0.0/16", "cidr: 22.0.0.0/16")],
        severity: Severity::Error,
        path: "vswitches[0].cidr",
        message: "vSwitch vpc-hangzhou-switch-1 CIDR 22.0.0.0/16 is not inside VPC vpc-hangzhou (20.0.0.0/8)",
    },
    Case {
        name: "connected VPCs overlap",
        scenario: A,
        edits: &[("cidrs: [21.0.0.0/8]", "cidrs: [20.0.0.0/8]")],
        severity: Severity::Error,
        path: "vpcs[1].cidrs[0]",
        message: "VPC vpc-shanghai CIDR 20.0.0.0/8 overlaps VPC vpc-hangzhou CIDR 20.0.0.0/8",
    },
    Case {
        name: "vSwitches of connected VPCs overlap",
        scenario: A,
        edits: &[
            (
                "cidrs: [192.168.0.0/16]",
                "cidrs: [192.168.0.0/16, 20.1.0.0/16]",
            ),
            ("cidr: 192.168.0.0/24", "cidr: 20.0.128.0/24"),
        ],
        severity: Severity::Error,
        path: "vswitches[2].cidr",
        message: "overlaps vSwitch vpc-hangzhou-switch-1 CIDR 20.0.0.0/16",
    },
    Case {
        name: "Pod CIDR inside a connected VPC",
        scenario: A,
        edits: &[("podCidrs: [10.1.0.0/16]", "podCidrs: [20.1.0.0/16]")],
        severity: Severity::Error,
        path: "clusters[1].podCidrs[0]",
        message: "Pod CIDR 20.1.0.0/16 of cluster ack-shanghai overlaps VPC vpc-hangzhou CIDR 20.0.0.0/8",
    },
    Case {
        name: "Pod and Service CIDR of one cluster overlap",
        scenario: A,
        edits: &[(
            "serviceCidrs: [172.16.0.0/16]",
            "serviceCidrs: [10.0.0.0/20]",
        )],
        severity: Severity::Error,
        path: "clusters[0].serviceCidrs[0]",
        message: "Service CIDR 10.0.0.0/20 of cluster ack-hangzhou overlaps Pod CIDR 10.0.0.0/16",
    },
    Case {
        name: "Pod CIDRs of reachable clusters overlap",
        scenario: A,
        edits: &[("podCidrs: [10.1.0.0/16]", "podCidrs: [10.0.128.0/17]")],
        severity: Severity::Error,
        path: "clusters[1].podCidrs[0]",
        message: "Pod CIDR 10.0.128.0/17 of cluster ack-shanghai overlaps Pod CIDR 10.0.0.0/16 of cluster ack-hangzhou",
    },
    Case {
        name: "IPv6 Service CIDRs of reachable clusters overlap",
        scenario: A,
        edits: &[
            (
                "serviceCidrs: [172.16.0.0/16]",
                "serviceCidrs: [172.16.0.0/16, fd00:10::/108]",
            ),
            (
                "serviceCidrs: [172.17.0.0/16]",
                "serviceCidrs: [172.17.0.0/16, fd00:10::/112]",
            ),
        ],
        severity: Severity::Error,
        path: "clusters[1].serviceCidrs[1]",
        message: "fd00:10::/112 of cluster ack-shanghai overlaps Service CIDR fd00:10::/108",
    },
    // Load balancer addresses.
    Case {
        name: "LB address outside its pool",
        scenario: D,
        edits: &[(
            "{address: 10.64.30.77, port: 15443}",
            "{address: 10.64.30.78, port: 15443}",
        )],
        severity: Severity::Error,
        path: "clusters[2].eastWestGateway.address",
        message: "east-west gateway address 10.64.30.78 of cluster mdemo-cluster3 is outside its load-balancer pools (mdemo-cluster3-pool: 10.64.30.75-10.64.30.77)",
    },
    Case {
        name: "LB address inside a Pod CIDR",
        scenario: D,
        edits: &[("ingressAddress: 10.64.30.72", "ingressAddress: 10.201.0.9")],
        severity: Severity::Error,
        path: "clusters[0].ingressAddress",
        message: "ingress gateway address 10.201.0.9 of cluster mdemo-cluster1 lies inside Pod CIDR 10.201.0.0/16 of cluster mdemo-cluster1",
    },
    Case {
        name: "malformed pool range",
        scenario: D,
        edits: &[("[10.6.136.25-10.6.136.29]", "[10.6.136.29-10.6.136.25]")],
        severity: Severity::Error,
        path: "clusters[1].loadBalancerPools[0].addresses[0]",
        message: "ends before it starts",
    },
    // References, duplicates, names.
    Case {
        name: "unknown region",
        scenario: A,
        edits: &[(
            "    region: cn-shanghai\n    vpc: vpc-shanghai",
            "    region: cn-beijing\n    vpc: vpc-shanghai",
        )],
        severity: Severity::Error,
        path: "clusters[1].region",
        message: "unknown region \"cn-beijing\"",
    },
    Case {
        name: "unknown cluster",
        scenario: A,
        edits: &[(
            "      - name: v2 # black \"full stars\"\n        clusters: [ack-shanghai]",
            "      - name: v2\n        clusters: [ack-shenzhen]",
        )],
        severity: Severity::Error,
        path: "services[3].versions[1].clusters[0]",
        message: "unknown cluster \"ack-shenzhen\"",
    },
    Case {
        name: "unknown network",
        scenario: D,
        edits: &[("network: network-c3", "network: network-c9")],
        severity: Severity::Error,
        path: "clusters[2].network",
        message: "unknown network \"network-c9\"",
    },
    Case {
        name: "unknown service",
        scenario: A,
        edits: &[("- service: productpage", "- service: frontpage")],
        severity: Severity::Error,
        path: "gateways[0].routes[0].service",
        message: "unknown service \"frontpage\"",
    },
    Case {
        name: "unknown VPC",
        scenario: A,
        edits: &[(
            "vpcs: [vpc-hangzhou, vpc-shanghai, vpc-hangzhou2]",
            "vpcs: [vpc-hangzhou, vpc-shanghai, vpc-hangzhou3]",
        )],
        severity: Severity::Error,
        path: "connections[0].vpcs[2]",
        message: "unknown VPC \"vpc-hangzhou3\"",
    },
    Case {
        name: "duplicate cluster",
        scenario: A,
        edits: &[("  - name: ack-shanghai\n", "  - name: ack-hangzhou\n")],
        severity: Severity::Error,
        path: "clusters[1].name",
        message: "duplicate cluster \"ack-hangzhou\" (first defined at clusters[0].name)",
    },
    Case {
        name: "cluster ID is not a label value",
        scenario: A,
        edits: &[(
            "clusterId: c466acd9ea38959ec00459b5d97ccfb91",
            "clusterId: c-hangzhou_",
        )],
        severity: Severity::Error,
        path: "clusters[0].clusterId",
        message: "cluster ID \"c-hangzhou_\" is not a valid Kubernetes label value: must start and end with a letter or digit",
    },
    Case {
        name: "two clusters with one cluster ID",
        scenario: A,
        edits: &[(
            "clusterId: c394dea1df8060adcc0a175c8895e3b49",
            "clusterId: c466acd9ea38959ec00459b5d97ccfb91",
        )],
        severity: Severity::Error,
        path: "clusters[1].clusterId",
        message: "clusters ack-hangzhou and ack-shanghai have the same Istio cluster ID \"c466acd9ea38959ec00459b5d97ccfb91\" (first at clusters[0].clusterId)",
    },
    Case {
        name: "a cluster ID that is another cluster's name",
        scenario: D,
        edits: &[(
            "  - name: mdemo-cluster3\n",
            "  - name: mdemo-cluster3\n    clusterId: mdemo-cluster2\n",
        )],
        severity: Severity::Error,
        path: "clusters[2].clusterId",
        message: "clusters mdemo-cluster2 and mdemo-cluster3 have the same Istio cluster ID \"mdemo-cluster2\" (first at clusters[1].name)",
    },
    Case {
        name: "primary-remote remote without istiodAddress",
        scenario: D,
        edits: &[
            ("controlPlane: managed", "controlPlane: primary-remote"),
            (
                "    eastWestGateway: {address: 10.6.136.29, port: 15443}\n    istiodAddress: 10.64.30.71\n",
                "    eastWestGateway: {address: 10.6.136.29, port: 15443}\n",
            ),
        ],
        severity: Severity::Error,
        path: "clusters[1].name",
        message: "remote cluster mdemo-cluster2 has no istiodAddress",
    },
    Case {
        name: "duplicate region",
        scenario: A,
        edits: &[(
            "  - name: cn-shanghai\nvpcs",
            "  - name: cn-hangzhou\n  - name: cn-shanghai\nvpcs",
        )],
        severity: Severity::Error,
        path: "regions[1].name",
        message: "duplicate region \"cn-hangzhou\"",
    },
    Case {
        name: "name is not DNS-1123",
        scenario: A,
        edits: &[("  - name: reviews\n", "  - name: Reviews_v\n")],
        severity: Severity::Error,
        path: "services[3].name",
        message: "service \"Reviews_v\" is not a valid DNS-1123 label",
    },
    // Traffic rules.
    Case {
        name: "weights do not sum to 100",
        scenario: A,
        edits: &[("cn-shanghai: 10", "cn-shanghai: 20")],
        severity: Severity::Error,
        path: "services[3].traffic.distribute[\"cn-hangzhou\"]",
        message: "weights from cn-hangzhou sum to 110 (cn-hangzhou=90, cn-shanghai=20), must be 100",
    },
    Case {
        name: "weight out of range",
        scenario: A,
        edits: &[
            ("cn-hangzhou: 90", "cn-hangzhou: 100"),
            ("cn-shanghai: 10", "cn-shanghai: 0"),
        ],
        severity: Severity::Error,
        path: "services[3].traffic.distribute[\"cn-hangzhou\"][\"cn-shanghai\"]",
        message: "weight 0 for cn-hangzhou -> cn-shanghai is out of range",
    },
    Case {
        name: "failover to itself",
        scenario: A,
        edits: &[("cn-hangzhou: [cn-shanghai]", "cn-hangzhou: [cn-hangzhou]")],
        severity: Severity::Error,
        path: "services[3].traffic.failover[\"cn-hangzhou\"][0]",
        message: "region cn-hangzhou fails over to itself (service reviews.default)",
    },
    Case {
        name: "failover to a region where the service does not run",
        scenario: A,
        edits: &[(
            "      - name: v2 # black \"full stars\"\n        clusters: [ack-shanghai]",
            "      - name: v2\n        clusters: [ack-hangzhou]",
        )],
        severity: Severity::Error,
        path: "services[3].traffic.failover[\"cn-hangzhou\"][0]",
        message: "service reviews.default does not run in region cn-shanghai (it runs in: cn-hangzhou)",
    },
    Case {
        name: "distribution to a region where the service does not run",
        scenario: A,
        edits: &[(
            "      - name: v2 # black \"full stars\"\n        clusters: [ack-shanghai]",
            "      - name: v2\n        clusters: [ack-hangzhou]",
        )],
        severity: Severity::Error,
        path: "services[3].traffic.distribute[\"cn-hangzhou\"][\"cn-shanghai\"]",
        message: "service reviews.default does not run in region cn-shanghai",
    },
    Case {
        name: "chain reaching no other region",
        scenario: A,
        edits: &[("        cn-shanghai: [cn-hangzhou]\n", "")],
        severity: Severity::Warning,
        path: "services[3].traffic.failover",
        message: "when region cn-shanghai fails, no failover rule of reviews leads to another region where it runs",
    },
    // Multi-network.
    Case {
        name: "network without east-west gateway",
        scenario: D,
        edits: &[(
            "    eastWestGateway: {address: 10.64.30.77, port: 15443}\n",
            "",
        )],
        severity: Severity::Error,
        path: "networks[2].name",
        message: "network network-c3 has no east-west gateway (clusters: mdemo-cluster3)",
    },
    Case {
        name: "no gateway path between networks",
        scenario: C,
        edits: &[
            (
                "networks:\n",
                "vpcs:\n  - name: vpc-1\n    region: cn-hangzhou\n    cidrs: [192.168.0.0/24]\n  - name: vpc-2\n    region: cn-shanghai\n    cidrs: [192.168.1.0/24]\nnetworks:\n",
            ),
            (
                "    region: cn-hangzhou\n    podCidrs",
                "    region: cn-hangzhou\n    vpc: vpc-1\n    podCidrs",
            ),
            (
                "    region: cn-shanghai\n    podCidrs",
                "    region: cn-shanghai\n    vpc: vpc-2\n    podCidrs",
            ),
            ("address: 47.100.20.22", "address: 192.168.1.10"),
        ],
        severity: Severity::Error,
        path: "clusters[0].network",
        message: "cluster cluster-1 (network network1) has no path to network network2: its gateways (192.168.1.10) sit in VPCs not connected to VPC vpc-1",
    },
    Case {
        name: "remote cluster in a multi-primary mesh",
        scenario: C,
        edits: &[("    mesh: mesh-2\n", "    mesh: mesh-2\n    role: remote\n")],
        severity: Severity::Error,
        path: "clusters[1].role",
        message: "cluster cluster-2 is remote in a multi-primary mesh",
    },
    Case {
        name: "meshes sharing workloads without a trust note",
        scenario: C,
        edits: &[(
            "    trust: Both meshes use intermediate CAs signed by one shared root CA (plug-in cacerts).\n    discovers: [cluster-2]",
            "    discovers: [cluster-2]",
        )],
        severity: Severity::Warning,
        path: "meshes[0].name",
        message: "says nothing about its root CA",
    },
    // Drains.
    Case {
        name: "drain of every region of a service",
        scenario: A,
        edits: &[
            (
                "  - name: cn-hangzhou\n",
                "  - name: cn-hangzhou\n    drained: true\n",
            ),
            (
                "  - name: cn-shanghai\n",
                "  - name: cn-shanghai\n    drained: true\n",
            ),
        ],
        severity: Severity::Error,
        path: "regions",
        message: "drains every region of service \"productpage.default\"",
    },
    Case {
        name: "service drain of a region where it does not run",
        scenario: A,
        edits: &[(
            "      failover:\n        cn-hangzhou: [cn-shanghai]\n",
            "      drain: [cn-beijing]\n      failover:\n        cn-hangzhou: [cn-shanghai]\n",
        )],
        severity: Severity::Error,
        path: "services[3].traffic.drain[0]",
        message: "unknown region \"cn-beijing\"",
    },
    // Filter deployment.
    Case {
        name: "remote module without sha256",
        scenario: A,
        edits: &[(
            // The pin stays on its line, commented out: the case holds no digest.
            "\n  sha256: ",
            "\n  # sha256: ",
        )],
        severity: Severity::Error,
        path: "filter.url",
        message: "module oci://registry.example.com/geolb/geolb-filter:0.1.0 is not pinned",
    },
    Case {
        name: "file module",
        scenario: A,
        edits: &[(
            "url: oci://registry.example.com/geolb/geolb-filter:0.1.0",
            "url: file:///opt/geolb/geolb_filter.wasm",
        )],
        severity: Severity::Error,
        path: "filter.url",
        message: "\"file:///opt/geolb/geolb_filter.wasm\" names a file inside the proxy container",
    },
    Case {
        name: "malformed sha256",
        scenario: A,
        edits: &[("sha256: ", "sha256: Z")],
        severity: Severity::Error,
        path: "filter.sha256",
        message: "is not a SHA-256",
    },
    // Health settings the filter would refuse (checked by the pure crate).
    Case {
        name: "policy health refused by the filter",
        scenario: A,
        edits: &[(
            "  sha256: ",
            "  health:\n    failureResponseFlags: [XX]\n  sha256: ",
        )],
        severity: Severity::Error,
        path: "filter.health.failureResponseFlags[0]",
        message: "the filter would refuse this policy",
    },
    Case {
        name: "probe faster than the filter's tick",
        scenario: A,
        edits: &[(
            "    outlierDetection:\n      consecutive5xxErrors: 1",
            "    probe:\n      path: /healthz\n      interval: 50ms\n    outlierDetection:\n      consecutive5xxErrors: 1",
        )],
        severity: Severity::Error,
        path: "services[3].probe.interval",
        message: "must be 100ms..1h",
    },
    Case {
        name: "probe path",
        scenario: A,
        edits: &[(
            "    outlierDetection:\n      consecutive5xxErrors: 1",
            "    probe:\n      path: healthz\n    outlierDetection:\n      consecutive5xxErrors: 1",
        )],
        severity: Severity::Error,
        path: "services[3].probe.path",
        message: "is not a valid probe path",
    },
    // Shape.
    Case {
        name: "unknown field",
        scenario: A,
        edits: &[(
            "    cni: flannel\n  - name: ack-shanghai",
            "    cnii: flannel\n  - name: ack-shanghai",
        )],
        severity: Severity::Error,
        path: "clusters[0]",
        message: "unknown field",
    },
];

fn apply(text: &str, edits: &[(&str, &str)], case: &str) -> String {
    let mut out = text.to_owned();
    for (old, new) in edits {
        assert_eq!(
            out.matches(old).count(),
            1,
            "{case}: edit {old:?} must match exactly once"
        );
        out = out.replacen(old, new, 1);
    }
    out
}

#[test]
fn every_validation_class() {
    let mut failures = Vec::new();
    for case in CASES {
        let text = apply(&example(case.scenario), case.edits, case.name);
        let source = Source::new("plan.yaml", text);
        let checked = validate::check(&source);
        let hit = checked.findings.iter().find(|f: &&Finding| {
            f.severity == case.severity
                && f.path.as_str().starts_with(case.path)
                && f.message.contains(case.message)
        });
        if hit.is_none() {
            let got: Vec<String> = checked
                .findings
                .iter()
                .map(|f| format!("  {:?} {}: {}", f.severity, f.path, f.message))
                .collect();
            failures.push(format!(
                "{}: expected {:?} at {} containing {:?}; got:\n{}",
                case.name,
                case.severity,
                case.path,
                case.message,
                got.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn examples_are_clean() {
    for scenario in [
        "a-failover-distribution",
        "b-locality-preferred",
        "c-multi-primary",
        "d-multi-network",
    ] {
        let checked = validate::check(&Source::new("plan.yaml", example(scenario)));
        let errors: Vec<String> = checked
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("{}: {}", f.path, f.message))
            .collect();
        assert!(errors.is_empty(), "{scenario}: {errors:?}");
    }
}

#[test]
fn unconnected_vpcs_may_reuse_ranges() {
    let text = apply(
        &example(A),
        &[
            (
                "vpcs: [vpc-hangzhou, vpc-shanghai, vpc-hangzhou2]",
                "vpcs: [vpc-hangzhou, vpc-hangzhou2]",
            ),
            ("podCidrs: [10.1.0.0/16]", "podCidrs: [10.0.0.0/16]"),
        ],
        "unconnected",
    );
    let checked = validate::check(&Source::new("plan.yaml", text));
    assert!(!checked.has_errors(), "{:?}", checked.findings);
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = apply(
        &example(A),
        &[
            ("cidrs: [20.0.0.0/8]", "cidrs: [20.0.0.1/8]"),
            ("cn-shanghai: 10", "cn-shanghai: 20"),
            ("  - name: reviews\n", "  - name: Reviews\n"),
        ],
        "many",
    );
    let checked = validate::check(&Source::new("plan.yaml", text));
    let errors = checked
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    assert!(errors >= 3, "{:?}", checked.findings);
}

#[test]
fn all_shape_problems_are_reported_at_once() {
    let text = apply(
        &example(A),
        &[
            (
                "    cni: flannel\n  - name: ack-shanghai",
                "    cni: flannel\n    colour: blue\n  - name: ack-shanghai",
            ),
            (
                "  - name: details\n    namespace: default\n    port: 9080",
                "  - name: details\n    namespace: default\n    port: ninety",
            ),
            ("  - name: ratings\n", "  - nme: ratings\n"),
        ],
        "shape",
    );
    let checked = validate::check(&Source::new("plan.yaml", text));
    let found: Vec<(String, String)> = checked
        .findings
        .iter()
        .map(|f| (f.path.to_string(), f.message.clone()))
        .collect();
    let has = |path: &str, needle: &str| found.iter().any(|(p, m)| p == path && m.contains(needle));
    assert!(
        has(
            "clusters[0].colour",
            "unknown field `colour`; expected one of clusterId, cni,"
        ),
        "{found:#?}"
    );
    assert!(
        has("services[1].port", "\"ninety\" is not of type"),
        "{found:#?}"
    );
    assert!(has("services[2].nme", "unknown field `nme`"), "{found:#?}");
    assert!(
        has("services[2]", "\"name\" is a required property"),
        "{found:#?}"
    );
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[test]
fn findings_point_at_the_line() {
    let text = apply(
        &example(A),
        &[("cn-shanghai: 10", "cn-shanghai: 20")],
        "line",
    );
    let line = text
        .lines()
        .position(|l| l.contains("cn-hangzhou: 90"))
        .unwrap()
        + 1;
    let source = Source::new("plan.yaml", text);
    let checked = validate::check(&source);
    let f = checked
        .findings
        .iter()
        .find(|f| f.message.contains("sum to 110"))
        .unwrap();
    let located = f.locate(&source).to_string();
    // The distribution map starts on the line of its first entry.
    assert!(
        located.starts_with(&format!("plan.yaml:{line}:")),
        "{located}"
    );
}

#[test]
fn json_plans_are_accepted() {
    let plan: serde_json::Value = serde_saphyr::from_str(&example(A)).unwrap();
    let json = serde_json::to_string_pretty(&plan).unwrap();
    let source = Source::new("plan.json", json.clone());
    let checked = validate::check(&source);
    assert!(!checked.has_errors(), "{:?}", checked.findings);
    // Located in JSON too.
    let bad = json.replacen("\"20.0.0.0/8\"", "\"20.0.0.1/8\"", 1);
    let source = Source::new("plan.json", bad.clone());
    let checked = validate::check(&source);
    let f = checked
        .findings
        .iter()
        .find(|f| f.path.as_str() == "vpcs[0].cidrs[0]")
        .unwrap();
    let line = bad.lines().position(|l| l.contains("20.0.0.1/8")).unwrap() + 1;
    assert!(
        f.locate(&source)
            .to_string()
            .starts_with(&format!("plan.json:{line}:"))
    );
}

/// The first finding of `text`, located, as the CLI prints its headline.
fn first_located(text: &str) -> String {
    let source = Source::new("plan.yaml", text.to_owned());
    let checked = validate::check(&source);
    let first = checked.findings.first().expect("a finding");
    first.locate(&source).to_string()
}

#[test]
fn yaml_syntax_errors_point_at_the_broken_line() {
    let plan = example(A);
    let lines: Vec<&str> = plan.lines().collect();
    // A flow sequence missing its `]` and other syntax mistakes: the finding points at
    // the line, never at the document root.
    let flow = lines
        .iter()
        .position(|l| l.contains('[') && l.contains(']'))
        .expect("a flow sequence in the example");
    let broken = |edit: &dyn Fn(&str) -> String| -> String {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| if i == flow { edit(l) } else { (*l).to_owned() })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let cases: Vec<(&str, String)> = vec![
        ("dropped ]", broken(&|l: &str| l.replacen(']', "", 1))),
        ("tab", broken(&|l: &str| format!("\t{l}"))),
        (
            "unterminated quote",
            broken(&|l: &str| l.replacen('[', "[\"x", 1)),
        ),
        ("NUL", broken(&|l: &str| format!("{l}\0"))),
    ];
    for (case, text) in cases {
        let located = first_located(&text);
        let line: usize = located
            .split(':')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{case}: no line in {located}"));
        // A tab that starts a line ends the plain scalar before it: the parser reports
        // the line above, which is where the reader has to look too.
        assert!(
            line >= flow,
            "{case}: reported at line {line}, broken at {}: {located}",
            flow + 1
        );
    }
    let alias = format!("{plan}\nextra: *nowhere\n");
    let located = first_located(&alias);
    let last = alias.lines().count();
    assert!(
        located.starts_with(&format!("plan.yaml:{last}:")),
        "{located}"
    );
}

#[test]
fn yaml_messages_speak_of_the_plan_not_the_library() {
    let plan = example(A);
    let duplicate = format!("{plan}\napiVersion: again\n");
    let located = first_located(&duplicate);
    assert!(
        located.contains("duplicate key \"apiVersion\""),
        "{located}"
    );
    let two = format!("{plan}\n---\n{plan}");
    let located = first_located(&two);
    assert!(located.contains("a plan is one YAML document"), "{located}");
    for text in [duplicate, two] {
        let source = Source::new("plan.yaml", text);
        for f in validate::check(&source).findings {
            for leak in ["DuplicateKeyPolicy", "Options", "from_str"] {
                assert!(
                    !f.message.contains(leak) && !f.hint.contains(leak),
                    "{}",
                    f.message
                );
            }
        }
    }
}

#[test]
fn bad_scalars_are_named_at_their_path() {
    let plan = example(A);
    let cases = [
        (
            ("cn-hangzhou: 90", "cn-hangzhou: -10"),
            "services[3].traffic.distribute[\"cn-hangzhou\"][\"cn-hangzhou\"]",
            "-10 is less than the minimum of 0",
        ),
        (
            ("cn-hangzhou: 90", "cn-hangzhou: 89.5"),
            "services[3].traffic.distribute[\"cn-hangzhou\"][\"cn-hangzhou\"]",
            "89.5 is not of type \"integer\"",
        ),
        (
            ("cn-hangzhou: 90", "cn-hangzhou: \"90\""),
            "services[3].traffic.distribute[\"cn-hangzhou\"][\"cn-hangzhou\"]",
            "\"90\" is not of type \"integer\"",
        ),
        (
            ("baseEjectionTime: 1m", "baseEjectionTime: -1s"),
            "services[3].outlierDetection.baseEjectionTime",
            "\"-1s\" does not match",
        ),
    ];
    let mut failures = Vec::new();
    for ((old, new), path, expected) in cases {
        let text = apply(&plan, &[(old, new)], new);
        let source = Source::new("plan.yaml", text);
        let checked = validate::check(&source);
        let hit = checked.findings.iter().any(|f| {
            f.severity == Severity::Error
                && f.path.as_str() == path
                && f.message.contains(expected)
                && !f.message.contains("anyOf")
        });
        if !hit {
            let got: Vec<String> = checked
                .findings
                .iter()
                .map(|f| format!("  {}: {}", f.path, f.message))
                .collect();
            failures.push(format!(
                "{new}: expected {expected:?} at {path}; got\n{}",
                got.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A plan's weights are the policy's own type: `90.0` is the whole number 90 in both
/// (istiod may hand the filter JSON numbers as floats), `89.5` is refused above.
#[test]
fn a_whole_weight_written_as_a_float_reads_as_in_the_policy() {
    let text = apply(
        &example(A),
        &[("cn-hangzhou: 90", "cn-hangzhou: 90.0")],
        "90.0",
    );
    let checked = validate::check(&Source::new("plan.yaml", text));
    assert!(!checked.has_errors(), "{:?}", checked.findings);
    let plan = checked.plan.expect("the plan parses");
    let weights = plan
        .services
        .iter()
        .find_map(|s| s.traffic.as_ref()?.distribute.get("cn-hangzhou").cloned())
        .expect("reviews distributes from cn-hangzhou");
    assert_eq!(
        weights.get("cn-hangzhou"),
        Some(&geolb_policy::units::WholeNumber(90))
    );
}

#[test]
fn failure_status_codes_name_the_bad_code() {
    let plan = example(A);
    let text = apply(
        &plan,
        &[(
            "  sha256: ",
            "  health:\n    failureStatusCodes: [999, -1]\n  sha256: ",
        )],
        "codes",
    );
    let source = Source::new("plan.yaml", text);
    let findings: Vec<String> = validate::check(&source)
        .findings
        .iter()
        .map(|f| format!("{}: {}", f.path, f.message))
        .collect();
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("filter.health.failureStatusCodes[1]: -1")),
        "{findings:?}"
    );
    assert!(
        !findings.iter().any(|f| f.contains("anyOf")),
        "{findings:?}"
    );
}

#[test]
fn a_plan_of_five_thousand_services_is_within_the_node_limit() {
    let plan = example(A);
    let start = plan.find("  - name: reviews\n").unwrap();
    let end = start + plan[start..].find("gateways:").unwrap();
    let reviews = &plan[start..end];
    let mut many = String::new();
    for i in 0..5_000 {
        many.push_str(&reviews.replacen("name: reviews", &format!("name: reviews-{i}"), 1));
    }
    let text = format!("{}{many}{}", &plan[..start], &plan[end..]);
    let source = Source::new("plan.yaml", text);
    let findings = validate::check(&source).findings;
    assert!(
        !findings
            .iter()
            .any(|f| f.message.contains("does not parse")),
        "{:?}",
        findings.first()
    );
}
