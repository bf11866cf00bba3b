//! Services, ingress gateways and the filter deployment: unknown references, versions,
//! chains that reach nowhere (warning), module pinning. The region rules (weights,
//! failover to self or to regions where the service does not run) are the core's: the
//! policy the plan renders is compiled here and its findings mapped back to the plan.

use std::collections::BTreeSet;

use super::Checker;
use crate::finding::Finding;
use crate::plan::Service;
use crate::policy::{PolicyFor, is_region_rule, plan_path, wire_policy};
use crate::render::SUBSET_PREFIX;
use crate::source::FieldPath;

/// A well-formed route token for compiling the policy during validation.
const VALIDATION_TOKEN: &str = "token-of-validation-only";

pub(super) fn check(c: &mut Checker) {
    services(c);
    gateways(c);
    filter(c);
    policy(c);
}

/// The policy the filter will receive, compiled by the core. The core owns the region
/// rules (failover chains, distributions, drains): its findings on them are reported
/// as they are, at the plan field they came from. Anything else it refuses should
/// already be reported by the plan's own checks, so that is a safety net, reported
/// only when nothing else is.
fn policy(c: &mut Checker) {
    // `validate` needs no secret: any well-formed token stands in for the real one.
    let wire = wire_policy(&c.topo, PolicyFor::Sidecars, VALIDATION_TOKEN);
    let Err(errors) = geolb_policy::CompiledPolicy::try_from(&wire) else {
        return;
    };
    let plan_has_errors = c
        .findings
        .iter()
        .any(|f| f.severity == crate::finding::Severity::Error);
    for e in errors.0 {
        let path = plan_path(c.plan(), &e.path);
        let finding = if is_region_rule(&e.path) {
            Finding::error(path, e.problem.to_string(), e.hint())
        } else if plan_has_errors {
            continue;
        } else {
            Finding::error(
                path,
                format!("the filter would refuse this policy: {e}"),
                format!("{}; see docs/policy.md", e.hint()),
            )
        };
        c.findings
            .push(if e.at_key { finding.at_key() } else { finding });
    }
}

fn services(c: &mut Checker) {
    let plan = c.plan();
    let root = FieldPath::root();
    let cluster_names: Vec<&str> = plan.clusters.iter().map(|x| x.name.as_str()).collect();
    for (i, s) in plan.services.iter().enumerate() {
        let at = root.key("services").index(i);
        c.dns_label(at.key("name"), "service", &s.name, 63);
        c.dns_label(at.key("namespace"), "namespace", &s.namespace, 63);
        if s.port == 0 {
            c.error(
                at.key("port"),
                format!("service {} has port 0", s.name),
                "use the Service port the clients call (e.g. 9080)",
            );
        }
        match (s.versions.is_empty(), s.clusters.is_empty()) {
            (true, true) => c.error(
                at.key("name"),
                format!("service {} runs nowhere", s.name),
                "list the clusters it runs in (clusters) or its versions with their clusters",
            ),
            (false, false) => c.error(
                at.key("clusters"),
                format!("service {} lists both clusters and versions", s.name),
                "use versions[].clusters when the service has versions",
            ),
            _ => {}
        }
        for (j, cl) in s.clusters.iter().enumerate() {
            if !cluster_names.contains(&cl.as_str()) {
                c.unknown(at.key("clusters").index(j), "cluster", cl, &cluster_names);
            }
        }
        c.unique(
            "cluster of a service",
            s.clusters
                .iter()
                .enumerate()
                .map(|(j, x)| (at.key("clusters").index(j), x.as_str())),
        );
        for (v, version) in s.versions.iter().enumerate() {
            let vat = at.key("versions").index(v);
            c.dns_label(vat.key("name"), "version", &version.name, 63);
            if version.name.starts_with(SUBSET_PREFIX) {
                c.error(
                    vat.key("name"),
                    format!(
                        "version {:?} collides with geolb's region subsets",
                        version.name
                    ),
                    format!("the prefix {SUBSET_PREFIX} is reserved for region subsets"),
                );
            }
            if version.clusters.is_empty() {
                c.error(
                    vat.key("clusters"),
                    format!("version {} of {} runs in no cluster", version.name, s.name),
                    "list its clusters",
                );
            }
            for (j, cl) in version.clusters.iter().enumerate() {
                if !cluster_names.contains(&cl.as_str()) {
                    c.unknown(vat.key("clusters").index(j), "cluster", cl, &cluster_names);
                }
            }
            for key in version.labels.keys() {
                if key.is_empty() || key.contains('*') {
                    c.error(
                        vat.key("labels").key(key),
                        format!("label key {key:?} is not a label key"),
                        "write a Kubernetes label key such as version",
                    );
                }
            }
        }
        c.unique(
            "version",
            s.versions
                .iter()
                .enumerate()
                .map(|(v, x)| (at.key("versions").index(v).key("name"), x.name.as_str())),
        );
        unreachable_chains(c, s, &at);
    }
    let keys: Vec<(FieldPath, String)> = plan
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                root.key("services").index(i).key("name"),
                format!("{}.{}", s.name, s.namespace),
            )
        })
        .collect();
    c.unique("service", keys.iter().map(|(p, k)| (p.clone(), k.as_str())));
}

/// Chains that reach no other region where the service runs: a plan-only warning (the
/// core's rules on chains and distributions are reported by [`policy`]).
fn unreachable_chains(c: &mut Checker, s: &Service, at: &FieldPath) {
    let Some(traffic) = &s.traffic else { return };
    let runs_in: Vec<&str> = c.topo.service_regions(s);
    if traffic.failover.is_empty() || runs_in.len() < 2 {
        return;
    }
    for region in &runs_in {
        let mut reached = BTreeSet::new();
        let mut queue = vec![*region];
        while let Some(r) = queue.pop() {
            for next in traffic.failover.get(r).into_iter().flatten() {
                if reached.insert(next.as_str()) {
                    queue.push(next.as_str());
                }
            }
        }
        if !reached.iter().any(|r| r != region && runs_in.contains(r)) {
            c.warning(
                at.key("traffic").key("failover"),
                format!("when region {region} fails, no failover rule of {} leads to another region where it runs", s.name),
                format!("add a chain for {region}; without one the filter falls back to the remaining regions in plan order"),
            );
        }
    }
}

fn gateways(c: &mut Checker) {
    let plan = c.plan();
    let root = FieldPath::root();
    for (i, g) in plan.gateways.iter().enumerate() {
        let at = root.key("gateways").index(i);
        c.dns_label(at.key("name"), "gateway", &g.name, 63);
        c.dns_label(at.key("namespace"), "namespace", &g.namespace, 63);
        if let Some(ns) = &g.workload_namespace {
            c.dns_label(at.key("workloadNamespace"), "namespace", ns, 63);
        }
        if g.port == Some(0) {
            c.error(
                at.key("port"),
                "port 0 is not a port",
                "use the listener port, e.g. 80",
            );
        }
        if g.routes.is_empty() {
            c.error(
                at.key("routes"),
                format!("gateway {} routes nothing", g.name),
                "add routes to services",
            );
        }
        for (r, route) in g.routes.iter().enumerate() {
            let rat = at.key("routes").index(r);
            if c.topo.service(&route.service).is_none() {
                let names: Vec<String> = plan
                    .services
                    .iter()
                    .map(|s| format!("{}.{}", s.name, s.namespace))
                    .collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                c.unknown(rat.key("service"), "service", &route.service, &refs);
            }
            if route.exact.is_empty() && route.prefix.is_empty() {
                c.error(
                    rat.key("service"),
                    format!("the route to {} matches no path", route.service),
                    "add exact paths or prefixes",
                );
            }
            for (k, p) in route.exact.iter().chain(route.prefix.iter()).enumerate() {
                if !p.starts_with('/') {
                    let field = if k < route.exact.len() {
                        rat.key("exact").index(k)
                    } else {
                        rat.key("prefix").index(k - route.exact.len())
                    };
                    c.error(
                        field,
                        format!("path {p:?} does not start with '/'"),
                        "write absolute paths such as /productpage",
                    );
                }
            }
        }
    }
    c.unique(
        "gateway",
        plan.gateways
            .iter()
            .enumerate()
            .map(|(i, g)| (root.key("gateways").index(i).key("name"), g.name.as_str())),
    );
}

fn filter(c: &mut Checker) {
    let plan = c.plan();
    let at = FieldPath::root().key("filter");
    let f = &plan.filter;
    let scheme = f.url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("oci" | "http" | "https") => {
            if f.sha256.is_none() {
                c.error(at.key("url"), format!("module {} is not pinned", f.url), "set filter.sha256 to the module's SHA-256 (64 hex digits): for oci:// the image's manifest digest, as scripts/build-wasm.sh prints it");
            }
        }
        // istiod turns file:// into a local data source and drops the sha256 (Istio
        // 1.30.3 pilot/pkg/model/extensions.go buildDataSource), and nothing geolb
        // renders puts the file into the proxies.
        Some("file") => c.error(
            at.key("url"),
            format!("{:?} names a file inside the proxy container: no rendered manifest puts it there, and istiod drops the sha256 of file:// modules", f.url),
            "publish the module as an OCI image and pin it: url oci://REGISTRY/geolb/geolb-filter:TAG, sha256 its manifest digest (docs/module-image.md)",
        ),
        _ => c.error(at.key("url"), format!("{:?} is not an oci://, https:// or http:// URL", f.url), "e.g. oci://registry.example.com/geolb/geolb-filter:0.1.0 with sha256 the image's manifest digest (docs/module-image.md)"),
    }
    if let Some(source) = &f.route_secret {
        let names = [("env", &source.env), ("previousEnv", &source.previous_env)];
        for (field, name) in names {
            if let Some(name) = name
                && !is_env_name(name)
            {
                c.error(
                    at.key("routeSecret").key(field),
                    format!("{name:?} is not an environment variable name"),
                    "use letters, digits and '_', not starting with a digit, e.g. GEOLB_ROUTE_SECRET",
                );
            }
        }
        if source.env.is_some() && source.env == source.previous_env {
            c.error(
                at.key("routeSecret").key("previousEnv"),
                "names the same variable as env",
                "while rotating, previousEnv holds the old secret and env the new one (docs/plan.md#routesecret)",
            );
        }
    }
    if let Some(sha) = &f.sha256 {
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            c.error(
                at.key("sha256"),
                format!("{sha:?} is not a SHA-256"),
                "write 64 lowercase hex digits (sha256sum output)",
            );
        } else if let Some((_, digest)) = f.url.split_once("@sha256:")
            && digest != sha
        {
            c.error(
                at.key("sha256"),
                format!("sha256 {sha} differs from the digest in the URL ({digest})"),
                "Istio requires both to match; fix one",
            );
        }
    }
    if let Some(name) = &f.name {
        c.dns_label(at.key("name"), "plugin name", name, 63);
    }
    for (i, ns) in f.namespaces.iter().enumerate() {
        c.dns_label(at.key("namespaces").index(i), "namespace", ns, 63);
    }
    let mut label_problems = Vec::new();
    for (k, v) in &f.workload_selector {
        if k.is_empty() || k.contains('*') || v.contains('*') || v.len() > 63 {
            label_problems.push(k.clone());
        }
    }
    for k in label_problems {
        c.error(at.key("workloadSelector").key(&k), format!("selector {k:?} is not a valid label match (no wildcards, values up to 63 characters)"), "use plain Kubernetes labels");
    }
}

/// A portable environment variable name (POSIX: letters, digits, '_', no leading digit).
fn is_env_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
