//! Benchmark (not a timed test): validate and render a synthetic plan of 1,000
//! services x 20 clusters. Run: `cargo bench -p geolb --bench render` (prints the time;
//! measure peak memory with `/usr/bin/time -v`).

use std::fmt::Write as _;
use std::time::Instant;

use geolb::render::{ExtensionApi, RenderOptions};
use geolb::source::Source;
use geolb::topology::Topology;

const CLUSTERS: usize = 20;
const SERVICES: usize = 1_000;
const REGIONS: usize = 5;

fn synthetic_plan() -> String {
    let mut p = String::from(
        "apiVersion: geolb.io/v1alpha1\nkind: Plan\nmeshes:\n  - name: bench\n    controlPlane: multi-primary\n    trust: shared root CA\nregions:\n",
    );
    for r in 0..REGIONS {
        let _ = writeln!(p, "  - name: region-{r}");
    }
    p.push_str("networks:\n");
    for r in 0..REGIONS {
        let _ = writeln!(p, "  - name: net-{r}");
    }
    p.push_str("clusters:\n");
    for c in 0..CLUSTERS {
        let r = c % REGIONS;
        let _ = write!(
            p,
            "  - name: cluster-{c}\n    region: region-{r}\n    network: net-{r}\n    podCidrs: [10.{c}.0.0/16]\n    serviceCidrs: [172.{}.0.0/16]\n    eastWestGateway: {{address: 100.64.0.{c}, port: 15443}}\n",
            16 + c
        );
    }
    p.push_str("services:\n");
    for s in 0..SERVICES {
        let a = s % CLUSTERS;
        let b = (s + 7) % CLUSTERS;
        let (ra, rb) = (a % REGIONS, b % REGIONS);
        let _ = write!(
            p,
            "  - name: svc-{s}\n    namespace: ns-{}\n    port: 8080\n    versions:\n      - name: v1\n        clusters: [cluster-{a}]\n      - name: v2\n        clusters: [cluster-{b}]\n",
            s % 10
        );
        if ra != rb {
            let _ = write!(
                p,
                "    traffic:\n      failover:\n        region-{ra}: [region-{rb}]\n        region-{rb}: [region-{ra}]\n      distribute:\n        region-{ra}: {{region-{ra}: 90, region-{rb}: 10}}\n"
            );
        }
    }
    p.push_str("filter:\n  url: oci://registry.example.com/geolb/filter:0.1.0\n  sha256: e07b571b31dca47e0a44dcf89e4bf6e3fe35f17b434a24fccdc40b07bd72ba87\n");
    p
}

fn main() {
    let text = synthetic_plan();
    let started = Instant::now();
    let source = Source::new("bench.yaml", text.clone());
    let checked = geolb::validate::check(&source);
    let validated = started.elapsed();
    let errors: Vec<String> = checked
        .findings
        .iter()
        .filter(|f| f.severity == geolb::finding::Severity::Error)
        .map(|f| format!("{}: {}", f.path, f.message))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let Some(plan) = checked.plan else { return };
    let Ok(route_secrets) = geolb::secret::RouteSecrets::example() else {
        return;
    };
    let options = RenderOptions {
        extension_api: ExtensionApi::Wasmplugin,
        route_secrets,
    };
    let render_started = Instant::now();
    let manifests = geolb::render::render(&Topology::new(&plan), &options).unwrap_or_default();
    let rendered = render_started.elapsed();
    let bytes: usize = manifests.values().map(String::len).sum();
    println!(
        "plan: {} KiB, {SERVICES} services x {CLUSTERS} clusters; parse+validate {:.3}s, render {:.3}s, total {:.3}s; {} files, {:.1} MiB",
        text.len() / 1024,
        validated.as_secs_f64(),
        rendered.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        manifests.len(),
        bytes as f64 / 1_048_576.0
    );
}
