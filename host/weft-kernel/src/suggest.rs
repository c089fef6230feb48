//! "Did you mean": the names closest to one that was not found, for error
//! messages (agents, tools, apps). An app's agent is `<app>.<id>`, so a bare
//! `counter` finds `slugs.counter` before any spelling neighbour.

/// Up to three of `candidates` close to `wanted`, best first: names that
/// end in `.wanted` (an app's agent asked for by its id), then names within
/// a small edit distance.
pub fn similar<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let suffix = format!(".{wanted}");
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|c| *c != wanted)
        .filter_map(|c| {
            if c.ends_with(&suffix) {
                return Some((0, c));
            }
            let d = strsim::osa_distance(wanted, c);
            // Edits (a swap of neighbours counts once); short names allow
            // fewer: `ab` is not a typo of `xy`.
            let allowed = (wanted.chars().count() / 3).clamp(1, 3);
            (d <= allowed).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// `; did you mean `a` or `b`?`, or nothing when nothing is close.
pub fn hint<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let s = similar(wanted, candidates);
    match s.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        [init @ .., last] => format!(
            "; did you mean {} or `{last}`?",
            init.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_agent_by_its_id() {
        let names = ["slugs.counter", "slugs.router", "echo"];
        assert_eq!(similar("counter", names), ["slugs.counter"]);
        assert_eq!(hint("counter", names), "; did you mean `slugs.counter`?");
    }

    #[test]
    fn typos_but_not_strangers() {
        let names = ["calc", "wordcount-c", "wordcount-py", "slugify"];
        assert_eq!(similar("clac", names), ["calc"]);
        assert_eq!(similar("wordcount-js", names)[0], "wordcount-c");
        assert!(similar("xyz", names).is_empty());
        assert_eq!(hint("zzzzzz", names), "");
        assert_eq!(similar("calc", ["calc"]), Vec::<String>::new());
    }

    #[test]
    fn several() {
        let h = hint("counter", ["a.counter", "b.counter", "counte"]);
        assert_eq!(h, "; did you mean `a.counter`, `b.counter` or `counte`?");
    }
}
