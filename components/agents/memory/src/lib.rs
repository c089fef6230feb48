//! `memory`: an example agent that keeps its memory in ECC.
//!
//! Its init config names a namespace and an index (`ns`, `dimension`,
//! `distance`: `cosine`, `l2` or `dot`); `init` creates the index unless it
//! exists (it survives restarts of the kernel). Each message is a JSON
//! object with an `op`:
//!
//! - `remember {key, text}`: embed `text` (feature hashing of its words
//!   into `dimension` buckets, signed, normalised) and store it under `key`;
//! - `recall {text, k}`: the `k` stored notes nearest to `text`'s embedding;
//! - `insert {items: [{key, vector}]}` / `search {vector, k, ef}`: raw
//!   vectors, one batch call each;
//! - `delete {keys}`, `stats`, `get {key}`;
//! - `link {from, to, kind, weight}` / `trace {from, depth}`: the causal graph;
//! - `emit {topic, payload}` / `drain`: impulses.
//!
//! Every op takes an optional `ns` to use another namespace (the kernel
//! refuses one the agent's `ecc` capability does not cover). Replies are
//! `{"ok": ...}` or `{"err": {"kind": ..., "message": ...}}`.

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
// WIT functions with many parameters (ecc, check) become Rust functions with as many.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "agent" });
}
use bindings::*;

use std::cell::RefCell;

use serde_json::{json, Value};
use weft::kernel::ecc::{self, Distance, EdgeKind, Entry, IndexConfig, Key};
use weft::kernel::ipc::Error;

struct Config {
    ns: String,
    dimension: u32,
}

thread_local! {
    static CONFIG: RefCell<Config> = const { RefCell::new(Config { ns: String::new(), dimension: 0 }) };
}

struct Memory;

impl Guest for Memory {
    fn init(config: String) -> Result<(), String> {
        let c: Value = serde_json::from_str(&config).map_err(|e| format!("bad config: {e}"))?;
        let ns = c["ns"]
            .as_str()
            .ok_or("config needs `ns`, the namespace to keep memory in")?
            .to_string();
        let dimension = c["dimension"].as_u64().unwrap_or(64) as u32;
        let distance = match c["distance"].as_str().unwrap_or("cosine") {
            "cosine" => Distance::Cosine,
            "l2" => Distance::L2,
            "dot" => Distance::Dot,
            other => {
                return Err(format!(
                    "config `distance`: expected cosine, l2 or dot, found {other}"
                ))
            }
        };
        // The index outlives this instance (and the kernel): create it once.
        match ecc::stats(&ns) {
            Ok(s) if s.dimension != dimension => {
                return Err(format!(
                    "namespace {ns} holds a {}-d index; config asks for {dimension}",
                    s.dimension
                ))
            }
            Ok(_) => {}
            Err(Error::NotFound(_)) => ecc::create_index(
                &ns,
                IndexConfig {
                    dimension,
                    distance,
                    m: 0,
                    ef_construction: 0,
                    max_elements: 0,
                },
            )
            .map_err(|e| format!("creating the index in {ns}: {}", describe(&e)))?,
            Err(e) => return Err(format!("reading {ns}: {}", describe(&e))),
        }
        CONFIG.with_borrow_mut(|c| *c = Config { ns, dimension });
        Ok(())
    }

    fn handle(msg: Message) -> Result<Option<Payload>, String> {
        let req: Value = match &msg.payload {
            Payload::Json(j) => serde_json::from_str(j).map_err(|e| e.to_string())?,
            Payload::Text(t) => serde_json::from_str(t).map_err(|e| e.to_string())?,
            Payload::Binary(_) => return Err("expected a JSON request".into()),
        };
        let reply = match run(&req) {
            Ok(v) => json!({ "ok": v }),
            Err(e) => json!({ "err": error_json(&e) }),
        };
        Ok(Some(Payload::Json(reply.to_string())))
    }
}

fn describe(e: &Error) -> String {
    error_json(e)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn error_json(e: &Error) -> Value {
    let (kind, m) = match e {
        Error::Denied(m) => ("denied", m),
        Error::NotFound(m) => ("not_found", m),
        Error::Timeout(m) => ("timeout", m),
        Error::Limit(m) => ("limit", m),
        Error::Invalid(m) => ("invalid", m),
        Error::Failed(m) => ("failed", m),
    };
    json!({ "kind": kind, "message": m })
}

fn bad(m: impl Into<String>) -> Error {
    Error::Invalid(m.into())
}

fn key(v: &Value) -> Result<Key, Error> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(Key::Num)
            .ok_or_else(|| bad("a key is a u64 or a string")),
        Value::String(s) => Ok(Key::Str(s.clone())),
        _ => Err(bad("a key is a u64 or a string")),
    }
}

fn key_json(k: &Key) -> Value {
    match k {
        Key::Num(n) => json!(n),
        Key::Str(s) => json!(s),
    }
}

fn vector(v: &Value) -> Result<Vec<f32>, Error> {
    v.as_array()
        .ok_or_else(|| bad("`vector` must be an array of numbers"))?
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| bad("`vector` must be an array of numbers"))
        })
        .collect()
}

/// Feature hashing: each lower-cased word adds ±1 to one of `dim`
/// buckets (FNV-1a picks bucket and sign); the result is normalised.
fn embed(text: &str, dim: u32) -> Vec<f32> {
    let mut v = vec![0f32; dim.max(1) as usize];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.to_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let i = (h % v.len() as u64) as usize;
        v[i] += if (h >> 63) == 0 { 1.0 } else { -1.0 };
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n == 0.0 {
        // No words: a fixed direction, so cosine has something to compare.
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

fn hits_json(hits: Vec<ecc::Hit>) -> Value {
    Value::Array(
        hits.iter()
            .map(|h| json!({ "key": key_json(&h.key), "distance": h.distance }))
            .collect(),
    )
}

fn run(req: &Value) -> Result<Value, Error> {
    let (default_ns, dim) = CONFIG.with_borrow(|c| (c.ns.clone(), c.dimension));
    let ns = req["ns"].as_str().map(str::to_string).unwrap_or(default_ns);
    let k = req["k"].as_u64().unwrap_or(10) as u32;
    match req["op"].as_str().unwrap_or_default() {
        "remember" => {
            let text = req["text"]
                .as_str()
                .ok_or_else(|| bad("`text` is required"))?;
            let entry = Entry {
                key: key(&req["key"])?,
                vector: embed(text, dim),
            };
            let replaced = ecc::insert(&ns, &[entry])?;
            Ok(json!({ "replaced": replaced }))
        }
        "recall" => {
            let text = req["text"]
                .as_str()
                .ok_or_else(|| bad("`text` is required"))?;
            Ok(hits_json(ecc::search(&ns, &embed(text, dim), k, 64)?))
        }
        "insert" => {
            let items = req["items"]
                .as_array()
                .ok_or_else(|| bad("`items` is required"))?;
            let entries = items
                .iter()
                .map(|i| {
                    Ok(Entry {
                        key: key(&i["key"])?,
                        vector: vector(&i["vector"])?,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(json!({ "inserted": entries.len(), "replaced": ecc::insert(&ns, &entries)? }))
        }
        "search" => {
            let ef = req["ef"].as_u64().unwrap_or(64) as u32;
            Ok(hits_json(ecc::search(
                &ns,
                &vector(&req["vector"])?,
                k,
                ef,
            )?))
        }
        "delete" => {
            let keys = req["keys"]
                .as_array()
                .ok_or_else(|| bad("`keys` is required"))?
                .iter()
                .map(key)
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(json!(ecc::delete(&ns, &keys)?))
        }
        "get" => Ok(json!(ecc::get(&ns, &key(&req["key"])?)?)),
        "stats" => {
            let s = ecc::stats(&ns)?;
            Ok(json!({ "count": s.count, "tombstones": s.tombstones, "dimension": s.dimension }))
        }
        "link" => {
            let (from, to) = (key(&req["from"])?, key(&req["to"])?);
            for k in [&from, &to] {
                let label = match k {
                    Key::Num(n) => n.to_string(),
                    Key::Str(s) => s.clone(),
                };
                ecc::add_node(
                    &ns,
                    &ecc::Node {
                        key: k.clone(),
                        label,
                        attrs: vec![],
                    },
                )?;
            }
            let kind = match req["kind"].as_str().unwrap_or("causes") {
                "causes" => EdgeKind::Causes,
                "enables" => EdgeKind::Enables,
                "inhibits" => EdgeKind::Inhibits,
                "precedes" => EdgeKind::Precedes,
                "derived_from" => EdgeKind::DerivedFrom,
                other => EdgeKind::Custom(other.to_string()),
            };
            let weight = req["weight"].as_f64().unwrap_or(1.0) as f32;
            Ok(json!({ "created": ecc::link(&ns, &from, &to, &kind, weight)? }))
        }
        "trace" => {
            let depth = req["depth"].as_u64().unwrap_or(3) as u32;
            let visits = ecc::traverse(&ns, &key(&req["from"])?, ecc::Direction::Forward, depth)?;
            Ok(Value::Array(
                visits
                    .iter()
                    .map(|v| json!({ "key": key_json(&v.key), "depth": v.depth }))
                    .collect(),
            ))
        }
        "emit" => {
            let topic = req["topic"]
                .as_str()
                .ok_or_else(|| bad("`topic` is required"))?;
            let payload = req["payload"].to_string().into_bytes();
            let ts = ecc::emit(&ns, topic, None, &payload)?;
            Ok(json!({ "wall_ns": ts.wall_ns, "logical": ts.logical }))
        }
        "drain" => {
            let out = ecc::drain(&ns)?;
            Ok(Value::Array(
                out.iter()
                    .map(|i| {
                        json!({ "id": i.id, "topic": i.topic,
                                     "payload": String::from_utf8_lossy(&i.payload) })
                    })
                    .collect(),
            ))
        }
        other => Err(bad(format!("unknown op `{other}`"))),
    }
}

export!(Memory);
