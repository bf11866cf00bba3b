//! The timeline as an SVG plot: one panel per service, each region's share of every
//! second stacked to 100%, the events as dashed lines. Deterministic: the same
//! timeline gives the same bytes.

use std::collections::BTreeSet;

use serde::Serialize;

use super::MESH_DEFAULT;
use super::timeline::Timeline;
use crate::render::templates::{self, TIMELINE_SVG};

const WIDTH: f64 = 900.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 44.0;
const PANEL_HEIGHT: f64 = 150.0;
/// Room above each panel for its title, below it for the time axis.
const PANEL_GAP: f64 = 56.0;
/// Region colours in the order of the region names (colour-blind safe, Okabe-Ito).
const PALETTE: &[&str] = &[
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000",
];
const MESH_DEFAULT_COLOR: &str = "#9e9e9e";
/// Tick steps to choose from, seconds: the smallest that gives at most 10 ticks.
const TICK_STEPS: &[u64] = &[1, 2, 5, 10, 15, 30, 60, 120, 300, 600];

/// What the template draws.
#[derive(Debug, Serialize)]
struct Plot {
    width: String,
    height: String,
    title: String,
    legend: Vec<Swatch>,
    panels: Vec<Panel>,
}

#[derive(Debug, Serialize)]
struct Swatch {
    x: String,
    color: &'static str,
    region: String,
}

#[derive(Debug, Serialize)]
struct Panel {
    service: String,
    title_y: String,
    top: String,
    bottom: String,
    left: String,
    plot_width: String,
    plot_height: String,
    tick_end: String,
    axis_label_y: String,
    areas: Vec<Area>,
    x_ticks: Vec<Tick>,
    y_ticks: Vec<Tick>,
    events: Vec<Marker>,
}

#[derive(Debug, Serialize)]
struct Area {
    region: String,
    color: &'static str,
    points: String,
}

#[derive(Debug, Serialize)]
struct Tick {
    at: String,
    label: String,
}

#[derive(Debug, Serialize)]
struct Marker {
    x: String,
    /// Labels of events in a row go one under the other.
    dy: String,
    /// Past the middle, a label ends at its line instead of starting there.
    dx: &'static str,
    anchor: &'static str,
    label: String,
}

/// The SVG document of `timeline`.
pub fn svg(timeline: &Timeline) -> Result<String, minijinja::Error> {
    let env = templates::environment()?;
    env.get_template(TIMELINE_SVG)?.render(plot(timeline))
}

/// One decimal: enough for a pixel, and the same text on every machine.
fn px(value: f64) -> String {
    format!("{value:.1}")
}

fn plot(timeline: &Timeline) -> Plot {
    let regions: Vec<&String> = timeline
        .services
        .values()
        .flat_map(|r| r.keys())
        .filter(|r| r.as_str() != MESH_DEFAULT)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let color_of = |region: &str| -> &'static str {
        if region == MESH_DEFAULT {
            return MESH_DEFAULT_COLOR;
        }
        regions
            .iter()
            .position(|r| r.as_str() == region)
            .and_then(|i| PALETTE.get(i % PALETTE.len()))
            .copied()
            .unwrap_or(MESH_DEFAULT_COLOR)
    };
    let has_default = timeline
        .services
        .values()
        .any(|r| r.contains_key(MESH_DEFAULT));
    let legend = regions
        .iter()
        .map(|r| r.as_str())
        .chain(has_default.then_some(MESH_DEFAULT))
        .enumerate()
        .map(|(i, region)| Swatch {
            x: px(LEFT + 150.0 * f64::from(u32::try_from(i).unwrap_or(0))),
            color: color_of(region),
            region: region.to_owned(),
        })
        .collect();
    let panels: Vec<Panel> = timeline
        .services
        .iter()
        .enumerate()
        .map(|(i, (service, series))| {
            let top = TOP + PANEL_GAP + (PANEL_HEIGHT + PANEL_GAP) * to_f64(i);
            panel(timeline, service, series, top, &color_of)
        })
        .collect();
    let height = TOP + (PANEL_HEIGHT + PANEL_GAP) * to_f64(panels.len()) + PANEL_GAP / 2.0;
    Plot {
        width: px(WIDTH),
        height: px(height),
        title: format!(
            "geolb simulate --timeline: each second's split, from {}",
            timeline.from
        ),
        legend,
        panels,
    }
}

fn to_f64(n: usize) -> f64 {
    f64::from(u32::try_from(n).unwrap_or(u32::MAX))
}

fn panel(
    timeline: &Timeline,
    service: &str,
    series: &std::collections::BTreeMap<String, Vec<f64>>,
    top: f64,
    color_of: &dyn Fn(&str) -> &'static str,
) -> Panel {
    let seconds = timeline.seconds.max(1);
    let plot_width = WIDTH - LEFT - RIGHT;
    let x = |second: f64| LEFT + plot_width * second / seconds as f64;
    let y = |percent: f64| top + PANEL_HEIGHT * (1.0 - percent / 100.0);
    // The regions bottom up, the mesh default on top.
    let order = series
        .iter()
        .filter(|(r, _)| r.as_str() != MESH_DEFAULT)
        .chain(series.iter().filter(|(r, _)| r.as_str() == MESH_DEFAULT));
    let mut below = vec![0.0_f64; usize::try_from(seconds).unwrap_or(0)];
    let mut areas = Vec::new();
    for (region, values) in order {
        if values.iter().all(|v| *v == 0.0) {
            continue;
        }
        let above: Vec<f64> = below
            .iter()
            .zip(values.iter().chain(std::iter::repeat(&0.0)))
            .map(|(b, v)| (b + v).min(100.0))
            .collect();
        // Each second is a step: its top edge left to right, then the edge below
        // right to left.
        let mut points = Vec::with_capacity(below.len() * 4);
        for (second, level) in above.iter().enumerate() {
            let s = to_f64(second);
            points.push(format!("{},{}", px(x(s)), px(y(*level))));
            points.push(format!("{},{}", px(x(s + 1.0)), px(y(*level))));
        }
        for (second, level) in below.iter().enumerate().rev() {
            let s = to_f64(second);
            points.push(format!("{},{}", px(x(s + 1.0)), px(y(*level))));
            points.push(format!("{},{}", px(x(s)), px(y(*level))));
        }
        areas.push(Area {
            region: region.clone(),
            color: color_of(region),
            points: points.join(" "),
        });
        below = above;
    }
    let step = TICK_STEPS
        .iter()
        .copied()
        .find(|step| seconds / step <= 10)
        .unwrap_or(3_600);
    let x_ticks = (0..=seconds / step)
        .map(|k| Tick {
            at: px(x((k * step) as f64)),
            label: format!("{}s", k * step),
        })
        .collect();
    let y_ticks = [0.0, 50.0, 100.0]
        .iter()
        .map(|p| Tick {
            at: px(y(*p)),
            label: format!("{p:.0}%"),
        })
        .collect();
    let events = timeline
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let at = x(e.at_ms as f64 / 1_000.0);
            let right_half = at > LEFT + plot_width / 2.0;
            Marker {
                x: px(at),
                dy: px(12.0 + 12.0 * to_f64(i % 4)),
                dx: if right_half { "-3" } else { "3" },
                anchor: if right_half { "end" } else { "start" },
                label: format!("{} {}", e.region, e.change),
            }
        })
        .collect();
    Panel {
        service: service.to_owned(),
        title_y: px(top - 10.0),
        top: px(top),
        bottom: px(top + PANEL_HEIGHT),
        left: px(LEFT),
        plot_width: px(plot_width),
        plot_height: px(PANEL_HEIGHT),
        tick_end: px(top + PANEL_HEIGHT + 4.0),
        axis_label_y: px(top + PANEL_HEIGHT + 16.0),
        areas,
        x_ticks,
        y_ticks,
        events,
    }
}
