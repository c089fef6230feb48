//! `weaver ecc stats | search | graph | calibration`: the operator's view
//! of ECC through the control socket (gated queries, `ecc.<op>`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::control::cli::{cell, items, output, table, CliCommand};
use weft_kernel::control::{kind, to_value, ControlCx, ControlError, ControlReply};

use super::actions::check;
use super::Inner;
use crate::{CausalGraph, Direction, Ecc, Key, Namespace};

/// The control ops of the unit.
pub const OPS: &[&str] = &["stats", "search", "graph", "calibration", "tick"];

/// The unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Every namespace with its structures' counters, the clock, the
    /// last snapshot.
    Stats,
    /// The `k` nearest entries to `vector` in `ns`'s index.
    Search {
        /// The namespace.
        ns: String,
        /// The query.
        vector: Vec<f32>,
        /// How many.
        k: u32,
        /// Search width (0: `max(k, 64)`).
        #[serde(default)]
        ef: u32,
    },
    /// The causal nodes within `depth` hops of `node` (forward, or
    /// reverse), with the edges between them.
    Graph {
        /// The namespace.
        ns: String,
        /// The start node (a number is a numeric key).
        node: String,
        /// Hops.
        depth: u32,
        /// Follow edges backwards (causes of `node`).
        #[serde(default)]
        reverse: bool,
    },
    /// The boot calibration.
    Calibration,
    /// The cognitive tick service: interval, stats, recent drift.
    Tick,
}

fn bad(m: impl std::fmt::Display) -> ControlError {
    ControlError::bad_request(m.to_string())
}

fn not_found(m: impl std::fmt::Display) -> ControlError {
    ControlError::new(kind::NOT_FOUND, m.to_string())
}

/// Check `op` on `ns` for the asker (the operator may do anything; the
/// gate still decides) and ask the gate.
async fn query(
    inner: &Inner,
    cx: &ControlCx<'_>,
    action: &'static str,
    op: &str,
    ns: Option<&str>,
) -> Result<(), ControlError> {
    check(cx.who, op, ns, inner).map_err(ControlError::from)?;
    cx.query(action).await
}

/// Parse a node key as the CLI gives it: digits are a number.
pub fn parse_key(s: &str) -> Result<Key, String> {
    match s.parse::<u64>() {
        Ok(n) => Ok(Key::Num(n)),
        Err(_) => Key::str(s).map_err(|e| e.to_string()),
    }
}

/// Serve one request.
pub(crate) async fn serve(inner: Arc<Inner>, cx: ControlCx<'_>) -> ControlReply {
    match cx.parse::<Request>("ecc")? {
        Request::Stats => {
            query(&inner, &cx, "ecc.stats", "stats", None).await?;
            let ecc = inner.read();
            let spaces: Vec<Value> = ecc.namespaces().map(|ns| space_stats(&ecc, ns)).collect();
            let clock = ecc.clock().last();
            Ok(json!({
                "namespaces": spaces,
                "clock": { "wall_ns": clock.wall_ns, "logical": clock.logical },
                "applied": inner.applied.load(std::sync::atomic::Ordering::Relaxed),
                "replayed_at_boot": inner.replayed.load(std::sync::atomic::Ordering::Relaxed),
                "last_snapshot": super::lock(&inner.last_snapshot).clone(),
            }))
        }
        Request::Search { ns, vector, k, ef } => {
            let n = Namespace::new(&ns).map_err(bad)?;
            query(&inner, &cx, "ecc.search", "search", Some(&ns)).await?;
            let ef = if ef == 0 { k.max(64) } else { ef.max(k) };
            let hits = inner
                .read()
                .search(&n, &vector, k as usize, ef as usize)
                .map_err(|e| match e {
                    crate::EccError::NoIndex { .. } => not_found(e),
                    e => bad(e),
                })?;
            to_value(hits)
        }
        Request::Graph {
            ns,
            node,
            depth,
            reverse,
        } => {
            let n = Namespace::new(&ns).map_err(bad)?;
            let key = parse_key(&node).map_err(bad)?;
            query(&inner, &cx, "ecc.graph", "graph", Some(&ns)).await?;
            let ecc = inner.read();
            let graph = ecc
                .graph(&n)
                .ok_or_else(|| not_found(format!("namespace `{ns}` has no causal graph")))?;
            let dir = if reverse {
                Direction::Reverse
            } else {
                Direction::Forward
            };
            let visits = graph
                .traverse(&key, dir, depth as usize)
                .map_err(not_found)?;
            let keys: std::collections::BTreeSet<&Key> = visits.iter().map(|v| &v.key).collect();
            let nodes: Vec<Value> = visits
                .iter()
                .map(|v| {
                    let node = graph.node(&v.key);
                    json!({ "key": v.key, "depth": v.depth,
                            "label": node.map(|n| n.label.clone()),
                            "attrs": node.map(|n| n.attrs.clone()) })
                })
                .collect();
            let edges: Vec<Value> = graph
                .edges()
                .into_iter()
                .filter(|e| keys.contains(&e.from) && keys.contains(&e.to))
                .map(|e| json!(e))
                .collect();
            Ok(
                json!({ "ns": ns, "start": key, "nodes": nodes, "edges": edges,
                       "dot": dot(graph, &visits) }),
            )
        }
        Request::Calibration => {
            query(&inner, &cx, "ecc.stats", "stats", None).await?;
            match super::lock(&inner.calibration).clone() {
                Some(r) => to_value(r),
                None => Err(not_found(
                    "no calibration: `[ecc] calibrate = false`, or it failed (see the kernel log)",
                )),
            }
        }
        Request::Tick => {
            query(&inner, &cx, "ecc.stats", "stats", None).await?;
            match inner.ticker.get() {
                Some(t) => Ok(t.report()),
                None => Err(not_found(
                    "the tick service is off (`[ecc.tick] enabled = false`)",
                )),
            }
        }
    }
}

fn space_stats(ecc: &Ecc, ns: &Namespace) -> Value {
    let index = ecc.index(ns).map(|i| i.stats());
    let graph = ecc.graph(ns);
    json!({
        "ns": ns.as_str(),
        "index": index,
        "nodes": graph.map_or(0, CausalGraph::node_count),
        "edges": graph.map_or(0, CausalGraph::edge_count),
        "refs": ecc.crossrefs(ns).map_or(0, |r| r.len()),
        "pending": ecc.pending(ns),
    })
}

/// A Graphviz rendering of the visited nodes and the edges between them.
fn dot(graph: &CausalGraph, visits: &[crate::Visit]) -> String {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let id = |k: &Key| match k {
        Key::Num(n) => format!("\"n{n}\""),
        Key::Str(s) => format!("\"s:{}\"", esc(s)),
    };
    let keys: std::collections::BTreeSet<&Key> = visits.iter().map(|v| &v.key).collect();
    let mut out = String::from("digraph ecc {\n");
    for v in visits {
        let label = graph.node(&v.key).map(|n| n.label.as_str()).unwrap_or("");
        let name = match &v.key {
            Key::Num(n) => n.to_string(),
            Key::Str(s) => s.clone(),
        };
        let _ = writeln!(
            out,
            "  {} [label=\"{}\\n{}\"];",
            id(&v.key),
            esc(&name),
            esc(label)
        );
    }
    for e in graph.edges() {
        if keys.contains(&e.from) && keys.contains(&e.to) {
            let _ = writeln!(
                out,
                "  {} -> {} [label=\"{} {}\"];",
                id(&e.from),
                id(&e.to),
                esc(&e.kind.to_string()),
                e.weight
            );
        }
    }
    out.push_str("}\n");
    out
}

#[derive(Subcommand)]
enum EccCmd {
    /// Namespaces with their index, graph, reference and impulse counts;
    /// the clock; the last snapshot.
    Stats {
        /// Print the raw JSON result.
        #[arg(long)]
        json: bool,
    },
    /// The k nearest entries to a vector in a namespace's index.
    Search {
        /// The namespace (e.g. `notes` or `notes/today`).
        ns: String,
        /// A file holding the query vector: a JSON array of numbers, or
        /// numbers separated by spaces, commas or newlines.
        #[arg(long, value_name = "FILE")]
        vector: PathBuf,
        /// How many entries.
        #[arg(short, default_value_t = 10)]
        k: u32,
        /// Search width (default: max(k, 64)).
        #[arg(long)]
        ef: Option<u32>,
        /// Print the raw JSON result.
        #[arg(long)]
        json: bool,
    },
    /// The causal nodes within --depth hops of NODE, with their edges.
    Graph {
        /// The namespace.
        ns: String,
        /// The start node (digits are a numeric key, anything else a string key).
        node: String,
        /// Hops to follow.
        #[arg(long, default_value_t = 3)]
        depth: u32,
        /// Follow edges backwards (what led to NODE).
        #[arg(long)]
        reverse: bool,
        /// Print Graphviz DOT (`| dot -Tsvg`).
        #[arg(long, conflicts_with = "json")]
        dot: bool,
        /// Print the raw JSON result.
        #[arg(long)]
        json: bool,
    },
    /// The measured run at boot: ns per HNSW insert and search, causal
    /// edge and BLAKE3 hash on this machine.
    Calibration {
        /// Print the raw JSON result.
        #[arg(long)]
        json: bool,
    },
    /// The cognitive tick: its interval, counters and recent drift.
    Tick {
        /// Print the raw JSON result.
        #[arg(long)]
        json: bool,
    },
}

/// Read a query vector file (see `weaver ecc search --help`).
pub fn read_vector(path: &Path) -> anyhow::Result<Vec<f32>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the vector file {}", path.display()))?;
    parse_vector(&text).with_context(|| format!("{}", path.display()))
}

/// Parse a vector: a JSON array, or numbers separated by whitespace or commas.
pub fn parse_vector(text: &str) -> anyhow::Result<Vec<f32>> {
    let t = text.trim();
    if t.starts_with('[') {
        let v: Vec<f32> = serde_json::from_str(t).map_err(|e| {
            anyhow::anyhow!(
                "line {} column {}: not a JSON array of numbers: {e}",
                e.line(),
                e.column()
            )
        })?;
        anyhow::ensure!(!v.is_empty(), "the vector is empty");
        return Ok(v);
    }
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let mut col = 1;
        for tok in line.split(|c: char| c == ',' || c.is_whitespace()) {
            if !tok.is_empty() {
                let x: f32 = tok.parse().map_err(|_| {
                    anyhow::anyhow!("line {} column {}: `{tok}` is not a number", ln + 1, col)
                })?;
                out.push(x);
            }
            col += tok.len() + 1;
        }
    }
    anyhow::ensure!(!out.is_empty(), "the vector is empty");
    Ok(out)
}

/// `weaver ecc ...`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            EccCmd::augment_subcommands(
                clap::Command::new("ecc")
                    .about("ECC: vector indexes, causal graphs, the clock, calibration")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx.state, m)),
    }
}

async fn run(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match EccCmd::from_arg_matches(m)? {
        EccCmd::Stats { json } => {
            let v = weft_kernel::ask!(state, "ecc", &Request::Stats);
            Ok(output(json, &v, |v| {
                let rows: Vec<Vec<String>> = items(&v["namespaces"])
                    .iter()
                    .map(|s| {
                        let i = &s["index"];
                        vec![
                            cell(&s["ns"]),
                            if i.is_null() {
                                "-".into()
                            } else {
                                format!(
                                    "{} x {}-d {}",
                                    i["count"],
                                    i["dimension"],
                                    cell(&i["distance"])
                                )
                            },
                            cell(&i["tombstones"]),
                            cell(&s["nodes"]),
                            cell(&s["edges"]),
                            cell(&s["refs"]),
                            cell(&s["pending"]),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "NAMESPACE",
                        "INDEX",
                        "TOMBSTONES",
                        "NODES",
                        "EDGES",
                        "REFS",
                        "PENDING",
                    ],
                    &rows,
                );
                println!(
                    "clock {}.{}; {} ops applied, {} replayed at boot; last snapshot: {}",
                    cell(&v["clock"]["wall_ns"]),
                    cell(&v["clock"]["logical"]),
                    cell(&v["applied"]),
                    cell(&v["replayed_at_boot"]),
                    match &v["last_snapshot"] {
                        Value::Null => "none in this run".to_string(),
                        s => format!("{} bytes at chain {}", s["bytes"], s["marker"]),
                    }
                );
            }))
        }
        EccCmd::Search {
            ns,
            vector,
            k,
            ef,
            json,
        } => {
            let v = match read_vector(&vector) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("weaver: {e:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            let req = Request::Search {
                ns,
                vector: v,
                k,
                ef: ef.unwrap_or(0),
            };
            let v = weft_kernel::ask!(state, "ecc", &req);
            Ok(output(json, &v, |v| {
                let rows: Vec<Vec<String>> = items(v)
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        let key = &h["key"];
                        let k = if key["num"].is_null() {
                            cell(&key["str"])
                        } else {
                            cell(&key["num"])
                        };
                        vec![(i + 1).to_string(), k, cell(&h["distance"])]
                    })
                    .collect();
                table(&["RANK", "KEY", "DISTANCE"], &rows);
            }))
        }
        EccCmd::Graph {
            ns,
            node,
            depth,
            reverse,
            dot,
            json,
        } => {
            let req = Request::Graph {
                ns,
                node,
                depth,
                reverse,
            };
            let v = weft_kernel::ask!(state, "ecc", &req);
            if dot {
                print!("{}", v["dot"].as_str().unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            }
            Ok(output(json, &v, |v| {
                let key = |k: &Value| {
                    if k["num"].is_null() {
                        cell(&k["str"])
                    } else {
                        cell(&k["num"])
                    }
                };
                let rows: Vec<Vec<String>> = items(&v["nodes"])
                    .iter()
                    .map(|n| vec![cell(&n["depth"]), key(&n["key"]), cell(&n["label"])])
                    .collect();
                table(&["DEPTH", "NODE", "LABEL"], &rows);
                for e in items(&v["edges"]) {
                    println!(
                        "{} -{}({})-> {}",
                        key(&e["from"]),
                        cell(&e["kind"]),
                        cell(&e["weight"]),
                        key(&e["to"])
                    );
                }
            }))
        }
        EccCmd::Tick { json } => {
            let v = weft_kernel::ask!(state, "ecc", &Request::Tick);
            Ok(output(json, &v, |v| {
                let s = &v["stats"];
                let ms = |x: &Value| format!("{:.2} ms", x.as_f64().unwrap_or(0.0) / 1e6);
                println!(
                    "topic {}  interval {}  ticks {}  published {}",
                    cell(&v["topic"]),
                    ms(&s["interval_ns"]),
                    cell(&s["ticks"]),
                    cell(&v["published"])
                );
                println!(
                    "overruns {}  backoffs {}  recoveries {}  skipped {}  drift events {} (max {})",
                    cell(&s["overruns"]),
                    cell(&s["backoffs"]),
                    cell(&s["recoveries"]),
                    cell(&s["skipped"]),
                    cell(&s["drift_events"]),
                    ms(&s["max_drift_ns"])
                );
                println!(
                    "budget {}  last cost {}  max cost {}",
                    ms(&v["config"]["budget_ns"]),
                    ms(&s["last_cost_ns"]),
                    ms(&s["max_cost_ns"])
                );
            }))
        }
        EccCmd::Calibration { json } => {
            let v = weft_kernel::ask!(state, "ecc", &Request::Calibration);
            Ok(output(json, &v, |v| {
                let us = |x: &Value| format!("{:.2} us", x.as_f64().unwrap_or(0.0) / 1e3);
                println!(
                    "total {:.1} ms{}",
                    v["total_ns"].as_f64().unwrap_or(0.0) / 1e6,
                    if v["truncated"] == true {
                        " (truncated at its budget)"
                    } else {
                        ""
                    }
                );
                table(
                    &["MEASURE", "COUNT", "MEAN"],
                    &[
                        vec![
                            format!("HNSW insert ({}-d)", v["dimension"]),
                            cell(&v["inserts"]),
                            us(&v["insert_ns"]),
                        ],
                        vec![
                            "HNSW search".into(),
                            cell(&v["searches"]),
                            us(&v["search_ns"]),
                        ],
                        vec!["causal edge".into(), cell(&v["edges"]), us(&v["edge_ns"])],
                        vec![
                            format!("BLAKE3 {} B", v["hash_bytes"]),
                            cell(&v["hashes"]),
                            us(&v["hash_ns"]),
                        ],
                    ],
                );
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_key, parse_vector};
    use crate::Key;

    #[test]
    fn vectors_parse_as_json_or_separated_numbers_and_errors_say_where() {
        assert_eq!(parse_vector("[1, 2.5, -3]").unwrap(), vec![1.0, 2.5, -3.0]);
        assert_eq!(parse_vector("1 2\n3,4").unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        let e = parse_vector("1 2\n3 x").unwrap_err().to_string();
        assert!(e.contains("line 2 column 3") && e.contains("`x`"), "{e}");
        let e = parse_vector("[1, \"a\"]").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(parse_vector("  \n").is_err());
        assert!(parse_vector("[]").is_err());
    }

    #[test]
    fn digits_are_numeric_keys() {
        assert_eq!(parse_key("42").unwrap(), Key::Num(42));
        assert_eq!(parse_key("rain").unwrap(), Key::Str("rain".into()));
        assert!(parse_key(&"x".repeat(300)).is_err());
    }
}
