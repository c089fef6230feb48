//! `wordcount`: a `weft:kernel` tool that counts words, lines and characters.
//!
//! Input `{"text": "hello wide world\nbye", "repeat": 1}` gives
//! `{"words": 4, "lines": 1, "chars": 20, "lang": "rust"}`.
//!
//! The same tool exists in C, Python and JavaScript under
//! `components/polyglot/`; all four must behave identically:
//! - whitespace is exactly ASCII space, `\t`, `\n`, `\r`, `\f`, `\v`;
//! - `words` counts maximal runs of non-whitespace, `lines` counts `\n`,
//!   `chars` counts Unicode scalar values;
//! - `repeat` (a number with an integral value >= 1, default 1) runs the
//!   whole count that many times and reports one pass: it exists to burn
//!   CPU (fuel) on purpose, so it must not be optimized away;
//! - errors are checked in this order, each an `invalid-input`: not an
//!   object; `text` missing; `text` not a string; `repeat` not a positive
//!   integer; an unknown property (the smallest such key in code-point
//!   order is named).

use serde_json::Value;

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "tool" });
}
use bindings::*;

const DESCRIPTION: &str =
    "Count the words, lines and Unicode characters of a text, optionally repeating the count.";

const SCHEMA: &str = r#"{"type":"object","properties":{"text":{"type":"string","description":"the text to count"},"repeat":{"type":"integer","minimum":1,"default":1,"description":"how many times to repeat the whole count (burns CPU; results are for one pass)"}},"required":["text"],"additionalProperties":false}"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    words: u64,
    lines: u64,
    chars: u64,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '\x0b')
}

fn count(text: &str) -> Counts {
    let mut c = Counts {
        words: 0,
        lines: 0,
        chars: 0,
    };
    let mut in_word = false;
    for ch in text.chars() {
        c.chars += 1;
        if ch == '\n' {
            c.lines += 1;
        }
        if is_space(ch) {
            in_word = false;
        } else if !in_word {
            in_word = true;
            c.words += 1;
        }
    }
    c
}

/// `repeat` as a loop count: a JSON number whose value is an integer >= 1
/// (so `3` and `3.0` both count, as in JSON Schema). Huge values saturate.
fn repeat_count(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return (n >= 1).then_some(n);
    }
    let f = v.as_f64()?;
    (f >= 1.0 && f.fract() == 0.0).then_some(f as u64)
}

fn run(input: &str) -> Result<String, String> {
    let v: Value =
        serde_json::from_str(input).map_err(|e| format!("input is not valid JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("input must be a JSON object".into());
    };
    let text = match obj.get("text") {
        None => return Err("missing required property `text` (a string)".into()),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("property `text` must be a string".into()),
    };
    let repeat = match obj.get("repeat") {
        None => 1,
        Some(r) => repeat_count(r).ok_or("property `repeat` must be an integer >= 1")?,
    };
    // Name the smallest unknown key (byte order of UTF-8 = code-point order).
    if let Some(k) = obj.keys().filter(|k| *k != "text" && *k != "repeat").min() {
        return Err(format!(
            "unknown property `{k}` (allowed: `text`, `repeat`)"
        ));
    }
    let mut counts = count(text);
    for _ in 1..repeat {
        // black_box: each pass really rescans the text.
        counts = count(std::hint::black_box(text));
        std::hint::black_box(&counts);
    }
    // Same key order as the C, Python and JavaScript versions.
    Ok(format!(
        r#"{{"words":{},"lines":{},"chars":{},"lang":"rust"}}"#,
        counts.words, counts.lines, counts.chars
    ))
}

struct WordCount;

impl Guest for WordCount {
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "wordcount".into(),
            description: DESCRIPTION.into(),
            params_schema: SCHEMA.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        run(&input).map_err(ToolError::InvalidInput)
    }
}

export!(WordCount);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(
            count("hello wide world\nbye"),
            Counts {
                words: 4,
                lines: 1,
                chars: 20
            }
        );
        assert_eq!(
            count(""),
            Counts {
                words: 0,
                lines: 0,
                chars: 0
            }
        );
        assert_eq!(
            count(" \t\x0b\x0c\r\n a\u{a0}b é\n"),
            Counts {
                words: 2,
                lines: 2,
                chars: 13
            }
        );
    }

    #[test]
    fn errors() {
        assert!(run("[]").unwrap_err().contains("object"));
        assert!(run(r#"{"txt":1}"#).unwrap_err().contains("`text`"));
        assert!(run(r#"{"text":1}"#).unwrap_err().contains("`text`"));
        for r in ["0", "-1", "1.5", "\"2\"", "null", "true"] {
            let e = run(&format!(r#"{{"text":"a","repeat":{r}}}"#)).unwrap_err();
            assert!(e.contains("`repeat`"), "{r}: {e}");
        }
        assert!(run(r#"{"text":"a","zz":1,"b":2}"#)
            .unwrap_err()
            .contains("`b`"));
    }

    #[test]
    fn ok() {
        let out: Value =
            serde_json::from_str(&run(r#"{"text":"a b\nc","repeat":3.0}"#).unwrap()).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"words":3,"lines":1,"chars":5,"lang":"rust"})
        );
        assert!(describe_schema_parses());
    }

    fn describe_schema_parses() -> bool {
        serde_json::from_str::<Value>(SCHEMA).is_ok()
    }
}
