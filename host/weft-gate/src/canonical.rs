//! Canonical JSON: one byte string per JSON value, so a context hash does
//! not depend on map insertion order or serde_json's `preserve_order`.

use serde_json::Value;

/// Serializes `v` canonically: object keys sorted by UTF-8 bytes, no
/// whitespace, numbers as serde_json prints them, strings escaped like
/// serde_json (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other controls as
/// `\u00xx`, everything else verbatim).
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::with_capacity(64);
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(val, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_compact_and_parseable() {
        let v = json!({"b": [1, 2.5, null], "a": {"z": true, "y": "q\"\n\u{1}é"}});
        let c = canonical_json(&v);
        assert_eq!(c, r#"{"a":{"y":"q\"\n\u0001é","z":true},"b":[1,2.5,null]}"#);
        let back: Value = serde_json::from_str(&c).unwrap();
        assert_eq!(back, v);
        // Same value built in another order: same bytes.
        let mut m = serde_json::Map::new();
        m.insert("a".into(), json!({"y": "q\"\n\u{1}é", "z": true}));
        m.insert("b".into(), json!([1, 2.5, null]));
        assert_eq!(canonical_json(&Value::Object(m)), c);
        // Matches serde_json's compact output when keys are already sorted.
        assert_eq!(c, serde_json::to_string(&back).unwrap());
    }
}
