//! The decision logic (documented in docs/wit.md, "governance").
//!
//! For each active rule whose action patterns match, with `magnitude` the
//! Euclidean norm of the effect over the environment's dimensions and a
//! "breach" any per-dimension threshold of the rule that is exceeded:
//!
//! | severity | fires when                                  | verdict |
//! |----------|---------------------------------------------|---------|
//! | critical | no thresholds, or a breach                  | deny |
//! | blocking | magnitude > environment threshold           | deny |
//! | blocking | (else) a breach                             | the environment's `on_breach` |
//! | warning  | no thresholds, or a breach                  | permit with warning |
//! | advisory | no thresholds, or a breach                  | permit (reported) |
//!
//! The strictest verdict of all fired rules wins; nothing fired is a
//! permit. A request the policy cannot judge is denied.

use std::collections::BTreeMap;

use crate::policy::{Policy, Rule, Severity, Verdict};

pub struct Fired<'a> {
    pub rule: &'a Rule,
    pub verdict: Verdict,
    pub reason: String,
}

pub struct Outcome<'a> {
    pub verdict: Verdict,
    pub fired: Vec<Fired<'a>>,
    pub reason: String,
}

fn refuse<'a>(reason: String) -> Outcome<'a> {
    Outcome {
        verdict: Verdict::Deny,
        fired: Vec::new(),
        reason,
    }
}

pub fn evaluate<'a>(
    p: &'a Policy,
    action: &str,
    effect: &[(String, f64)],
    environment: &str,
) -> Outcome<'a> {
    let Some(env) = p.env(environment) else {
        let known: Vec<&str> = p.envs.iter().map(|e| e.name.as_str()).collect();
        return refuse(format!(
            "unknown environment `{environment}` (the policy defines {})",
            known.join(", ")
        ));
    };
    let mut values: BTreeMap<&str, f64> = BTreeMap::new();
    for (k, v) in effect {
        if !v.is_finite() {
            return refuse(format!("effect dimension `{k}` is not a finite number"));
        }
        values.insert(k, *v);
    }
    let value = |d: &str| values.get(d).copied().unwrap_or(0.0);
    let magnitude = env
        .dimensions
        .iter()
        .map(|d| value(d).powi(2))
        .sum::<f64>()
        .sqrt();
    let over = magnitude > env.magnitude_threshold;

    let mut fired = Vec::new();
    for rule in p.rules.iter().filter(|r| r.active) {
        if !rule.patterns.iter().any(|a| a.matches(action)) {
            continue;
        }
        let breaches: Vec<String> = rule
            .thresholds
            .iter()
            .filter(|(d, max)| value(d) > *max)
            .map(|(d, max)| format!("{d} {:.2} > {max:.2}", value(d)))
            .collect();
        let unconditional = rule.thresholds.is_empty();
        let hit = |v: Verdict| {
            if unconditional {
                Some((v, format!("matches `{action}`")))
            } else if breaches.is_empty() {
                None
            } else {
                Some((v, breaches.join(", ")))
            }
        };
        let result = match rule.severity {
            _ if rule.verdict.is_some() => rule.verdict.and_then(|v| hit(v.verdict())),
            Severity::Critical => hit(Verdict::Deny),
            Severity::Warning => hit(Verdict::PermitWithWarning),
            Severity::Advisory => hit(Verdict::Permit),
            Severity::Blocking if over => Some((
                Verdict::Deny,
                format!(
                    "effect magnitude {magnitude:.2} > {} threshold {:.2}",
                    env.name, env.magnitude_threshold
                ),
            )),
            Severity::Blocking if !breaches.is_empty() => {
                Some((env.on_breach.verdict(), breaches.join(", ")))
            }
            Severity::Blocking => None,
        };
        if let Some((verdict, reason)) = result {
            fired.push(Fired {
                rule,
                verdict,
                reason,
            });
        }
    }
    let verdict = fired
        .iter()
        .map(|f| f.verdict)
        .max()
        .unwrap_or(Verdict::Permit);
    let reason = if fired.is_empty() {
        format!("no rule fired for `{action}` in {}", env.name)
    } else {
        let why: Vec<String> = fired
            .iter()
            .filter(|f| f.verdict == verdict)
            .map(|f| format!("{}: {}", f.rule.id, f.reason))
            .collect();
        why.join("; ")
    };
    Outcome {
        verdict,
        fired,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MAX_PATTERN;

    const DEFAULT: &str = include_str!("../default-policy.toml");

    fn eff(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn default_policy_decisions() {
        let p = Policy::parse(DEFAULT).unwrap();
        let e = |a: &str, x: &[(&str, f64)], env: &str| evaluate(&p, a, &eff(x), env).verdict;
        assert_eq!(e("ipc.send", &[], "prod"), Verdict::Permit);
        assert_eq!(e("chain.rewrite", &[], "dev"), Verdict::Deny);
        assert_eq!(
            e("ipc.send", &[("privacy", 0.55)], "dev"),
            Verdict::PermitWithWarning
        );
        // risk 0.9: dev warns, prod escalates; magnitude 0.9 > prod 0.6 denies.
        assert_eq!(
            e("tool.exec.calc", &[("risk", 0.9)], "dev"),
            Verdict::PermitWithWarning
        );
        assert_eq!(
            e("tool.exec.calc", &[("risk", 0.9)], "staging"),
            Verdict::EscalateToHuman
        );
        assert_eq!(e("tool.exec.calc", &[("risk", 0.9)], "prod"), Verdict::Deny);
        assert_eq!(
            e("tool.exec.calc", &[("risk", 0.5)], "production"),
            Verdict::Permit
        );
        assert_eq!(e("x", &[("risk", f64::NAN)], "dev"), Verdict::Deny);
        assert_eq!(e("x", &[], "moon"), Verdict::Deny);
    }

    /// A policy with one critical rule on `actions`.
    fn deny_rule(actions: &str) -> Result<Policy, String> {
        Policy::parse(&format!(
            "[environments.dev]\nmagnitude_threshold = 1\n[[rules]]\nid = \"r\"\n\
             branch = \"judicial\"\nseverity = \"critical\"\nactions = {actions}\n"
        ))
    }

    #[test]
    fn action_patterns_mean_what_they_mean_at_the_gate() {
        let p = deny_rule(r#"["tool.exec.**", "ipc.s?nd", "**.spawn", "a.**.b.**"]"#).unwrap();
        let denied = |a: &str| evaluate(&p, a, &[], "dev").verdict == Verdict::Deny;
        for a in [
            "tool.exec",
            "tool.exec.calc.x",
            "ipc.send",
            "agent.spawn",
            "a.b",
            "a.x.b.y",
        ] {
            assert!(denied(a), "{a}");
        }
        for a in ["tool.execute", "ipc.sendx", "ipc.snd", "spawner", "a.x"] {
            assert!(!denied(a), "{a}");
        }
        assert_eq!(p.rules[0].actions[1], "ipc.s?nd");
        for bad in [
            r#"["a..b"]"#,
            r#"["a.b**"]"#,
            r#"["**.x.**.**"]"#,
            r#"[""]"#,
        ] {
            assert!(deny_rule(bad).is_err(), "{bad}");
        }
        let long = format!(r#"["{}"]"#, "a".repeat(MAX_PATTERN + 1));
        assert!(deny_rule(&long)
            .err()
            .unwrap_or_default()
            .contains("longer than 256"));
    }

    #[test]
    fn a_rule_verdict_overrides_its_severity() {
        let p = Policy::parse(
            "[environments.prod]\nmagnitude_threshold = 1\n\
             [[rules]]\nid = \"ask\"\nbranch = \"executive\"\nseverity = \"blocking\"\n\
             actions = [\"tool.exec.rm\"]\nverdict = \"escalate\"\n\
             [[rules]]\nid = \"risky\"\nbranch = \"executive\"\nseverity = \"advisory\"\n\
             actions = [\"tool.exec.*\"]\nthresholds = { risk = 0.5 }\nverdict = \"deny\"\n",
        )
        .unwrap();
        let e = |a: &str, x: &[(&str, f64)]| evaluate(&p, a, &eff(x), "prod").verdict;
        // Unconditional: every matching action goes to a person.
        assert_eq!(e("tool.exec.rm", &[]), Verdict::EscalateToHuman);
        assert_eq!(e("tool.exec.ls", &[]), Verdict::Permit);
        // With thresholds: only a breach fires it.
        assert_eq!(e("tool.exec.ls", &[("risk", 0.6)]), Verdict::Deny);
        // The strictest fired verdict wins.
        assert_eq!(e("tool.exec.rm", &[("risk", 0.6)]), Verdict::Deny);
        let bad = Policy::parse(
            "[environments.prod]\nmagnitude_threshold = 1\n[[rules]]\nid = \"x\"\n\
             branch = \"executive\"\nseverity = \"blocking\"\nactions = [\"a\"]\nverdict = \"maybe\"\n",
        );
        let bad = bad.err().unwrap_or_default();
        assert!(bad.contains("line 8") && bad.contains("maybe"), "{bad}");
    }

    #[test]
    fn bad_toml_has_position() {
        let err = Policy::parse("name = \"x\"\n[environments.dev\n")
            .err()
            .unwrap();
        assert!(err.contains("line 2"), "{err}");
    }
}
