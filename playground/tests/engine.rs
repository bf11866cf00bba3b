//! The playground's engine against the CLI's own functions: the page shows what
//! `geolb validate`, `render` and `simulate` would.

use std::path::Path;

use geolb::render::ExtensionApi;
use geolb::secret::RouteSecrets;
use geolb_playground::{EXAMPLES, Toggle, analyse, simulate, timeline, topology};

fn example_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/examples")
        .join(name)
        .join("plan.yaml")
}

#[test]
fn every_example_renders_the_files_the_cli_renders() {
    let secrets = RouteSecrets::example().expect("the example secret");
    for example in EXAMPLES {
        for (api, name) in [
            (ExtensionApi::Wasmplugin, "wasmplugin"),
            (ExtensionApi::Trafficextension, "trafficextension"),
        ] {
            let cli = geolb::render_file(&example_path(example.name), api, &secrets)
                .expect("the CLI renders the example");
            let page = analyse(example.text, name).expect("analysed");
            assert_eq!(page.errors, 0, "{}: {:?}", example.name, page.diagnostics);
            assert_eq!(
                page.files.as_ref(),
                Some(&cli),
                "{} with {name}",
                example.name
            );
        }
    }
}

#[test]
fn the_examples_are_the_committed_plans() {
    for example in EXAMPLES {
        let committed = std::fs::read_to_string(example_path(example.name)).expect("read");
        assert_eq!(example.text, committed, "{}", example.name);
    }
}

#[test]
fn a_broken_plan_shows_what_validate_prints_where_it_points() {
    // A weight sum of 99 in a plan with non-ASCII text before it: the marked range is
    // in JavaScript string units, not bytes.
    let text = EXAMPLES[0]
        .text
        .replacen("# Scenario A", "# Szenario Ä – 两个区域", 1)
        .replacen("cn-hangzhou: 90", "cn-hangzhou: 89", 1);
    let page = analyse(&text, "wasmplugin").expect("analysed");
    assert!(page.errors >= 1, "{:?}", page.diagnostics);
    assert_eq!(page.files, None, "a plan with errors renders nothing");
    let first = page.diagnostics.first().expect("a diagnostic");
    assert_eq!(first.severity, "error");
    let at = format!(
        "plan.yaml:{}:{}: {}",
        first.line.expect("line"),
        first.column.expect("column"),
        first.path
    );
    assert!(first.text.contains(&at), "{at} in {}", first.text);
    let (start, end) = (first.start.expect("start"), first.end.expect("end"));
    let units: Vec<u16> = text.encode_utf16().collect();
    let marked = String::from_utf16(units.get(start..end).expect("in range")).expect("utf-16");
    assert!(
        first.path.starts_with("services[3].traffic.distribute"),
        "{}",
        first.path
    );
    let line = text
        .lines()
        .nth(first.line.expect("line") - 1)
        .expect("line");
    let from_column: String = line
        .chars()
        .skip(first.column.expect("column") - 1)
        .collect();
    assert!(
        !marked.is_empty() && from_column.starts_with(&marked),
        "{marked:?} at {from_column:?}"
    );
    assert!(
        from_column.starts_with("cn-hangzhou: 89"),
        "{from_column:?}"
    );
}

#[test]
fn a_yaml_syntax_error_is_placed_at_the_broken_line() {
    let text = EXAMPLES[0]
        .text
        .replacen("cidrs: [20.0.0.0/8]", "cidrs: [20.0.0.0/8", 1);
    let page = analyse(&text, "wasmplugin").expect("analysed");
    let first = page.diagnostics.first().expect("a diagnostic");
    assert!(first.line.expect("line") > 3, "{first:?}");
}

#[test]
fn an_unknown_extension_api_is_refused_by_name() {
    let e = analyse(EXAMPLES[0].text, "envoyfilter").expect_err("refused");
    assert!(e.contains("\"envoyfilter\""), "{e}");
}

#[test]
fn the_topology_holds_the_compiled_chains() {
    let view = topology(EXAMPLES[0].text).expect("topology");
    let names: Vec<&str> = view.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cn-hangzhou", "cn-shanghai"]);
    let reviews = view
        .services
        .iter()
        .find(|s| s.name == "reviews.default")
        .expect("reviews");
    let shares: Vec<(u32, Vec<&str>)> = reviews.from["cn-hangzhou"]
        .iter()
        .map(|s| (s.weight, s.order.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        shares,
        [
            (90, vec!["cn-hangzhou", "cn-shanghai"]),
            (10, vec!["cn-shanghai", "cn-hangzhou"])
        ]
    );
    let from_shanghai = &reviews.from["cn-shanghai"];
    assert_eq!(from_shanghai.len(), 1);
    assert_eq!(from_shanghai[0].order, ["cn-shanghai", "cn-hangzhou"]);
    let d = topology(EXAMPLES[3].text).expect("topology of d");
    assert!(d.networks.len() >= 2, "{:?}", d.networks);
    assert!(
        d.regions
            .iter()
            .flat_map(|r| &r.clusters)
            .any(|c| c.east_west_gateway.is_some())
    );
}

fn toggle(region: &str, condition: &str, percent: Option<u8>, during: Option<&str>) -> Toggle {
    Toggle {
        region: region.to_owned(),
        condition: condition.to_owned(),
        percent,
        during: during.map(str::to_owned),
    }
}

#[test]
fn a_region_toggled_down_moves_its_share_as_simulate_says() {
    let split = simulate(
        EXAMPLES[0].text,
        "cn-hangzhou",
        &[toggle("cn-hangzhou", "down", None, None)],
    )
    .expect("simulated");
    assert_eq!(split.0["reviews.default"]["cn-shanghai"], 100.0);
    let up = simulate(EXAMPLES[0].text, "cn-hangzhou", &[]).expect("simulated");
    let hangzhou = up.0["reviews.default"]["cn-hangzhou"];
    assert!((89.0..=91.0).contains(&hangzhou), "{hangzhou}");
}

#[test]
fn bad_toggles_are_refused_by_name() {
    let text = EXAMPLES[0].text;
    let e = simulate(
        text,
        "cn-hangzhou",
        &[toggle("cn-hangzhou", "on-fire", None, None)],
    )
    .expect_err("refused");
    assert!(e.contains("on-fire"), "{e}");
    let e = simulate(
        text,
        "cn-hangzhou",
        &[toggle("cn-hangzhou", "degraded", None, None)],
    )
    .expect_err("refused");
    assert!(e.contains("percent"), "{e}");
    let e = simulate(
        text,
        "cn-hangzhou",
        &[toggle("eu-west", "down", None, None)],
    )
    .expect_err("refused");
    assert!(e.contains("eu-west"), "{e}");
    let e = timeline(
        text,
        "cn-hangzhou",
        &[toggle("cn-hangzhou", "down", None, Some("40s..10s"))],
        "60s",
    )
    .expect_err("refused");
    assert!(e.contains("ends before it starts"), "{e}");
    let e = timeline(text, "cn-hangzhou", &[], "2h").expect_err("refused");
    assert!(e.contains("1s to 1h"), "{e}");
}

#[test]
fn a_timeline_plays_and_plots() {
    let played = timeline(
        EXAMPLES[0].text,
        "cn-hangzhou",
        &[toggle("cn-hangzhou", "down", None, Some("10s..30s"))],
        "40s",
    )
    .expect("played");
    assert_eq!(played.timeline.seconds, 40);
    let shanghai = &played.timeline.services["reviews.default"]["cn-shanghai"];
    assert!(shanghai[20] > 99.0, "{shanghai:?}");
    assert!(played.svg.starts_with("<svg"), "{}", &played.svg[..40]);
}
