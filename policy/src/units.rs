//! Small value types of the wire policy that protobuf `Struct` round trips would
//! otherwise break: integers arrive as doubles (`90.0`), durations as text (`"1m"`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A non-negative integer that also accepts a JSON number with a zero fraction
/// (`3.0`), as istiod's `Struct` -> JSON conversion may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WholeNumber(pub u64);

impl Serialize for WholeNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<WholeNumber, E> {
                u64::try_from(v).map(WholeNumber).map_err(|_| {
                    E::custom(format!("{v} is negative; a whole number >= 0 is required"))
                })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<WholeNumber, E> {
                // 2^53: beyond it an f64 no longer holds every integer exactly.
                if v.is_finite() && v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v)
                {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Ok(WholeNumber(v as u64))
                } else {
                    Err(E::custom(format!("{v} is not a whole number >= 0")))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for WholeNumber {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WholeNumber".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "integer", "minimum": 0 })
    }
}

/// A duration written as Istio writes them: one or more `<number><unit>` parts with
/// units `ms`, `s`, `m`, `h` (`"500ms"`, `"1m"`, `"1m30s"`, `"1.5s"`). Keeps the text
/// it was given so a policy serializes back unchanged, and its exact length in
/// nanoseconds (digits below a nanosecond dropped, as Go's `time.ParseDuration` does),
/// so that rules with another resolution than the filter's milliseconds can be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationText {
    text: String,
    millis: u64,
    nanos: u128,
}

/// Why a duration text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration like \"500ms\", \"30s\", \"1m\" or \"1h\": {reason}")]
pub struct DurationError {
    text: String,
    reason: &'static str,
}

impl DurationText {
    /// Parses `text`; whole milliseconds are the resolution.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let fail = |reason| DurationError {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(fail("it is empty"));
        }
        let mut rest = trimmed;
        let mut total_nanos: u128 = 0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (number, after) = rest.split_at(number_len);
            if number.is_empty() {
                return Err(fail("a number must come before each unit"));
            }
            let unit_len = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            let unit_nanos: u128 = match unit {
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "" => return Err(fail("a unit (ms, s, m, h) must follow each number")),
                _ => return Err(fail("units are ms, s, m and h")),
            };
            let (whole, fraction) = match number.split_once('.') {
                Some((w, f)) => (w, f),
                None => (number, ""),
            };
            if whole.is_empty() || fraction.contains('.') {
                return Err(fail("malformed number"));
            }
            let whole: u128 = whole.parse().map_err(|_| fail("number too large"))?;
            let mut nanos = whole
                .checked_mul(unit_nanos)
                .ok_or_else(|| fail("too long"))?;
            // Fraction digits scaled into the unit, truncated below a nanosecond.
            let mut scale = unit_nanos;
            for digit in fraction.chars().take(16) {
                scale /= 10;
                nanos += u128::from(digit.to_digit(10).unwrap_or(0)) * scale;
            }
            total_nanos = total_nanos
                .checked_add(nanos)
                .ok_or_else(|| fail("too long"))?;
            rest = after;
        }
        let millis = u64::try_from(total_nanos / 1_000_000).map_err(|_| fail("too long"))?;
        Ok(Self {
            text: trimmed.to_owned(),
            millis,
            nanos: total_nanos,
        })
    }

    /// Builds the canonical text for a whole number of milliseconds (`"1500ms"`, `"30s"`).
    pub fn from_millis(millis: u64) -> Self {
        let text = if millis.is_multiple_of(1_000) {
            format!("{}s", millis / 1_000)
        } else {
            format!("{millis}ms")
        };
        Self {
            text,
            millis,
            nanos: u128::from(millis) * 1_000_000,
        }
    }

    /// The length in whole milliseconds (a fraction of a millisecond is dropped).
    pub fn millis(&self) -> u64 {
        self.millis
    }

    /// The exact length in nanoseconds.
    pub fn nanos(&self) -> u128 {
        self.nanos
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for DurationText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DurationText::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for DurationText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$",
            "description": "A duration such as \"500ms\", \"30s\", \"1m\", \"1h\" or \"1m30s\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_istio_forms() {
        for (text, millis) in [
            ("500ms", 500),
            ("1s", 1_000),
            ("1m", 60_000),
            ("1.5s", 1_500),
            ("1m30s", 90_000),
            ("2h", 7_200_000),
            ("0s", 0),
        ] {
            assert_eq!(
                DurationText::parse(text).map(|d| d.millis()),
                Ok(millis),
                "{text}"
            );
        }
    }

    #[test]
    fn exact_lengths_keep_what_milliseconds_drop() {
        for (text, nanos, millis) in [
            ("1.5ms", 1_500_000, 1),
            ("0.0005s", 500_000, 0),
            ("1.000000001s", 1_000_000_001, 1_000),
            ("1.0000000001s", 1_000_000_000, 1_000),
            ("0.001m", 60_000_000, 60),
            ("1m30s", 90_000_000_000, 90_000),
        ] {
            let d = DurationText::parse(text).unwrap();
            assert_eq!((d.nanos(), d.millis()), (nanos, millis), "{text}");
        }
        assert_eq!(DurationText::from_millis(1_500).nanos(), 1_500_000_000);
    }

    #[test]
    fn bad_durations_say_why() {
        for text in ["", "5", "s", "5d", "1..5s", "-1s", "1s5"] {
            let err = DurationText::parse(text).expect_err(text);
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn whole_numbers_accept_integral_doubles_only() {
        let ok: Vec<WholeNumber> = serde_json::from_str("[90, 90.0, 0]").unwrap();
        assert_eq!(ok, vec![WholeNumber(90), WholeNumber(90), WholeNumber(0)]);
        for bad in ["90.5", "-1", "\"90\"", "1e300"] {
            assert!(serde_json::from_str::<WholeNumber>(bad).is_err(), "{bad}");
        }
    }
}
