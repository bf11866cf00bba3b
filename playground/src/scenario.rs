//! The what-if controls: a region toggled down, degraded or drained, over a span when
//! the scenario is played as a timeline. `geolb simulate` plays it.

use geolb::simulate::{self, Condition, Scenario, Span, Split, plot, timeline};
use serde::{Deserialize, Serialize};

use crate::valid_plan;

/// One region's toggle, as the page sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Toggle {
    /// The region.
    pub region: String,
    /// `down`, `degraded` or `drained`.
    pub condition: String,
    /// For `degraded`: the percent of its requests that fail (1..100).
    #[serde(default)]
    pub percent: Option<u8>,
    /// For a timeline: when it holds, `START..END` (`10s..40s`); all along when absent.
    #[serde(default)]
    pub during: Option<String>,
}

/// A played timeline and its plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Played {
    /// The split of every second.
    pub timeline: timeline::Timeline,
    /// The SVG `geolb simulate --svg` writes.
    pub svg: String,
}

/// Reads the page's JSON list of toggles.
pub(crate) fn toggles(json: &str) -> Result<Vec<Toggle>, String> {
    serde_json::from_str(json).map_err(|e| format!("the toggles are not understood: {e}"))
}

/// The settled split, as `geolb simulate --from FROM --down ...` prints it.
pub fn simulate(text: &str, from: &str, toggles: &[Toggle]) -> Result<Split, String> {
    let plan = valid_plan(text)?;
    simulate::simulate(&plan, &scenario(from, toggles)?).map_err(|e| e.to_string())
}

/// The timeline of `length`, as `geolb simulate --timeline LENGTH --svg FILE` plays it.
pub fn timeline(
    text: &str,
    from: &str,
    toggles: &[Toggle],
    length: &str,
) -> Result<Played, String> {
    let plan = valid_plan(text)?;
    let length_ms = timeline::length(length).map_err(|e| format!("timeline length: {e}"))?;
    let timeline =
        timeline::play(&plan, &scenario(from, toggles)?, length_ms).map_err(|e| e.to_string())?;
    let svg = plot::svg(&timeline).map_err(|e| format!("the plot cannot be drawn: {e}"))?;
    Ok(Played { timeline, svg })
}

fn scenario(from: &str, toggles: &[Toggle]) -> Result<Scenario, String> {
    let mut scenario = Scenario::from(from);
    for toggle in toggles {
        let condition = match (toggle.condition.as_str(), toggle.percent) {
            ("down", _) => Condition::Down,
            ("drained", _) => Condition::Drained,
            ("degraded", Some(percent)) => Condition::Degraded(percent),
            ("degraded", None) => {
                return Err(format!("{} degraded: by what percent?", toggle.region));
            }
            (other, _) => {
                return Err(format!(
                    "{}: {other:?} is not down, degraded or drained",
                    toggle.region
                ));
            }
        };
        let during = match &toggle.during {
            Some(span) => Span::parse(span).map_err(|e| format!("{}: {e}", toggle.region))?,
            None => Span::ALWAYS,
        };
        scenario = scenario.with(&toggle.region, condition, during);
    }
    Ok(scenario)
}
