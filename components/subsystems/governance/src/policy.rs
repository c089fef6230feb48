//! The policy: parsed from TOML and checked once, then evaluated per action.

use std::collections::BTreeMap;

use serde::Deserialize;

use weft_model::glob::ActionPattern;

/// Longest action pattern accepted, in bytes.
pub const MAX_PATTERN: usize = 256;

pub const DEFAULT_DIMENSIONS: [&str; 5] = ["risk", "fairness", "privacy", "novelty", "security"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Branch {
    Legislative,
    Executive,
    Judicial,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Advisory,
    Warning,
    Blocking,
    Critical,
}

/// Ordered from most to least permissive: the strictest fired rule wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Permit,
    PermitWithWarning,
    EscalateToHuman,
    Deny,
}

/// What a blocking rule does when only a per-dimension threshold is
/// exceeded (the overall magnitude is within the environment's threshold).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Breach {
    Warn,
    Escalate,
    Deny,
}

/// A rule's own verdict, overriding its severity's: `verdict = "escalate"`
/// makes a person decide every action the rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleVerdict {
    Permit,
    Warn,
    Escalate,
    Deny,
}

impl RuleVerdict {
    pub fn verdict(self) -> Verdict {
        match self {
            RuleVerdict::Permit => Verdict::Permit,
            RuleVerdict::Warn => Verdict::PermitWithWarning,
            RuleVerdict::Escalate => Verdict::EscalateToHuman,
            RuleVerdict::Deny => Verdict::Deny,
        }
    }
}

impl Breach {
    pub fn verdict(self) -> Verdict {
        match self {
            Breach::Warn => Verdict::PermitWithWarning,
            Breach::Escalate => Verdict::EscalateToHuman,
            Breach::Deny => Verdict::Deny,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    dimensions: Option<Vec<String>>,
    #[serde(default)]
    environments: BTreeMap<String, EnvFile>,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvFile {
    magnitude_threshold: f64,
    #[serde(default)]
    dimensions: Option<Vec<String>>,
    #[serde(default)]
    on_breach: Option<Breach>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    #[serde(default)]
    description: String,
    branch: Branch,
    severity: Severity,
    #[serde(default = "yes")]
    active: bool,
    actions: Vec<String>,
    #[serde(default)]
    thresholds: BTreeMap<String, f64>,
    #[serde(default)]
    verdict: Option<RuleVerdict>,
}

fn yes() -> bool {
    true
}

pub struct Env {
    pub name: String,
    pub magnitude_threshold: f64,
    pub dimensions: Vec<String>,
    pub on_breach: Breach,
    pub aliases: Vec<String>,
}

pub struct Rule {
    pub id: String,
    pub description: String,
    pub branch: Branch,
    pub severity: Severity,
    pub active: bool,
    /// The action patterns as written, for listings.
    pub actions: Vec<String>,
    /// The same, compiled: Weft's one action-pattern language
    /// (`weft_model::glob`), so the gate and this engine agree.
    pub patterns: Vec<ActionPattern>,
    pub thresholds: Vec<(String, f64)>,
    /// Overrides the severity's verdict when the rule fires.
    pub verdict: Option<RuleVerdict>,
}

pub struct Policy {
    pub name: String,
    pub dimensions: Vec<String>,
    pub envs: Vec<Env>,
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Parse and check a policy. Syntax errors carry `line L, column C`.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let f: PolicyFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let (l, c) = line_col(text, s.start);
                    format!("line {l}, column {c}: ")
                })
                .unwrap_or_default();
            format!("policy: {at}{}", e.message())
        })?;
        let dimensions = match f.dimensions {
            Some(d) => check_dims(d, "dimensions")?,
            None => DEFAULT_DIMENSIONS.iter().map(|s| s.to_string()).collect(),
        };
        if f.environments.is_empty() {
            return Err("policy: no [environments.*] defined".into());
        }
        let mut envs = Vec::new();
        for (name, e) in f.environments {
            if !(e.magnitude_threshold.is_finite() && e.magnitude_threshold > 0.0) {
                return Err(format!(
                    "policy: environments.{name}.magnitude_threshold must be a positive number"
                ));
            }
            let dims = match e.dimensions {
                Some(d) => check_dims(d, &format!("environments.{name}.dimensions"))?,
                None => dimensions.clone(),
            };
            envs.push(Env {
                on_breach: e.on_breach.unwrap_or(Breach::Escalate),
                name,
                magnitude_threshold: e.magnitude_threshold,
                dimensions: dims,
                aliases: e.aliases,
            });
        }
        let mut rules: Vec<Rule> = Vec::new();
        for r in f.rules {
            if r.id.is_empty() || rules.iter().any(|x| x.id == r.id) {
                return Err(format!("policy: rule id `{}` is empty or repeated", r.id));
            }
            if r.actions.is_empty() {
                return Err(format!("policy: rule `{}` has no actions", r.id));
            }
            let mut patterns = Vec::new();
            for a in &r.actions {
                if a.len() > MAX_PATTERN {
                    return Err(format!(
                        "policy: rule `{}`: action pattern `{a}` is longer than {MAX_PATTERN} bytes",
                        r.id
                    ));
                }
                let p = ActionPattern::compile(a)
                    .map_err(|e| format!("policy: rule `{}`: {e}", r.id))?;
                patterns.push(p);
            }
            for (d, max) in &r.thresholds {
                if !max.is_finite() || *max < 0.0 {
                    return Err(format!(
                        "policy: rule `{}`: threshold `{d}` must be a non-negative number",
                        r.id
                    ));
                }
            }
            rules.push(Rule {
                id: r.id,
                description: r.description,
                branch: r.branch,
                severity: r.severity,
                active: r.active,
                actions: r.actions,
                patterns,
                thresholds: r.thresholds.into_iter().collect(),
                verdict: r.verdict,
            });
        }
        Ok(Policy {
            name: f.name.unwrap_or_else(|| "unnamed".into()),
            dimensions,
            envs,
            rules,
        })
    }

    /// The environment called `name`, or having it as an alias.
    pub fn env(&self, name: &str) -> Option<&Env> {
        self.envs.iter().find(|e| e.name == name).or_else(|| {
            self.envs
                .iter()
                .find(|e| e.aliases.iter().any(|a| a == name))
        })
    }
}

fn check_dims(d: Vec<String>, key: &str) -> Result<Vec<String>, String> {
    if d.is_empty() || d.iter().any(String::is_empty) {
        return Err(format!("policy: `{key}` must list non-empty names"));
    }
    Ok(d)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
