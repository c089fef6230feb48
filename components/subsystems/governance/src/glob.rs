//! Glob patterns over dotted action names: `*` matches within one segment
//! (`tool.exec.*`, `tool.*x`), `**` matches any number of whole segments,
//! including none (`tool.**` matches `tool` and `tool.exec.calc`).

/// A checked pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub text: String,
    segments: Vec<String>,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.len() > 256 {
            return Err(format!(
                "action pattern `{text}` must be 1..=256 characters"
            ));
        }
        let segments: Vec<String> = text.split('.').map(str::to_string).collect();
        for s in &segments {
            if s.is_empty() {
                return Err(format!("action pattern `{text}` has an empty segment"));
            }
            if s.contains("**") && s != "**" {
                return Err(format!(
                    "action pattern `{text}`: `**` must be a whole segment"
                ));
            }
        }
        // Bounds the backtracking of `**`.
        if segments.iter().filter(|s| *s == "**").count() > 3 {
            return Err(format!("action pattern `{text}` has more than 3 `**`"));
        }
        Ok(Pattern {
            text: text.to_string(),
            segments,
        })
    }

    pub fn matches(&self, action: &str) -> bool {
        let a: Vec<&str> = action.split('.').collect();
        let p: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        segs(&p, &a)
    }
}

fn segs(p: &[&str], a: &[&str]) -> bool {
    match p.split_first() {
        None => a.is_empty(),
        Some((&"**", rest)) => (0..=a.len()).any(|i| segs(rest, &a[i..])),
        Some((first, rest)) => match a.split_first() {
            Some((x, a_rest)) => wild(first.as_bytes(), x.as_bytes()) && segs(rest, a_rest),
            None => false,
        },
    }
}

/// `*` matches any run of characters within a segment.
fn wild(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, a: &str) -> bool {
        Pattern::parse(p).unwrap().matches(a)
    }

    #[test]
    fn globs() {
        assert!(m("tool.exec.*", "tool.exec.calc"));
        assert!(!m("tool.exec.*", "tool.exec"));
        assert!(!m("tool.exec.*", "tool.exec.a.b"));
        assert!(m("tool.exec.**", "tool.exec"));
        assert!(m("tool.exec.**", "tool.exec.a.b"));
        assert!(m("**", "ipc.send"));
        assert!(m("ipc.send", "ipc.send"));
        assert!(!m("ipc.send", "ipc.sender"));
        assert!(m("ipc.s*", "ipc.send"));
        assert!(m("**.spawn", "agent.spawn"));
        assert!(Pattern::parse("a..b").is_err());
        assert!(Pattern::parse("a.b**").is_err());
    }
}
