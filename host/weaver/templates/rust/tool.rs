//! `{{name}}`: a Weft tool (the `tool` world of `wit/tool.wit`).
//!
//! A tool is a function from JSON to JSON that agents and people call
//! through the kernel's gate. This one counts the words and characters of
//! `{"text": "..."}` and answers `{"words", "chars"}`.

wit_bindgen::generate!({ path: "wit", world: "tool" });

/// JSON Schema of the input `invoke` takes.
const SCHEMA: &str =
    r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#;

struct Tool;

impl Guest for Tool {
    /// What `weaver tool ls` shows and agents read to call the tool.
    fn describe() -> ToolInfo {
        ToolInfo {
            name: "{{name}}".into(),
            description: "Counts the words and characters of a text.".into(),
            params_schema: SCHEMA.into(),
        }
    }

    fn invoke(input: String) -> Result<String, ToolError> {
        let v: serde_json::Value =
            serde_json::from_str(&input).map_err(|e| ToolError::InvalidInput(e.to_string()))?;
        let text = v
            .get("text")
            .and_then(|t| t.as_str())
            .ok_or_else(|| ToolError::InvalidInput("expected {\"text\": \"...\"}".into()))?;
        let words = text.split_whitespace().count();
        let chars = text.chars().count();
        Ok(serde_json::json!({ "words": words, "chars": chars }).to_string())
    }
}

export!(Tool);
