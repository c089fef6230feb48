//! Typed reading of a spanned TOML tree with positioned diagnostics. Every
//! reader reports what it expected and what it found, at the value's (or
//! key's) position, and returns `None` so checking goes on and collects
//! every problem in one pass.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use weft_model::plan::Diagnostic;
use weft_model::policy::CheckPolicy;

/// A TOML value with its byte span in the source.
pub type Val<'i> = Spanned<DeValue<'i>>;

/// The checking context: the source, for positions, the kernel's policy,
/// and the diagnostics so far.
pub struct Cx<'s> {
    src: &'s str,
    line_starts: Vec<usize>,
    /// What the kernel allows (checked where each key is read, so a refusal
    /// points at the key that asks).
    pub policy: CheckPolicy,
    /// The outbound allow-list of the app's environment, once known (set
    /// after the ceiling is read: it holds agents and tools, not the
    /// ceiling).
    pub env_outbound: Option<weft_model::policy::EnvOutbound>,
    /// Every problem found, in the order found.
    pub diags: Vec<Diagnostic>,
}

impl<'s> Cx<'s> {
    /// A context for checking `src`.
    pub fn new(src: &'s str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Cx {
            src,
            line_starts,
            policy: CheckPolicy::default(),
            env_outbound: None,
            diags: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn pos(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.src.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        // A span never splits a character, but be safe: count lossily.
        let col = self
            .src
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col + 1).unwrap_or(u32::MAX),
        )
    }

    /// Reports `message` about `key` at the start of `span`.
    pub fn err(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let (line, col) = self.pos(span.start);
        self.diags.push(Diagnostic {
            line,
            col,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// `expected X, found <type>` at the value.
    pub fn expected(&mut self, v: &Val<'_>, key: &str, what: &str) {
        let msg = format!("expected {what}, found {}", type_name(v.get_ref()));
        self.err(&v.span(), key, msg);
    }
}

/// The TOML type of `v`, for `found <type>` messages.
pub fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "string",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "float",
        DeValue::Boolean(_) => "boolean",
        DeValue::Datetime(_) => "datetime",
        DeValue::Array(_) => "array",
        DeValue::Table(_) => "table",
    }
}

/// `a.b` or `b` when `a` is the root.
pub fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A table being read: reports unknown keys and missing required keys.
pub struct Tbl<'a, 'i> {
    /// The table.
    pub t: &'a DeTable<'i>,
    /// Where it is written, for problems about it as a whole.
    pub span: Range<usize>,
    /// Its dotted key (empty for the root).
    pub path: String,
}

impl<'a, 'i> Tbl<'a, 'i> {
    /// Read `v` as a table whose keys must all be in `allowed`.
    pub fn of(
        cx: &mut Cx<'_>,
        v: &'a Val<'i>,
        path: &str,
        what: &str,
        allowed: &[&str],
    ) -> Option<Self> {
        match v.get_ref() {
            DeValue::Table(t) => Some(Tbl::new(cx, t, v.span(), path, allowed)),
            _ => {
                cx.expected(v, path, what);
                None
            }
        }
    }

    /// Read `v` as a table whose keys must all be in `allowed`; a key in
    /// `refused` is reported at the key with its own message (a key Weft
    /// knows and never accepts), not as unknown.
    pub fn of_refusing(
        cx: &mut Cx<'_>,
        v: &'a Val<'i>,
        path: &str,
        what: &str,
        allowed: &[&str],
        refused: &[(&str, &str)],
    ) -> Option<Self> {
        match v.get_ref() {
            DeValue::Table(t) => Some(Tbl::new_refusing(cx, t, v.span(), path, allowed, refused)),
            _ => {
                cx.expected(v, path, what);
                None
            }
        }
    }

    /// Wraps `t`, reporting each key not in `allowed`.
    pub fn new(
        cx: &mut Cx<'_>,
        t: &'a DeTable<'i>,
        span: Range<usize>,
        path: &str,
        allowed: &[&str],
    ) -> Self {
        Tbl::new_refusing(cx, t, span, path, allowed, &[])
    }

    fn new_refusing(
        cx: &mut Cx<'_>,
        t: &'a DeTable<'i>,
        span: Range<usize>,
        path: &str,
        allowed: &[&str],
        refused: &[(&str, &str)],
    ) -> Self {
        for (k, _) in t.iter() {
            let name: &str = k.get_ref();
            if let Some((_, why)) = refused.iter().find(|(r, _)| *r == name) {
                cx.err(&k.span(), &join(path, name), *why);
            } else if !allowed.contains(&name) {
                let list = allowed
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                cx.err(
                    &k.span(),
                    &join(path, k.get_ref()),
                    format!("unknown key; expected one of {list}"),
                );
            }
        }
        Tbl {
            t,
            span,
            path: path.to_string(),
        }
    }

    /// The dotted key of `name` in this table.
    pub fn key(&self, name: &str) -> String {
        join(&self.path, name)
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'a Val<'i>> {
        self.t.get(name)
    }

    /// Where the key `name` is written, if present.
    pub fn key_span(&self, name: &str) -> Option<Range<usize>> {
        self.t
            .iter()
            .find(|(k, _)| {
                let k: &str = k.get_ref();
                k == name
            })
            .map(|(k, _)| k.span())
    }

    /// A required key; missing is reported at the table.
    pub fn req(&self, cx: &mut Cx<'_>, name: &str, what: &str) -> Option<&'a Val<'i>> {
        let v = self.get(name);
        if v.is_none() {
            let where_ = if self.path.is_empty() {
                "the file".to_string()
            } else {
                format!("`{}`", self.path)
            };
            cx.err(
                &self.span,
                &self.key(name),
                format!("missing key `{name}` in {where_}; expected {what}"),
            );
        }
        v
    }

    /// An optional string.
    pub fn str(&self, cx: &mut Cx<'_>, name: &str) -> Option<String> {
        self.get(name).and_then(|v| as_str(cx, v, &self.key(name)))
    }

    /// A required string.
    pub fn req_str(&self, cx: &mut Cx<'_>, name: &str) -> Option<String> {
        self.req(cx, name, "a string")
            .and_then(|v| as_str(cx, v, &self.key(name)))
    }

    /// An optional boolean, `default` when absent or wrong.
    pub fn bool(&self, cx: &mut Cx<'_>, name: &str, default: bool) -> bool {
        match self.get(name) {
            None => default,
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => *b,
                _ => {
                    cx.expected(v, &self.key(name), "a boolean (true or false)");
                    default
                }
            },
        }
    }

    /// An optional integer in `min..=max`.
    pub fn int(&self, cx: &mut Cx<'_>, name: &str, min: u64, max: u64) -> Option<u64> {
        self.get(name)
            .and_then(|v| as_int(cx, v, &self.key(name), min, max))
    }

    /// An optional array of strings; empty when absent or wrong.
    pub fn str_list(&self, cx: &mut Cx<'_>, name: &str) -> Vec<String> {
        self.get(name)
            .and_then(|v| as_str_list(cx, v, &self.key(name)))
            .unwrap_or_default()
    }

    /// A table of string values, e.g. `env = { K = "V" }`, in key order.
    pub fn str_map(&self, cx: &mut Cx<'_>, name: &str) -> Vec<(String, String)> {
        let Some(v) = self.get(name) else {
            return Vec::new();
        };
        let key = self.key(name);
        let DeValue::Table(t) = v.get_ref() else {
            cx.expected(v, &key, "a table of strings, e.g. { KEY = \"value\" }");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in t.iter() {
            if let Some(s) = as_str(cx, val, &join(&key, k.get_ref())) {
                out.push((k.get_ref().to_string(), s));
            }
        }
        out
    }
}

/// `v` as a string, or a diagnostic.
pub fn as_str(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<String> {
    match v.get_ref() {
        DeValue::String(s) => Some(s.to_string()),
        _ => {
            cx.expected(v, key, "a string");
            None
        }
    }
}

/// `v` as an integer in `min..=max`, or a diagnostic.
pub fn as_int(cx: &mut Cx<'_>, v: &Val<'_>, key: &str, min: u64, max: u64) -> Option<u64> {
    let range = if max >= i64::MAX as u64 {
        format!("an integer >= {min}")
    } else {
        format!("an integer from {min} to {max}")
    };
    let DeValue::Integer(i) = v.get_ref() else {
        cx.expected(v, key, &range);
        return None;
    };
    match i64::from_str_radix(i.as_str(), i.radix()) {
        Ok(n) if n >= 0 && (n as u64) >= min && (n as u64) <= max => Some(n as u64),
        Ok(n) => {
            cx.err(&v.span(), key, format!("expected {range}, found {n}"));
            None
        }
        Err(_) => {
            cx.err(
                &v.span(),
                key,
                format!("expected {range}, found an integer out of range"),
            );
            None
        }
    }
}

/// `v` as an array of strings, or a diagnostic (per bad item).
pub fn as_str_list(cx: &mut Cx<'_>, v: &Val<'_>, key: &str) -> Option<Vec<String>> {
    let DeValue::Array(a) = v.get_ref() else {
        cx.expected(v, key, "an array of strings");
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in a.iter().enumerate() {
        if let Some(s) = as_str(cx, item, &format!("{key}[{i}]")) {
            out.push(s);
        }
    }
    Some(out)
}

/// One of a fixed set of strings.
pub fn as_choice<T: Copy>(
    cx: &mut Cx<'_>,
    v: &Val<'_>,
    key: &str,
    choices: &[(&str, T)],
) -> Option<T> {
    let list = quote_list(&choices.iter().map(|c| c.0).collect::<Vec<_>>());
    match v.get_ref() {
        DeValue::String(s) => match choices.iter().find(|c| c.0 == s.as_ref()) {
            Some(c) => Some(c.1),
            None => {
                cx.err(&v.span(), key, format!("expected {list}, found \"{s}\""));
                None
            }
        },
        _ => {
            cx.expected(v, key, &list);
            None
        }
    }
}

/// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
pub fn quote_list(items: &[&str]) -> String {
    let q: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        n => format!("{} or {}", q[..n - 1].join(", "), q[n - 1]),
    }
}
