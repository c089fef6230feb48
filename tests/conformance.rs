//! One conformance suite for the `tool` world, run against the same tool
//! (`wordcount`) written in Rust, C, Python and JavaScript.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use weft_runtime::{
    Grants, Limits, LoadedComponent, RunError, Runtime, RuntimeConfig, ToolFailure,
};
use weft_testkit::{dist_guest, guest, shared_cache_dir};

const LANGS: [&str; 4] = ["rust", "c", "python", "javascript"];

fn file(lang: &str) -> PathBuf {
    match lang {
        "rust" => guest("wordcount"),
        "c" => dist_guest("wordcount-c.wasm"),
        "python" => dist_guest("wordcount-py.wasm"),
        "javascript" => dist_guest("wordcount-js.wasm"),
        other => panic!("no such language {other}"),
    }
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn limits() -> Limits {
    Limits {
        fuel: 5_000_000_000,
        timeout: Duration::from_secs(20),
        ..Limits::default()
    }
}

async fn each(f: impl AsyncFn(&'static str, &Runtime, &LoadedComponent)) {
    let rt = runtime();
    for lang in LANGS {
        let c = rt
            .load_file(&file(lang))
            .unwrap_or_else(|e| panic!("{lang}: {e}"));
        f(lang, &rt, &c).await;
    }
}

#[tokio::test]
async fn describe_is_the_same_everywhere() {
    each(async |lang, rt, c| {
        let info = rt
            .describe_tool(c, &limits())
            .await
            .unwrap_or_else(|e| panic!("{lang}: {e}"));
        assert_eq!(info.name, "wordcount", "{lang}");
        assert!(!info.description.is_empty(), "{lang}");
        let schema: serde_json::Value = serde_json::from_str(&info.params_schema).unwrap();
        assert_eq!(schema["required"], json!(["text"]), "{lang}");
        assert_eq!(schema["properties"]["text"]["type"], "string", "{lang}");
    })
    .await;
}

#[tokio::test]
async fn good_input_gives_the_same_answer() {
    each(async |lang, rt, c| {
        for (input, words, lines, chars) in [
            (json!({"text": "hello wide world\nbye"}), 4, 1, 20),
            (json!({"text": ""}), 0, 0, 0),
            (
                json!({"text": "  tabs\tand\r\nnewlines \n", "repeat": 3}),
                3,
                2,
                22,
            ),
            (json!({"text": "héllo wörld ✨"}), 3, 0, 13),
        ] {
            let out = rt
                .run_tool(c, &input.to_string(), &limits(), &Grants::default())
                .await
                .unwrap_or_else(|e| panic!("{lang}: {e}"));
            let v = out
                .result
                .unwrap_or_else(|e| panic!("{lang} on {input}: {e}"));
            assert_eq!(
                v,
                json!({"words": words, "lines": lines, "chars": chars, "lang": lang}),
                "{lang} on {input}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn bad_input_is_an_invalid_input_error() {
    each(async |lang, rt, c| {
        for input in [
            json!({"txt": 1}),
            json!({"text": 5}),
            json!({"text": "a", "repeat": 0}),
            json!([1, 2]),
        ] {
            let out = rt
                .run_tool(c, &input.to_string(), &limits(), &Grants::default())
                .await
                .unwrap_or_else(|e| panic!("{lang}: {e}"));
            assert!(
                matches!(out.result, Err(ToolFailure::InvalidInput(_))),
                "{lang} on {input}: {:?}",
                out.result
            );
        }
    })
    .await;
}

#[tokio::test]
async fn fuel_exhaustion_is_out_of_fuel() {
    each(async |lang, rt, c| {
        let l = Limits {
            fuel: 50_000_000,
            ..limits()
        };
        let input = json!({"text": "a b c", "repeat": 1_000_000_000u64}).to_string();
        let e = rt
            .run_tool(c, &input, &l, &Grants::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.error,
                RunError::OutOfFuel {
                    budget: 50_000_000,
                    ..
                }
            ),
            "{lang}: {e}"
        );
        assert_eq!(e.usage.fuel_used, 50_000_000, "{lang}");
        // The runtime keeps serving the same tool afterwards.
        let ok = rt
            .run_tool(c, r#"{"text":"still here"}"#, &limits(), &Grants::default())
            .await
            .unwrap();
        assert_eq!(ok.result.unwrap()["words"], 2, "{lang}");
    })
    .await;
}
