//! A small block-YAML writer for serde values embedded in templates: keys in map
//! order (sorted), every string double-quoted (JSON escapes are valid YAML), so
//! user-supplied text can never change the document's structure.

use serde_json::Value;

/// Writes `value` as block YAML, every line indented by `indent` spaces, no
/// trailing newline.
pub fn block(value: &Value, indent: usize) -> String {
    let mut lines = Vec::new();
    emit(value, indent, &mut lines);
    lines.join("\n")
}

fn emit(value: &Value, indent: usize, lines: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                let key = key_text(key);
                if is_inline(v) {
                    lines.push(format!("{pad}{key}: {}", scalar(v)));
                } else {
                    lines.push(format!("{pad}{key}:"));
                    // Lists sit at their key's indentation (kubectl style).
                    let nested = if v.is_array() { indent } else { indent + 2 };
                    emit(v, nested, lines);
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_inline(item) {
                    lines.push(format!("{pad}- {}", scalar(item)));
                } else {
                    let mut nested = Vec::new();
                    emit(item, indent + 2, &mut nested);
                    let mut nested = nested.into_iter();
                    if let Some(first) = nested.next() {
                        lines.push(format!(
                            "{pad}- {}",
                            first.get(indent + 2..).unwrap_or_default()
                        ));
                    }
                    lines.extend(nested);
                }
            }
        }
        other => lines.push(format!("{pad}{}", scalar(other))),
    }
}

fn is_inline(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => true,
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::from("null"),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(_) => String::from("[]"),
        Value::Object(_) => String::from("{}"),
    }
}

/// A double-quoted YAML scalar (JSON string syntax).
pub fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

fn key_text(key: &str) -> String {
    let plain = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain { key.to_owned() } else { quote(key) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_values_are_block_yaml() {
        let v = json!({"a": {"b": [1, {"c": "x: y", "d": []}], "on": true}, "topology.istio.io/network": "n1", "e": {}});
        let want = "  a:\n    b:\n    - 1\n    - c: \"x: y\"\n      d: []\n    \"on\": true\n  e: {}\n  topology.istio.io/network: \"n1\"";
        assert_eq!(block(&v, 2), want);
        // Round trip through a YAML parser gives the same value back.
        let back: Value = serde_saphyr::from_str(&block(&v, 0)).unwrap();
        assert_eq!(back, v);
    }
}
