//! The command line: clap arguments in, exit code out. Each command loads and
//! validates the plan first; errors stop it, warnings are printed and it goes on.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::files::{self, FileError};
use crate::finding;
use crate::render::{ExtensionApi, Manifests};
use crate::secret::RouteSecrets;
use crate::simulate::{Condition, Span, plot, timeline};
use crate::source::Source;
use crate::topology::Topology;
use crate::{drift, netplan, pipeline, plan, simulate, validate};

/// geolb turns one reviewed plan of a multi-region Istio mesh (regions, VPCs,
/// vSwitches, clusters, networks, services and their failover/distribution rules)
/// into a validated network plan and the Istio manifests the geolb filter relies on,
/// laid out for a GitOps repository (Argo CD, Flux).
///
/// Typical CI: `geolb validate plan.yaml && geolb check plan.yaml manifests/`.
/// Exit codes: 0 success (warnings may be printed), 1 the plan has errors or the
/// manifests drifted, 2 wrong command-line usage.
#[derive(Debug, Parser)]
#[command(name = "geolb", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a plan and report every problem at once: CIDR collisions between
    /// connected VPCs and clusters, unknown or duplicate names, weights that do not
    /// add up, failover to regions where a service does not run, missing east-west
    /// gateways. Each finding shows file:line:column, the field path and a hint.
    Validate {
        /// The plan file (YAML or JSON).
        plan: PathBuf,
    },
    /// Write the manifests of a valid plan into DIR: `mesh/` (the Istio objects),
    /// `clusters/<name>/` (a kustomization of the cluster's own objects, including
    /// ../../mesh where the control plane reads Istio objects from that cluster),
    /// `clusters/<name>/install/` (istioctl inputs), and for managed meshes
    /// `control-plane/<mesh>/` (for the vendor's API server) and
    /// `clusters/<name>/vendor-console.md`. docs/plan.md says which folder goes where.
    /// Files geolb wrote before and no longer renders are removed.
    Render {
        /// The plan file (YAML or JSON).
        plan: PathBuf,
        /// Output directory, e.g. manifests/prod.
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        #[command(flatten)]
        options: RenderArgs,
    },
    /// Exit 1 with a unified diff when DIR differs from what `render` would write,
    /// including extra and missing files: the drift gate for a GitOps CI.
    Check {
        /// The plan file (YAML or JSON).
        plan: PathBuf,
        /// The directory `render` wrote.
        dir: PathBuf,
        #[command(flatten)]
        options: RenderArgs,
    },
    /// Print the network plan: per cluster its CIDRs, the node labels locality
    /// needs, the security-group rules it needs (Flannel peers: their Pod CIDRs;
    /// Terway peers: their vSwitch CIDRs) and the remote secrets its istiod needs.
    Plan {
        /// The plan file (YAML or JSON).
        plan: PathBuf,
        /// `table` for people, `json` for machines.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Print what share of each service's requests each region takes, from proxies in
    /// REGION, while the listed regions are down, degraded or drained. A simulated
    /// proxy runs the filter's own core (decisions, health, graded spill, probes) at
    /// 100 requests/s per service; the split is counted over 600 s after a 120 s
    /// warm-up. `--output json` maps each `name.namespace` to `{region: percent}`.
    ///
    /// With `--timeline LENGTH` the scenario is played from a proxy's start instead,
    /// and the split of every second is printed: a condition may then hold for a span,
    /// `--down cn-hangzhou@10s..40s` (`START..END`, `START..` or `..END`).
    Simulate {
        /// The plan file (YAML or JSON).
        plan: PathBuf,
        /// The region of the proxies sending the requests.
        #[arg(long, value_name = "REGION")]
        from: String,
        /// A region whose upstreams refuse every connection (repeatable).
        #[arg(long, value_name = "REGION[@SPAN]", value_parser = region_during)]
        down: Vec<(String, Span)>,
        /// A region answering 503 to PERCENT of its requests (repeatable).
        #[arg(long, value_name = "REGION=PERCENT[@SPAN]", value_parser = degraded_region)]
        degraded: Vec<(String, u8, Span)>,
        /// A region the plan drains, a policy update (repeatable).
        #[arg(long, value_name = "REGION[@SPAN]", value_parser = region_during)]
        drained: Vec<(String, Span)>,
        /// Play the scenario for LENGTH (such as `90s`, at most 1h) and print the
        /// split of every second.
        #[arg(long, value_name = "LENGTH", value_parser = timeline::length)]
        timeline: Option<u64>,
        /// With `--timeline`: also write the timeline as an SVG plot to FILE.
        #[arg(long, value_name = "FILE", requires = "timeline")]
        svg: Option<PathBuf>,
        /// `table` for people, `json` for machines.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Print the plan file's JSON Schema (for editor completion).
    Schema,
}

/// Parses `REGION` or `REGION@SPAN`.
fn region_during(text: &str) -> Result<(String, Span), String> {
    match text.split_once('@') {
        Some((region, span)) => Ok((region.to_owned(), Span::parse(span)?)),
        None => Ok((text.to_owned(), Span::ALWAYS)),
    }
}

/// Parses `--degraded REGION=PERCENT[@SPAN]`.
fn degraded_region(text: &str) -> Result<(String, u8, Span), String> {
    let (text, during) = region_during(text)?;
    let (region, percent) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not REGION=PERCENT"))?;
    let percent = percent
        .trim_end_matches('%')
        .parse::<u8>()
        .ok()
        .filter(|p| simulate::DEGRADED_PERCENTS.contains(p))
        .ok_or_else(|| format!("{percent:?} is not a percent of 1..100"))?;
    Ok((region.to_owned(), percent, during))
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// Istio API carrying the filter: `wasmplugin`, or `trafficextension` (Istio 1.30+).
    #[arg(long, value_enum, default_value_t = ExtensionApi::Wasmplugin)]
    extension_api: ExtensionApi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

/// Runs the command line and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let code = execute(cli, color, &mut out, &mut err);
    let _ = out.flush();
    ExitCode::from(code)
}

fn execute(cli: Cli, color: bool, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match cli.command {
        Command::Schema => {
            let text = serde_json::to_string_pretty(&plan::json_schema()).unwrap_or_default();
            let _ = writeln!(out, "{text}");
            0
        }
        Command::Validate { plan } => validate_command(&plan, color, err),
        Command::Render {
            plan,
            output,
            options,
        } => render_command(&plan, &output, &options, color, err),
        Command::Check { plan, dir, options } => {
            check_command(&plan, &dir, &options, color, out, err)
        }
        Command::Simulate {
            plan,
            from,
            down,
            degraded,
            drained,
            timeline,
            svg,
            output,
        } => {
            let Some(parsed) = valid_plan(&plan, color, err, Some("nothing simulated")) else {
                return 1;
            };
            let mut scenario = simulate::Scenario::from(&from);
            for (region, during) in down {
                scenario = scenario.with(&region, Condition::Down, during);
            }
            for (region, percent, during) in degraded {
                scenario = scenario.with(&region, Condition::Degraded(percent), during);
            }
            for (region, during) in drained {
                scenario = scenario.with(&region, Condition::Drained, during);
            }
            let played = match timeline {
                None => simulate::simulate(&parsed, &scenario).map(|split| {
                    report(out, output, &split, simulate::table);
                    None
                }),
                Some(length_ms) => timeline::play(&parsed, &scenario, length_ms).map(|t| {
                    report(out, output, &t, timeline::table);
                    Some(t)
                }),
            };
            match (played, svg) {
                (Ok(Some(t)), Some(path)) => write_plot(&path, &t, err),
                (Ok(_), _) => 0,
                (Err(e), _) => {
                    let _ = writeln!(err, "error: {e}");
                    1
                }
            }
        }
        Command::Plan { plan, output } => {
            let Some(parsed) = valid_plan(&plan, color, err, None) else {
                return 1;
            };
            report(
                out,
                output,
                &netplan::build(&Topology::new(&parsed)),
                netplan::table,
            );
            0
        }
    }
}

/// `geolb validate`: every finding, then the counts; fails on an error.
fn validate_command(plan: &Path, color: bool, err: &mut dyn Write) -> u8 {
    let Some((source, checked)) = load(plan, color, err) else {
        return 1;
    };

    let errors = checked.error_count();
    let warnings = checked.findings.len() - errors;
    let _ = writeln!(
        err,
        "{}: {errors} error(s), {warnings} warning(s)",
        source.name()
    );
    u8::from(errors > 0)
}

/// `geolb render`: the manifests of a valid plan, written into `output` whole.
fn render_command(
    plan: &Path,
    output: &Path,
    options: &RenderArgs,
    color: bool,
    err: &mut dyn Write,
) -> u8 {
    let Some(manifests) = rendered(plan, options, color, err) else {
        return 1;
    };

    match drift::write(&manifests, output) {
        Ok(()) => {
            let _ = writeln!(
                err,
                "wrote {} files to {}",
                manifests.len(),
                output.display()
            );
            0
        }
        Err(e) => {
            let _ = writeln!(err, "error: render into {} failed: {e}", output.display());
            1
        }
    }
}

/// `geolb check`: the drift of `dir` from the plan's render, each differing file's diff
/// on `out`.
fn check_command(
    plan: &Path,
    dir: &Path,
    options: &RenderArgs,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let Some(manifests) = rendered(plan, options, color, err) else {
        return 1;
    };

    match drift::compare(&manifests, dir) {
        Ok(d) if d.is_clean() => {
            let _ = writeln!(
                err,
                "{} is up to date ({} files)",
                dir.display(),
                manifests.len()
            );
            0
        }
        Ok(d) => {
            for diff in &d.diffs {
                let _ = write!(out, "{diff}");
            }
            let _ = writeln!(
                err,
                "error: {} has drifted from the plan: {} file(s) differ\n  help: run `geolb render {} -o {}` and commit the result",
                dir.display(),
                d.diffs.len(),
                plan.display(),
                dir.display()
            );
            1
        }
        Err(FileError::Missing { path }) => {
            let _ = writeln!(
                err,
                "error: {} does not exist, so it cannot match the plan\n  help: run `geolb render {} -o {}` and commit the result",
                path.display(),
                plan.display(),
                path.display()
            );
            1
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "error: cannot compare {} with the plan: {e}",
                dir.display()
            );
            1
        }
    }
}

/// Prints `value` as `table` draws it, or as pretty JSON.
fn report<T: serde::Serialize>(
    out: &mut dyn Write,
    output: Output,
    value: &T,
    table: fn(&T) -> String,
) {
    let text = match output {
        Output::Table => table(value),
        Output::Json => serde_json::to_string_pretty(value)
            .map(|t| t + "\n")
            .unwrap_or_default(),
    };
    let _ = write!(out, "{text}");
}

/// Writes the timeline's SVG plot to `path` (replacing it whole, never through a
/// link). Returns the exit code.
fn write_plot(path: &Path, timeline: &timeline::Timeline, err: &mut dyn Write) -> u8 {
    let written = plot::svg(timeline)
        .map_err(|e| e.to_string())
        .and_then(|svg| drift::replace(path, svg.as_bytes()).map_err(|e| e.to_string()));
    match written {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "error: the plot is not written: {e}");
            1
        }
    }
}

/// Reads and validates a plan, printing every finding. `None` when unreadable.
fn load(path: &Path, color: bool, err: &mut dyn Write) -> Option<(Source, validate::Checked)> {
    let text = match files::read_plan(path) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "error: the plan cannot be read: {e}");
            return None;
        }
    };
    let source = Source::new(path.display().to_string(), text);
    let checked = validate::check(&source);
    for f in &checked.findings {
        let _ = write!(err, "{}", finding::render(&f.locate(&source), color));
    }
    Some((source, checked))
}

/// Loads and validates a plan; `None` when unreadable or with errors, after saying
/// `error: the plan has errors; <refused>` when `refused` is given.
fn valid_plan(
    path: &Path,
    color: bool,
    err: &mut dyn Write,
    refused: Option<&str>,
) -> Option<plan::Plan> {
    let (_, checked) = load(path, color, err)?;
    match pipeline::valid_plan(checked) {
        Ok(plan) => Some(plan),
        Err(_) => {
            if let Some(refused) = refused {
                let _ = writeln!(err, "error: the plan has errors; {refused}");
            }
            None
        }
    }
}

/// Loads, validates and renders; `None` after printing why not.
fn rendered(path: &Path, args: &RenderArgs, color: bool, err: &mut dyn Write) -> Option<Manifests> {
    let parsed = valid_plan(path, color, err, Some("nothing rendered"))?;
    let rendered = pipeline::render_plan(&parsed, args.extension_api, |plan| {
        let secrets = RouteSecrets::from_env(plan, |var| std::env::var_os(var))?;
        if secrets.is_example() {
            let _ = writeln!(
                err,
                "warning: the route secret is geolb's public example secret: any client can pick a region; use it for the examples and tests only"
            );
        }
        Ok(secrets)
    });
    match rendered {
        Ok(m) => Some(m),
        Err(e) => {
            let _ = write!(err, "{}", finding::render(&e, color));
            None
        }
    }
}
