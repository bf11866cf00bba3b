//! The command line as a platform engineer meets it: help texts, diagnostics for bad
//! plans, exit codes, and `check` catching drift (one character, extra and missing files).

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn geolb(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_geolb"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("GEOLB_ROUTE_SECRET", geolb::secret::EXAMPLE_ROUTE_SECRET)
        .output()
        .unwrap()
}

fn generator() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(scenario: &str) -> PathBuf {
    generator()
        .join("../manifests/examples")
        .join(scenario)
        .join("plan.yaml")
}

fn transcript(out: &Output) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn help_texts() {
    for (name, args) in [
        ("help", vec!["--help"]),
        ("help-validate", vec!["validate", "--help"]),
        ("help-render", vec!["render", "--help"]),
        ("help-check", vec!["check", "--help"]),
        ("help-plan", vec!["plan", "--help"]),
    ] {
        let out = geolb(&args, &generator());
        assert!(out.status.success());
        insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn bad_plans_are_explained() {
    let fixtures = generator().join("tests/fixtures");
    for name in ["bad-semantics", "bad-shape"] {
        let out = geolb(&["validate", &format!("{name}.yaml")], &fixtures);
        assert_eq!(out.status.code(), Some(1), "{name}");
        insta::assert_snapshot!(name, transcript(&out));
        // render refuses too, writing nothing.
        let dir = tempfile::tempdir().unwrap();
        let out = geolb(
            &[
                "render",
                &format!("{name}.yaml"),
                "-o",
                dir.path().to_str().unwrap(),
            ],
            &fixtures,
        );
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

#[test]
fn warnings_do_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("a-failover-distribution"))
        .unwrap()
        .replace("        cn-shanghai: [cn-hangzhou]\n", "");
    std::fs::write(dir.path().join("plan.yaml"), text).unwrap();
    let out = geolb(&["validate", "plan.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", transcript(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("⚠") && stderr.contains("0 error(s), 1 warning(s)"),
        "{stderr}"
    );
}

#[test]
fn check_catches_drift() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let plan = example("a-failover-distribution");
    let plan = plan.to_str().unwrap();
    let out_str = out_dir.to_str().unwrap();
    assert!(
        geolb(&["render", plan, "-o", out_str], dir.path())
            .status
            .success()
    );
    let clean = geolb(&["check", plan, out_str], dir.path());
    assert_eq!(clean.status.code(), Some(0), "{}", transcript(&clean));

    // One character.
    let dr = out_dir.join("mesh/default/destinationrule-reviews.yaml");
    let text = std::fs::read_to_string(&dr).unwrap();
    std::fs::write(
        &dr,
        text.replacen("consecutive5xxErrors: 1", "consecutive5xxErrors: 2", 1),
    )
    .unwrap();
    let drifted = geolb(&["check", plan, out_str], dir.path());
    assert_eq!(drifted.status.code(), Some(1));
    let diff = String::from_utf8_lossy(&drifted.stdout);
    assert!(
        diff.contains("--- a/mesh/default/destinationrule-reviews.yaml"),
        "{diff}"
    );
    assert!(
        diff.contains("-      consecutive5xxErrors: 2\n+      consecutive5xxErrors: 1"),
        "{diff}"
    );
    assert!(String::from_utf8_lossy(&drifted.stderr).contains("1 file(s) differ"));

    // render repairs it; then an extra and a missing file.
    assert!(
        geolb(&["render", plan, "-o", out_str], dir.path())
            .status
            .success()
    );
    std::fs::write(out_dir.join("mesh/extra.yaml"), "kind: Stray\n").unwrap();
    std::fs::remove_file(out_dir.join("mesh/default/virtualservice-details.yaml")).unwrap();
    let drifted = geolb(&["check", plan, out_str], dir.path());
    assert_eq!(drifted.status.code(), Some(1));
    let diff = String::from_utf8_lossy(&drifted.stdout);
    assert!(
        diff.contains("--- a/mesh/extra.yaml\n+++ /dev/null"),
        "{diff}"
    );
    assert!(
        diff.contains("--- /dev/null\n+++ b/mesh/default/virtualservice-details.yaml"),
        "{diff}"
    );

    // render removes files it wrote before and no longer renders, keeps others.
    let stale = out_dir.join("mesh/default/destinationrule-gone.yaml");
    std::fs::write(&stale, "# Generated by geolb from the mesh plan.\n").unwrap();
    assert!(
        geolb(&["render", plan, "-o", out_str], dir.path())
            .status
            .success()
    );
    assert!(!stale.exists());
    assert!(out_dir.join("mesh/extra.yaml").exists());

    // A file of an earlier layout goes with the folder it leaves empty; a folder that
    // holds a file geolb did not write stays.
    let old_layout = out_dir.join("clusters/ack-hangzhou/install");
    std::fs::create_dir_all(&old_layout).unwrap();
    std::fs::write(
        old_layout.join("meshnetworks.yaml"),
        "# Generated by geolb from the mesh plan.\n",
    )
    .unwrap();
    let kept = out_dir.join("clusters/ack-shanghai/install");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(
        kept.join("istiooperator.yaml"),
        "# Generated by geolb from the mesh plan.\n",
    )
    .unwrap();
    std::fs::write(kept.join("notes.txt"), "mine\n").unwrap();
    assert!(
        geolb(&["render", plan, "-o", out_str], dir.path())
            .status
            .success()
    );
    assert!(!old_layout.exists());
    assert!(
        out_dir
            .join("clusters/ack-hangzhou/vendor-console.md")
            .exists()
    );
    assert!(!kept.join("istiooperator.yaml").exists());
    assert!(kept.join("notes.txt").exists());
}

#[test]
fn network_plan_report() {
    let plan = example("a-failover-distribution");
    let table = geolb(&["plan", plan.to_str().unwrap()], &generator());
    assert!(table.status.success());
    insta::assert_snapshot!("plan-a-table", String::from_utf8_lossy(&table.stdout));
    let json = geolb(
        &["plan", plan.to_str().unwrap(), "--output", "json"],
        &generator(),
    );
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let rules = &report["clusters"][0]["securityGroupRules"];
    assert_eq!(rules[0]["source"], "10.1.0.0/16", "{report}");
    // Terway peers are admitted by their vSwitch CIDR.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&plan).unwrap().replace(
        "    serviceCidrs: [172.17.0.0/16]\n    cni: flannel",
        "    serviceCidrs: [172.17.0.0/16]\n    cni: terway",
    );
    std::fs::write(dir.path().join("plan.yaml"), text).unwrap();
    let json = geolb(&["plan", "plan.yaml", "--output", "json"], dir.path());
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        report["clusters"][0]["securityGroupRules"][0]["source"], "21.0.0.0/16",
        "{report}"
    );
    assert_eq!(
        report["clusters"][1]["securityGroupRules"][0]["source"], "10.0.0.0/16",
        "{report}"
    );
}

#[test]
fn trafficextension_needs_istio_1_30() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("a-failover-distribution"))
        .unwrap()
        .replace("istioVersion: \"1.30\"", "istioVersion: \"1.29\"");
    std::fs::write(dir.path().join("plan.yaml"), text).unwrap();
    let out = geolb(
        &[
            "render",
            "plan.yaml",
            "-o",
            "out",
            "--extension-api",
            "trafficextension",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TrafficExtension needs Istio 1.30"));
    let out = geolb(&["render", "plan.yaml", "-o", "out"], dir.path());
    assert!(out.status.success());
}

/// Everything under `dir`: relative path -> file bytes, link target or "dir".
fn tree_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(name, format!("link -> {}", target.display()).into_bytes());
            } else if kind.is_dir() {
                out.insert(name, b"dir".to_vec());
                walk(root, &path, out);
            } else {
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A rendered scenario A in `<tmp>/out`, and a secret file beside it.
fn rendered_with_secret() -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let plan = example("a-failover-distribution").display().to_string();
    let rendered = geolb(
        &["render", &plan, "-o", out_dir.to_str().unwrap()],
        tmp.path(),
    );
    assert!(rendered.status.success(), "{}", transcript(&rendered));
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, "CI_TOKEN=hunter2-do-not-print\n").unwrap();
    (tmp, out_dir, secret, plan)
}

#[test]
fn check_never_reads_through_a_symbolic_link() {
    let (tmp, out_dir, secret, plan) = rendered_with_secret();
    let target = out_dir.join("mesh/default/wasmplugin-geolb.yaml");
    assert!(target.exists(), "scenario A renders {}", target.display());
    std::fs::remove_file(&target).unwrap();
    std::os::unix::fs::symlink(&secret, &target).unwrap();
    // A linked folder is not entered either.
    std::os::unix::fs::symlink(tmp.path(), out_dir.join("mesh/elsewhere")).unwrap();
    let out = geolb(&["check", &plan, out_dir.to_str().unwrap()], tmp.path());
    let shown = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(!shown.contains("hunter2"), "the secret leaked:\n{shown}");
    assert!(
        shown.contains(
            "@@ a/mesh/default/wasmplugin-geolb.yaml is a symbolic link, which geolb neither follows nor reads"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("@@ a/mesh/elsewhere is a symbolic link"),
        "{shown}"
    );
}

#[test]
fn render_never_writes_through_a_symbolic_link_and_leaves_the_directory_as_it_was() {
    let (tmp, out_dir, secret, plan) = rendered_with_secret();
    let out_str = out_dir.to_str().unwrap().to_owned();
    // A linked file: the link's target must not be overwritten.
    let target = out_dir.join("mesh/default/wasmplugin-geolb.yaml");
    std::fs::remove_file(&target).unwrap();
    std::os::unix::fs::symlink(&secret, &target).unwrap();
    // Something else to repair, which must not be repaired either (all or nothing).
    let dr = out_dir.join("mesh/default/destinationrule-reviews.yaml");
    std::fs::write(&dr, "# edited by hand\n").unwrap();
    let before = tree_of(&out_dir);
    let out = geolb(&["render", &plan, "-o", &out_str], tmp.path());
    let shown = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!(
            "{} is a symbolic link: geolb never follows links in its output directory",
            target.display()
        )),
        "{shown}"
    );
    assert!(shown.contains("nothing was written"), "{shown}");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "CI_TOKEN=hunter2-do-not-print\n"
    );
    assert_eq!(tree_of(&out_dir), before, "the directory changed");

    // A linked folder: nothing is written into where it points.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fresh.join("mesh")).unwrap();
    let out = geolb(
        &["render", &plan, "-o", fresh.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(
        transcript(&out).contains(&format!(
            "{} is a symbolic link",
            fresh.join("mesh").display()
        )),
        "{}",
        transcript(&out)
    );
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
    assert_eq!(
        tree_of(&fresh).len(),
        1,
        "only the link: {:?}",
        tree_of(&fresh).keys()
    );

    // The output directory itself a link.
    let linked = tmp.path().join("linked");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    let out = geolb(
        &["render", &plan, "-o", linked.to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", transcript(&out));
    assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none());
}

#[test]
fn a_render_that_cannot_finish_writes_nothing_and_names_every_path_in_the_way() {
    let (tmp, out_dir, _, plan) = rendered_with_secret();
    // Files that render must replace: one becomes a directory, one a FIFO-like
    // special file is not possible portably, so a second directory.
    let blocked = [
        out_dir.join("mesh/default/virtualservice-reviews.yaml"),
        out_dir.join("mesh/kustomization.yaml"),
    ];
    for path in &blocked {
        std::fs::remove_file(path).unwrap();
        std::fs::create_dir(path).unwrap();
    }
    let dr = out_dir.join("mesh/default/destinationrule-reviews.yaml");
    std::fs::write(&dr, "# edited by hand\n").unwrap();
    std::fs::remove_file(out_dir.join("mesh/default/virtualservice-details.yaml")).unwrap();
    let before = tree_of(&out_dir);
    let out = geolb(
        &["render", &plan, "-o", out_dir.to_str().unwrap()],
        tmp.path(),
    );
    let shown = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("2 problems in the output directory"),
        "{shown}"
    );
    for path in &blocked {
        assert!(
            shown.contains(&format!(
                "{} is a directory, where geolb needs a file",
                path.display()
            )),
            "{shown}"
        );
    }
    assert!(shown.contains("nothing was written"), "{shown}");
    assert_eq!(
        tree_of(&out_dir),
        before,
        "a failed render changed the directory"
    );
}

#[test]
fn check_names_a_binary_file_and_a_missing_directory() {
    let (tmp, out_dir, _, plan) = rendered_with_secret();
    std::fs::write(out_dir.join("mesh/default/blob.bin"), [0xff_u8, 0xfe, 0, 1]).unwrap();
    std::fs::write(
        out_dir.join("mesh/default/destinationrule-reviews.yaml"),
        [0xc3_u8, 0x28],
    )
    .unwrap();
    let out = geolb(&["check", &plan, out_dir.to_str().unwrap()], tmp.path());
    let shown = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(!shown.contains("valid UTF-8"), "{shown}");
    assert!(
        shown.contains("@@ a/mesh/default/blob.bin is a binary file (4 bytes), not text"),
        "{shown}"
    );
    assert!(
        shown.contains("@@ a/mesh/default/destinationrule-reviews.yaml is a binary file (2 bytes)"),
        "{shown}"
    );
    assert!(shown.contains("2 file(s) differ"), "{shown}");

    let missing = tmp.path().join("never-rendered");
    let out = geolb(&["check", &plan, missing.to_str().unwrap()], tmp.path());
    let shown = transcript(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!(
            "error: {} does not exist, so it cannot match the plan",
            missing.display()
        )),
        "{shown}"
    );
}

#[test]
fn plan_files_are_read_with_a_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let huge = tmp.path().join("huge.yaml");
    // Sparse: 17 MiB on paper, nothing on disk.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    for plan in [huge.to_str().unwrap(), "/dev/zero"] {
        let out = geolb(&["validate", plan], tmp.path());
        let shown = transcript(&out);
        assert_eq!(out.status.code(), Some(1), "{shown}");
        assert!(
            shown.contains(&format!(
                "error: the plan cannot be read: {plan} is larger than 16 MiB, the most geolb reads from one file"
            )),
            "{shown}"
        );
    }
    let binary = tmp.path().join("binary.yaml");
    std::fs::write(&binary, [0xff_u8, 0xfe, 0xfd]).unwrap();
    let out = geolb(&["validate", binary.to_str().unwrap()], tmp.path());
    assert!(
        transcript(&out).contains(&format!("{} is not UTF-8 text", binary.display())),
        "{}",
        transcript(&out)
    );
    let out = geolb(&["validate", tmp.path().to_str().unwrap()], tmp.path());
    assert!(
        transcript(&out).contains("is a directory, where geolb needs a plan file"),
        "{}",
        transcript(&out)
    );
}

/// `geolb` with the route secret variables as given (none set unless listed).
fn geolb_with_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_geolb"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("GEOLB_ROUTE_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn render_and_check_need_the_route_secret_and_never_print_it() {
    let plan = example("a-failover-distribution");
    let plan = plan.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["render", plan, "-o", "out"],
        vec!["check", plan, "out"],
    ] {
        let missing = geolb_with_env(&args, dir.path(), &[]);
        assert_eq!(missing.status.code(), Some(1));
        let text = flat(&missing.stderr);
        assert!(
            text.contains("the route secret is missing: environment variable GEOLB_ROUTE_SECRET (filter.routeSecret.env) is not set"),
            "{text}"
        );
        let short = "short-secret-31-characters-long";
        let out = geolb_with_env(&args, dir.path(), &[("GEOLB_ROUTE_SECRET", short)]);
        assert_eq!(out.status.code(), Some(1));
        let text = flat(&out.stderr);
        assert!(
            text.contains("environment variable GEOLB_ROUTE_SECRET (filter.routeSecret.env) is 31 bytes long; it needs at least 32"),
            "{text}"
        );
        assert!(!text.contains(short), "the secret was printed: {text}");
        assert!(!dir.path().join("out").exists(), "nothing written");
    }
    let secret = "a-real-secret-of-more-than-32-characters";
    let ok = geolb_with_env(
        &["render", plan, "-o", "out"],
        dir.path(),
        &[("GEOLB_ROUTE_SECRET", secret)],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let err = String::from_utf8_lossy(&ok.stderr);
    assert!(
        !err.contains(secret) && !err.contains("example secret"),
        "{err}"
    );
    let mut all = String::new();
    for entry in walk(&dir.path().join("out")) {
        all += &std::fs::read_to_string(entry).unwrap();
    }
    assert!(!all.contains(secret), "the secret reached the manifests");
}

/// Output with miette's wrapping undone: one space between words.
fn flat(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn simulate_prints_json_ci_can_assert_on() {
    let plan = example("a-failover-distribution");
    let plan = plan.to_str().unwrap();
    let out = geolb(
        &[
            "simulate",
            plan,
            "--from",
            "cn-hangzhou",
            "--down",
            "cn-hangzhou",
            "--output",
            "json",
        ],
        &generator(),
    );
    assert!(out.status.success(), "{}", transcript(&out));
    let parsed: std::collections::BTreeMap<String, std::collections::BTreeMap<String, f64>> =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed["reviews.default"]["cn-shanghai"], 100.0);
    assert_eq!(parsed["reviews.default"]["cn-hangzhou"], 0.0);
    let bad = geolb(
        &[
            "simulate",
            plan,
            "--from",
            "cn-hangzhou",
            "--degraded",
            "cn-shanghai=0",
        ],
        &generator(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"0\" is not a percent of 1..100"));
}

#[test]
fn simulate_timeline_prints_every_second_and_writes_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let plan = example("a-failover-distribution");
    let svg = dir.path().join("timeline.svg");
    let out = geolb(
        &[
            "simulate",
            plan.to_str().unwrap(),
            "--from",
            "cn-hangzhou",
            "--down",
            "cn-hangzhou@10s..50s",
            "--timeline",
            "90s",
            "--svg",
            svg.to_str().unwrap(),
            "--output",
            "json",
        ],
        &generator(),
    );
    assert!(out.status.success(), "{}", transcript(&out));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed["seconds"], 90);
    assert_eq!(parsed["events"][0]["change"], "down");
    assert_eq!(parsed["events"][1]["at_ms"], 50_000);
    let reviews = &parsed["services"]["reviews.default"];
    assert_eq!(reviews["cn-hangzhou"].as_array().unwrap().len(), 90);
    assert_eq!(reviews["cn-hangzhou"][0], 90.0);
    assert_eq!(reviews["cn-shanghai"][20], 100.0);
    // The plot: one panel per service, each with its areas and the two events.
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let panels: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("panel"))
        .collect();
    let services: Vec<&str> = panels
        .iter()
        .filter_map(|p| p.attribute("data-service"))
        .collect();
    assert_eq!(
        services,
        [
            "details.default",
            "productpage.default",
            "ratings.default",
            "reviews.default"
        ]
    );
    for panel in &panels {
        let count = |class: &str| {
            panel
                .descendants()
                .filter(|n| n.attribute("class") == Some(class))
                .count()
        };
        assert_eq!(count("share"), 2, "both regions took a share");
        assert_eq!(count("event"), 2);
    }
}

#[test]
fn simulate_timeline_refuses_what_it_cannot_play() {
    let plan = example("a-failover-distribution");
    let plan = plan.to_str().unwrap();
    for (args, code, message) in [
        (
            vec!["--svg", "t.svg"],
            2,
            "the following required arguments were not provided:\n  --timeline <LENGTH>",
        ),
        (
            vec!["--timeline", "2h"],
            2,
            "\"2h\" is not a length of 1s to 1h",
        ),
        (
            vec!["--timeline", "60s", "--down", "cn-hangzhou@40s..10s"],
            2,
            "\"40s..10s\" ends before it starts",
        ),
        (
            vec!["--down", "cn-hangzhou@10s.."],
            1,
            "error: --down cn-hangzhou@10s..: a time span needs --timeline",
        ),
        (
            vec!["--timeline", "10s", "--svg", "no-such-dir/t.svg"],
            1,
            "error: the plot is not written: cannot create",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec!["simulate", plan, "--from", "cn-hangzhou"];
        all.extend(args.iter().copied());
        let out = geolb(&all, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            transcript(&out)
        );
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
