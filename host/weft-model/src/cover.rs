//! Pattern coverage: is every name a pattern matches, and no deny pattern
//! matches, also matched by some allow pattern? This is what "an agent's
//! `c*` is within the ceiling's `c?`" means, decided on the names the
//! patterns match, not on their spelling.
//!
//! Name patterns denote regular languages, so the question is decidable
//! exactly. Only the characters written literally in some pattern can be
//! told apart by the patterns; every other character behaves the same, so
//! the alphabet is those characters plus one stand-in for "anything else".
//! Each pattern is an NFA whose states are positions in the pattern (a `*`
//! loops). A breadth-first search runs over the subset construction of the
//! product of all of them; a reachable state where `pattern` accepts and no
//! allow or deny pattern does is a counterexample, and the path to it is
//! the shortest witness name.
//!
//! The product can be exponential in the patterns' lengths (`*a???...`).
//! The search stops after [`MAX_STATES`] states (fewer for wide states, see
//! [`MAX_WORDS`]) and then **fails closed**:
//! [`Uncovered::TooComplex`], i.e. "pattern too complex to prove within the
//! ceiling". A ceiling check must never pass because it gave up.

use std::collections::HashSet;
use std::rc::Rc;

/// Product states explored before the search gives up (and refuses).
pub const MAX_STATES: usize = 200_000;

/// Words (`u64`) of product states kept before the search gives up: many
/// or long patterns make each state wider, and this keeps memory (and time)
/// bounded in the 64 MiB guest as on the host (8 MiB of state words).
pub const MAX_WORDS: usize = 1 << 20;

/// Why `pattern` is not covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uncovered {
    /// A name `pattern` matches that no deny and no allow pattern matches
    /// (a shortest one).
    Witness(String),
    /// The search hit its bound ([`MAX_STATES`], [`MAX_WORDS`]) before it
    /// could decide: refused all the same.
    TooComplex,
}

impl std::fmt::Display for Uncovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uncovered::Witness(name) => write!(f, "it matches {name:?}"),
            Uncovered::TooComplex => f.write_str("pattern too complex to prove within the ceiling"),
        }
    }
}

/// Is every name `pattern` matches, and no pattern in `deny` matches,
/// matched by some pattern in `allow`? All three use the semantics of
/// [`crate::glob::name_matches`]. On `Err`, a witness when one was found,
/// [`Uncovered::TooComplex`] when the search was cut off (fail closed).
pub fn covers(allow: &[String], deny: &[String], pattern: &str) -> Result<(), Uncovered> {
    let texts: Vec<&str> = std::iter::once(pattern)
        .chain(allow.iter().map(String::as_str))
        .chain(deny.iter().map(String::as_str))
        .collect();
    let mut alphabet: Vec<char> = texts.iter().flat_map(|p| p.chars()).collect();
    alphabet.retain(|c| *c != '*' && *c != '?');
    alphabet.sort_unstable();
    alphabet.dedup();
    alphabet.push(stand_in(&alphabet));
    let mut width = 0;
    let nfas: Vec<Nfa> = texts
        .iter()
        .map(|p| {
            let nfa = Nfa::new(p, &alphabet, width);
            width += nfa.words;
            nfa
        })
        .collect();
    // `nfas[0]` is the pattern, the rest the allow then deny patterns.
    let (pat, others) = (&nfas[0], &nfas[1..]);
    let accepts = |s: &[u64]| pat.accepts(s) && !others.iter().any(|n| n.accepts(s));
    // Nothing below this state can be a counterexample: the pattern matches
    // no extension, or an allow or deny pattern matches every one.
    let settled = |s: &[u64]| pat.is_dead(s) || others.iter().any(|n| n.is_universal(s));

    let mut start = vec![0u64; width];
    for n in &nfas {
        start[n.at] = 1;
        n.close(&mut start);
    }
    // (parent, symbol) per state, to spell out the witness.
    let mut path: Vec<(usize, usize)> = vec![(usize::MAX, 0)];
    let witness = |path: &[(usize, usize)], mut at: usize| {
        let mut name = Vec::new();
        while at != 0 {
            let (parent, sym) = path[at];
            name.push(alphabet[sym]);
            at = parent;
        }
        Uncovered::Witness(name.into_iter().rev().collect())
    };
    if accepts(&start) {
        return Err(witness(&path, 0));
    }
    let max_states = MAX_STATES.min(MAX_WORDS / width);
    // Every state found, in breadth-first order, so the queue is a cursor
    // into it; `seen` shares the same allocations.
    let mut states: Vec<Rc<[u64]>> = vec![Rc::from(start)];
    let mut seen: HashSet<Rc<[u64]>> = states.iter().cloned().collect();
    // Overwritten whole by each step; only new states are copied out.
    let mut next = vec![0u64; width];
    let mut id = 0;
    while let Some(state) = states.get(id).cloned() {
        if !settled(&state) {
            for sym in 0..alphabet.len() {
                for n in &nfas {
                    n.step(&state, sym, &mut next);
                }
                if seen.contains(next.as_slice()) {
                    continue;
                }
                path.push((id, sym));
                if accepts(&next) {
                    return Err(witness(&path, path.len() - 1));
                }
                if states.len() >= max_states {
                    return Err(Uncovered::TooComplex);
                }
                let new: Rc<[u64]> = Rc::from(next.as_slice());
                seen.insert(new.clone());
                states.push(new);
            }
        }
        id += 1;
    }
    Ok(())
}

/// A character in none of the patterns, to stand for all such characters.
/// Prefers ones that read well in a message.
fn stand_in(used: &[char]) -> char {
    ('x'..='z')
        .chain('0'..='9')
        .chain('a'..='w')
        .chain((0xA1..=0x10FFFF).filter_map(char::from_u32))
        .find(|c| used.binary_search(c).is_err())
        .unwrap_or('\u{FFFD}') // unreachable: patterns are far shorter than that
}

/// One pattern as an NFA. State `i` means "the first `i` pattern
/// characters are matched"; a state set is a bitset stored at word `at` of
/// the product state, `words` words long. Runs of `*` are collapsed, so a
/// `*` is never followed by another and one shift closes a set.
struct Nfa {
    at: usize,
    words: usize,
    /// Number of pattern characters; state `len` accepts.
    len: usize,
    /// Bit `i`: character `i` is `*`.
    star: Vec<u64>,
    /// Per alphabet symbol, bit `i`: character `i` is that symbol or `?`.
    moves: Vec<Vec<u64>>,
    /// Bit `i`: from state `i` every continuation is accepted (a final `*`).
    universal: Vec<u64>,
}

impl Nfa {
    fn new(pattern: &str, alphabet: &[char], at: usize) -> Nfa {
        let mut p: Vec<char> = pattern.chars().collect();
        p.dedup_by(|a, b| *a == '*' && *b == '*');
        let words = p.len() / 64 + 1;
        let bits = |f: &dyn Fn(char) -> bool| {
            let mut v = vec![0u64; words];
            for (i, c) in p.iter().enumerate() {
                if f(*c) {
                    v[i / 64] |= 1 << (i % 64);
                }
            }
            v
        };
        let moves = alphabet
            .iter()
            .map(|a| bits(&|c| c == '?' || c == *a))
            .collect();
        let mut universal = vec![0u64; words];
        if p.last() == Some(&'*') {
            let i = p.len() - 1;
            universal[i / 64] |= 1 << (i % 64);
        }
        Nfa {
            at,
            words,
            len: p.len(),
            star: bits(&|c| c == '*'),
            moves,
            universal,
        }
    }

    fn mine<'a>(&self, state: &'a [u64]) -> &'a [u64] {
        &state[self.at..self.at + self.words]
    }

    fn accepts(&self, state: &[u64]) -> bool {
        self.mine(state)[self.len / 64] & (1 << (self.len % 64)) != 0
    }

    fn is_dead(&self, state: &[u64]) -> bool {
        self.mine(state).iter().all(|w| *w == 0)
    }

    fn is_universal(&self, state: &[u64]) -> bool {
        self.mine(state)
            .iter()
            .zip(&self.universal)
            .any(|(s, u)| s & u != 0)
    }

    /// Adds the states reachable through `*` matching nothing.
    fn close(&self, state: &mut [u64]) {
        let mut carry = 0;
        for (w, star) in state[self.at..self.at + self.words]
            .iter_mut()
            .zip(&self.star)
        {
            let s = *w & star;
            *w |= (s << 1) | carry;
            carry = s >> 63;
        }
    }

    /// Writes into `next` this NFA's part of `state` after reading `sym`.
    fn step(&self, state: &[u64], sym: usize, next: &mut [u64]) {
        let (cur, moves) = (self.mine(state), &self.moves[sym]);
        let mut carry = 0;
        for i in 0..self.words {
            let m = cur[i] & moves[i];
            // A `*` consumes the character and stays.
            next[self.at + i] = (m << 1) | carry | (cur[i] & self.star[i]);
            carry = m >> 63;
        }
        self.close(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glob::name_matches;
    use proptest::prelude::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_narrower_spelling_does_not_cover_a_wider_pattern() {
        // The motivating bug: `c?` taken as text "covered" `c*`.
        assert_eq!(
            covers(&v(&["c?"]), &[], "c*"),
            Err(Uncovered::Witness("c".into()))
        );
        assert_eq!(covers(&v(&["c?"]), &[], "c?"), Ok(()));
        assert_eq!(covers(&v(&["c*"]), &[], "c?"), Ok(()));
        assert_eq!(covers(&v(&["c*"]), &[], "calc*"), Ok(()));
        assert_eq!(covers(&v(&["*"]), &[], "anything*"), Ok(()));
        assert_eq!(covers(&v(&["calc"]), &[], "calc"), Ok(()));
        let Err(Uncovered::Witness(w)) = covers(&v(&["calc"]), &[], "calc?") else {
            panic!("calc? is not within calc");
        };
        assert!(name_matches("calc?", &w) && w != "calc", "{w}");
        assert!(covers(&[], &[], "calc").is_err());
    }

    #[test]
    fn deny_patterns_take_names_out_of_the_question() {
        assert_eq!(covers(&v(&["a*"]), &v(&["ab*"]), "a*"), Ok(()));
        assert_eq!(covers(&v(&["ab*"]), &v(&["a"]), "ab*"), Ok(()));
        assert_eq!(
            covers(&v(&["ab*"]), &v(&["ac*"]), "a*"),
            Err(Uncovered::Witness("a".into()))
        );
        assert_eq!(covers(&v(&["ab*"]), &v(&["a", "ac*", "a?*"]), "a*"), Ok(()));
        // Everything the pattern matches is denied: nothing left to allow.
        assert_eq!(covers(&[], &v(&["*"]), "x*"), Ok(()));
    }

    #[test]
    fn witnesses_use_characters_outside_the_patterns() {
        let Err(Uncovered::Witness(w)) = covers(&v(&["*a*", "*b*"]), &[], "?*") else {
            panic!("not covered");
        };
        assert_eq!(w, "x");
        let Err(Uncovered::Witness(w)) = covers(&v(&["*x*", "*y*", "*z*"]), &[], "?") else {
            panic!("not covered");
        };
        assert_eq!(w, "0");
    }

    #[test]
    fn non_ascii_patterns() {
        assert_eq!(covers(&v(&["é?"]), &[], "éé"), Ok(()));
        let Err(Uncovered::Witness(w)) = covers(&v(&["é?"]), &[], "é*") else {
            panic!("not covered");
        };
        assert_eq!(w, "é");
    }

    #[test]
    fn an_exponential_search_fails_closed() {
        // Covered (the same pattern), but proving it needs 2^20 subsets.
        let p = format!("*a{}", "?".repeat(20));
        assert_eq!(
            covers(std::slice::from_ref(&p), &[], &p),
            Err(Uncovered::TooComplex)
        );
        assert_eq!(
            Uncovered::TooComplex.to_string(),
            "pattern too complex to prove within the ceiling"
        );
        // Long but tame patterns are fine.
        let long = "ab".repeat(128);
        assert_eq!(
            covers(&[format!("{long}*")], &[], &format!("{long}?*")),
            Ok(())
        );
    }

    /// Patterns of length 0 to 3 over `a`, `b`, `*`, `?`.
    fn pat() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![Just('a'), Just('b'), Just('*'), Just('?')],
            0..=3,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    /// Every string over `a`, `b`, `c` of length 0 to 7 (`c` stands for
    /// every character the patterns do not name).
    fn names() -> &'static [String] {
        static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        NAMES.get_or_init(|| {
            let mut all = vec![String::new()];
            let mut level = vec![String::new()];
            for _ in 0..7 {
                level = level
                    .iter()
                    .flat_map(|s| ['a', 'b', 'c'].map(|c| format!("{s}{c}")))
                    .collect();
                all.extend(level.iter().cloned());
            }
            all
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn agrees_with_brute_force(
            allow in proptest::collection::vec(pat(), 1..=2),
            deny in proptest::collection::vec(pat(), 0..=1),
            pattern in pat(),
        ) {
            let counter = names().iter().find(|n| {
                name_matches(&pattern, n)
                    && !deny.iter().any(|d| name_matches(d, n))
                    && !allow.iter().any(|a| name_matches(a, n))
            });
            match covers(&allow, &deny, &pattern) {
                Ok(()) => prop_assert!(counter.is_none(), "missed {counter:?}"),
                Err(Uncovered::Witness(w)) => {
                    prop_assert!(name_matches(&pattern, &w), "{w:?} not matched by pattern");
                    prop_assert!(!deny.iter().any(|d| name_matches(d, &w)), "{w:?} denied");
                    prop_assert!(!allow.iter().any(|a| name_matches(a, &w)), "{w:?} allowed");
                    prop_assert!(counter.is_some(), "witness {w:?}, brute force found none");
                }
                Err(Uncovered::TooComplex) => prop_assert!(false, "gave up on tiny patterns"),
            }
        }
    }
}
