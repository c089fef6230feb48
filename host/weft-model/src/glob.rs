//! The one meaning of a pattern in Weft.
//!
//! **Name patterns** (agent names, tool names, IPC scopes, topics, the app
//! ceiling) treat the name as one string: `*` matches any run of characters
//! (including none and including `.`), `?` exactly one character, anything
//! else itself. See [`name_matches`] and, for "is every name this pattern
//! matches also matched by those", [`crate::glob::covers`].
//!
//! **Action patterns** (gate rules, governance rules) work on
//! `.`-separated segments:
//! * `*` matches any run of characters within one segment (`tool.*` matches
//!   `tool.exec` but not `tool.exec.ls`);
//! * `?` matches one character within a segment;
//! * a whole segment `**` matches zero or more segments (`tool.**` matches
//!   `tool`, `tool.exec` and `tool.exec.ls`; `**` alone matches everything);
//!   at most [`MAX_DOUBLE_STARS`] of them, which bounds the backtracking.

pub use crate::cover::{covers, Uncovered, MAX_STATES, MAX_WORDS};

/// Most `**` segments an action pattern may hold.
pub const MAX_DOUBLE_STARS: usize = 2;

/// Why a pattern was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid pattern {:?}: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for PatternError {}

/// A compiled action pattern. Common shapes get O(len) fast paths so the
/// gate's hot path never allocates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionPattern {
    /// `**`
    Any,
    /// No wildcards.
    Exact(Box<str>),
    /// `lit.lit.**`: equal to the literal or starts with `literal.`.
    Prefix(Box<str>),
    /// General case.
    Segments(Box<[Seg]>),
}

/// One segment of a general action pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// No wildcards: that segment exactly.
    Lit(Box<str>),
    /// `*` alone: any single segment.
    Star,
    /// Segment containing `*`/`?` mixed with literals.
    Wild(Box<str>),
    /// `**`: zero or more segments.
    DoubleStar,
}

fn has_wild(s: &str) -> bool {
    s.contains(['*', '?'])
}

impl ActionPattern {
    /// Checks and compiles `pattern`: no empty segments, `**` only as a
    /// whole segment and at most [`MAX_DOUBLE_STARS`] times.
    pub fn compile(pattern: &str) -> Result<Self, PatternError> {
        let bad = |why: &str| PatternError {
            pattern: pattern.to_string(),
            reason: why.to_string(),
        };
        if pattern.is_empty() {
            return Err(bad("empty pattern"));
        }
        let mut segs = Vec::new();
        for s in pattern.split('.') {
            segs.push(match s {
                "" => return Err(bad("empty segment")),
                "**" => Seg::DoubleStar,
                "*" => Seg::Star,
                s if s.contains("**") => return Err(bad("'**' must be a whole segment")),
                s if has_wild(s) => Seg::Wild(s.into()),
                s => Seg::Lit(s.into()),
            });
        }
        if segs.iter().filter(|s| **s == Seg::DoubleStar).count() > MAX_DOUBLE_STARS {
            return Err(bad("at most two '**' segments"));
        }
        let n = segs.len();
        let lits = segs.iter().filter(|s| matches!(s, Seg::Lit(_))).count();
        Ok(if n == 1 && segs[0] == Seg::DoubleStar {
            ActionPattern::Any
        } else if lits == n {
            ActionPattern::Exact(pattern.into())
        } else if lits == n - 1 && segs[n - 1] == Seg::DoubleStar {
            ActionPattern::Prefix(pattern[..pattern.len() - 3].into())
        } else {
            ActionPattern::Segments(segs.into())
        })
    }

    /// Does `action` match?
    pub fn matches(&self, action: &str) -> bool {
        match self {
            ActionPattern::Any => true,
            ActionPattern::Exact(e) => **e == *action,
            ActionPattern::Prefix(p) => {
                action.len() >= p.len()
                    && action.starts_with(&**p)
                    && (action.len() == p.len() || action.as_bytes()[p.len()] == b'.')
            }
            ActionPattern::Segments(segs) => match_segs(segs, Some(action)),
        }
    }
}

/// Splits the next segment off `rest`.
fn next_seg(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    }
}

/// `rest == None` means every segment has been consumed.
fn match_segs(pats: &[Seg], rest: Option<&str>) -> bool {
    let Some((first, more)) = pats.split_first() else {
        return rest.is_none();
    };
    if *first == Seg::DoubleStar {
        if match_segs(more, rest) {
            return true;
        }
        return match rest {
            None => false,
            Some(r) => match_segs(pats, next_seg(r).1),
        };
    }
    let Some(r) = rest else {
        return false;
    };
    let (seg, tail) = next_seg(r);
    let ok = match first {
        Seg::Lit(l) => **l == *seg,
        Seg::Star => true,
        Seg::Wild(w) => wildcard(w.as_bytes(), seg.as_bytes()),
        Seg::DoubleStar => unreachable!("handled above"),
    };
    ok && match_segs(more, tail)
}

/// `*` matches any run of characters, `?` any one; everything else
/// literally. The name matcher of the whole host (capabilities, IPC scopes,
/// topics), so there is one definition of what a pattern means.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    wildcard(pattern.as_bytes(), name.as_bytes())
}

/// Classic `*`/`?` matcher with single-star backtracking: O(n·m) worst case,
/// no allocation. Works on bytes; `?` matches one UTF-8 character.
pub(crate) fn wildcard(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            si += utf8_len(s[si]);
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            let ss = ss + utf8_len(s[ss]);
            star = Some((sp, ss));
            pi = sp + 1;
            si = ss;
        } else {
            return false;
        }
    }
    p[pi.min(p.len())..].iter().all(|c| *c == b'*') && si == s.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// A compiled agent-name pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentPattern {
    /// Only `*`s: every name.
    Any,
    /// No wildcards: that name exactly.
    Exact(Box<str>),
    /// With `*` or `?`: see [`name_matches`].
    Wild(Box<str>),
}

impl AgentPattern {
    /// Compiles `pattern`; the empty pattern is refused.
    pub fn compile(pattern: &str) -> Result<Self, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError {
                pattern: String::new(),
                reason: "empty agent pattern".into(),
            });
        }
        Ok(if pattern.bytes().all(|b| b == b'*') {
            AgentPattern::Any
        } else if has_wild(pattern) {
            AgentPattern::Wild(pattern.into())
        } else {
            AgentPattern::Exact(pattern.into())
        })
    }

    /// Does the agent name `agent` match?
    pub fn matches(&self, agent: &str) -> bool {
        match self {
            AgentPattern::Any => true,
            AgentPattern::Exact(e) => **e == *agent,
            AgentPattern::Wild(w) => wildcard(w.as_bytes(), agent.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, a: &str) -> bool {
        ActionPattern::compile(p).unwrap().matches(a)
    }

    #[test]
    fn action_patterns() {
        assert!(m("ipc.send", "ipc.send"));
        assert!(!m("ipc.send", "ipc.sendx"));
        assert!(m("tool.exec.*", "tool.exec.ls"));
        assert!(!m("tool.exec.*", "tool.exec"));
        assert!(!m("tool.exec.*", "tool.exec.ls.x"));
        assert!(m("tool.*.ls", "tool.exec.ls"));
        assert!(m("tool.**", "tool"));
        assert!(m("tool.**", "tool.exec.ls"));
        assert!(!m("tool.**", "toolbox"));
        assert!(!m("tool.**", "toolbox.x"));
        assert!(m("**", "anything.at.all"));
        assert!(m("**.send", "ipc.send"));
        assert!(m("**.send", "send"));
        assert!(m("a.**.z", "a.z"));
        assert!(m("a.**.z", "a.b.c.z"));
        assert!(!m("a.**.z", "a.b.c"));
        assert!(m("svc.cron.ad?", "svc.cron.add"));
        assert!(!m("svc.cron.ad?", "svc.cron.ad"));
        assert!(m("svc.c*n.add", "svc.cron.add"));
        assert!(m("svc.*r*.add", "svc.cron.add"));
        assert!(!m("svc.*x*.add", "svc.cron.add"));
        assert!(m("f?.x", "fé.x"));
    }

    #[test]
    fn fast_paths_are_chosen() {
        assert_eq!(ActionPattern::compile("**").unwrap(), ActionPattern::Any);
        assert!(matches!(
            ActionPattern::compile("a.b").unwrap(),
            ActionPattern::Exact(_)
        ));
        assert!(
            matches!(ActionPattern::compile("a.b.**").unwrap(), ActionPattern::Prefix(p) if &*p == "a.b")
        );
        assert!(matches!(
            ActionPattern::compile("a.*").unwrap(),
            ActionPattern::Segments(_)
        ));
    }

    #[test]
    fn invalid_patterns() {
        for p in ["", "a..b", ".a", "a.", "a**", "**.**.**"] {
            assert!(ActionPattern::compile(p).is_err(), "{p}");
        }
        assert!(AgentPattern::compile("").is_err());
    }

    #[test]
    fn agent_patterns() {
        let any = AgentPattern::compile("*").unwrap();
        assert!(any.matches("x.y"));
        let w = AgentPattern::compile("worker-*").unwrap();
        assert!(w.matches("worker-1") && w.matches("worker-") && !w.matches("work"));
        let e = AgentPattern::compile("root").unwrap();
        assert!(e.matches("root") && !e.matches("root2"));
    }

    #[test]
    fn wildcard_edge_cases() {
        assert!(wildcard(b"*", b""));
        assert!(wildcard(b"", b""));
        assert!(!wildcard(b"", b"a"));
        assert!(wildcard(b"a*b*c", b"aXXbYYc"));
        assert!(!wildcard(b"a*b*c", b"aXXbYY"));
        assert!(wildcard(b"**", b"abc"));
    }
}
