//! Writes the seed inputs of every target into `fuzz/corpus/<target>/`
//! (`cargo run -p weft-fuzz --example seeds`). Seeds are committed; rerun
//! this only when a format changes. Files it writes start with `seed-`.

#![allow(clippy::unwrap_used)]

use weft_fuzz::program::{Body, Program, Str, Target};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = weft_fuzz::corpus_dir().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

const MANIFEST_FULL: &str = r#"[app]
name = "full"
version = "1.2.0-rc.1+build.5"
description = "every section"
authors = ["a", "b"]
license = "MIT"

[capabilities]
tools = { allow = ["calc", "w*"], deny = ["wget"] }
ipc = { named = ["full.*"] }
chain_append = true
spawn = true
cron = true

[[agents]]
id = "main"
component = "components/a.wasm"
role = "worker"
capabilities = { tools = { allow = ["calc"] }, ipc = "all", sandbox = "strict" }
limits = { fuel_per_message = 1_000_000, timeout_ms = 100, max_memory_bytes = 1048576, max_messages = 10, max_tool_calls = 2 }
restart = { on_failure = { max_retries = 3, backoff_ms = 100 } }
config = { k = [1, 2, { x = "y" }] }

[[agents]]
id = "side"
component = "components/a.wasm"
restart = "always"
capabilities = { ipc = { topics = ["news.*"] } }

[[tools]]
name = "calc"
component = "components/t.wasm"
limits = { fuel = 10, timeout_ms = 1 }

[[cron]]
schedule = "every 5s"
target = "main"
payload = { op = "tick" }

[hooks]
on_install = "main"
on_start = "main"

[environment]
name = "staging"
"#;

fn manifests() {
    let root = weft_testkit::repo_root();
    for app in ["hello", "polyglot"] {
        let text = std::fs::read(root.join("apps").join(app).join("weftapp.toml")).unwrap();
        write("manifest", app, &text);
    }
    let docs = std::fs::read_to_string(root.join("docs/weftapp.md")).unwrap();
    for (i, block) in docs.split("```toml\n").skip(1).enumerate() {
        let body = block.split("```").next().unwrap_or_default();
        let text = format!("[app]\nname = \"doc\"\nversion = \"1.0.0\"\n{body}");
        write("manifest", &format!("doc-{i}"), text.as_bytes());
    }
    write("manifest", "full", MANIFEST_FULL.as_bytes());
    write("manifest", "bad-syntax", b"[app\nname = \"x\"\n");
    write(
        "manifest",
        "bad-types",
        b"[app]\nname = 5\nversion = [1]\n[[agents]]\nid = \"\"\n",
    );
    write("manifest", "empty", b"");
}

/// A tar with `files` (path, bytes) and raw header tweaks.
fn tar(files: &[(&str, &[u8])], kind: tar::EntryType) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

async fn bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    std::fs::create_dir_all(dir.join("components")).unwrap();
    std::fs::write(
        dir.join("weftapp.toml"),
        "[app]\nname = \"tiny\"\nversion = \"1.0.0\"\n[[agents]]\nid = \"a\"\ncomponent = \"components/a.wasm\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("components/a.wasm"), b"\0asm tiny").unwrap();
    let rt = weft_runtime::Runtime::new(weft_runtime::RuntimeConfig::default()).unwrap();
    let checker = weft_apps::AppsChecker::from_file(&rt, &weft_testkit::guest("apps")).unwrap();
    let key = weft_chain::SigningKey::from_bytes(&[7u8; 32]);
    let signed = tmp.path().join("signed.weftapp");
    weft_apps::pack(&checker, &dir, Some(&signed), Some(&key))
        .await
        .unwrap();
    write("bundle", "signed", &std::fs::read(&signed).unwrap());
    std::fs::remove_file(dir.join("weftapp.sig")).unwrap();
    let unsigned = tmp.path().join("unsigned.weftapp");
    weft_apps::pack(&checker, &dir, Some(&unsigned), None)
        .await
        .unwrap();
    write("bundle", "unsigned", &std::fs::read(&unsigned).unwrap());
    let m: &[u8] = b"[app]\nname = \"x\"\nversion = \"1.0.0\"\n";
    let reg = tar::EntryType::Regular;
    write("bundle", "manifest-only", &tar(&[("weftapp.toml", m)], reg));
    write(
        "bundle",
        "dot-slash",
        &tar(&[("./weftapp.toml", m), ("./c/a.wasm", b"x")], reg),
    );
    write(
        "bundle",
        "symlink",
        &tar(&[("weftapp.toml", b"")], tar::EntryType::Symlink),
    );
    write(
        "bundle",
        "hardlink",
        &tar(&[("weftapp.toml", b"")], tar::EntryType::Link),
    );
    write(
        "bundle",
        "duplicate",
        &tar(&[("weftapp.toml", m), ("weftapp.toml", m)], reg),
    );
    write(
        "bundle",
        "bad-lock",
        &tar(&[("weftapp.toml", m), ("weftapp.lock", b"{\"v\":")], reg),
    );
    let long = "d/".repeat(70) + "weftapp.toml";
    write("bundle", "long-name", &tar(&[(long.as_str(), m)], reg));
}

/// A short real chain, as a kernel writes it; returns it.
async fn real_chain() -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    // Signed with the harness key, so the target's readers go past genesis.
    std::fs::create_dir_all(tmp.path().join("chain")).unwrap();
    let key_file = tmp.path().join("chain/chain.key");
    std::fs::write(&key_file, hex::encode([7u8; 32])).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut config = weft_kernel::KernelConfig::default();
    config.kernel.cache_dir = Some(weft_testkit::shared_cache_dir());
    config.runtime.pool_instances = 16;
    let k = weft_kernel::Kernel::boot(config, tmp.path()).await.unwrap();
    let probe = k.load_component(&weft_testkit::guest("probe")).unwrap();
    let op = weft_kernel::Principal::Operator;
    let mut req = weft_kernel::SpawnRequest::new("echo", probe);
    req.capabilities = weft_kernel::Capabilities::trusted();
    let pid = k.act(&op, weft_kernel::Spawn::new(req)).await.unwrap();
    for i in 0..3 {
        let send = weft_kernel::ipc::SendMessage::new(
            weft_kernel::MessageTarget::Agent(pid),
            weft_kernel::Payload::Text(format!("m{i}")),
        );
        k.act(&op, send).await.unwrap();
    }
    k.act(&op, weft_kernel::Stop::new(pid)).await.unwrap();
    k.shutdown().await.unwrap();
    std::fs::read(tmp.path().join("chain/00000000000000000000.seg")).unwrap()
}

/// The framed records of a segment file, after its header.
fn records(bytes: &[u8]) -> Vec<(u8, &[u8], &[u8])> {
    use weft_chain::record::{read_frame, Framed};
    let mut out = Vec::new();
    let mut off = weft_chain::layout::SEGMENT_HEADER_LEN;
    while let Framed::Ok { ty, body, len } = read_frame(&bytes[off..]) {
        out.push((ty, &bytes[off..off + len], body));
        off += len;
    }
    out
}

async fn chains() {
    let real = real_chain().await;
    write("chain_log", "real", &[&[0u8][..], &real].concat());
    write(
        "chain_log",
        "real-torn",
        &[&[0u8][..], &real[..real.len() - 7]].concat(),
    );
    write("chain_log", "empty", &[0]);
    for (i, recipe) in [
        &b"\x00\x05\x01\x10\x04kern\x04a.b1\x02xy\x07\x02\x00"[..],
        b"\x01\x0a\x07\x01\x00\x02\x01\x01s\x01k\x00\x87\x01\x05\x03",
        b"\x02\x08\xf8\x01\x02\x01s\x01k\x00\x01\x00\x00\x01\x05",
        b"\x00\x10\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03\x03",
    ]
    .iter()
    .enumerate()
    {
        write("chain_log", &format!("recipe-{i}"), &[&[1u8][..], recipe].concat());
    }
    let recs = records(&real);
    write(
        "chain_event",
        "header",
        &real[..weft_chain::layout::SEGMENT_HEADER_LEN],
    );
    for (i, (_, framed, body)) in recs.iter().enumerate().take(12) {
        write("chain_event", &format!("record-{i}"), framed);
        write("chain_event", &format!("body-{i}"), body);
    }
    // Gate records, as CBOR payloads and as length-prefixed events.
    let mut n = 0;
    for (ty, _, body) in &recs {
        if *ty != weft_chain::record::TYPE_EVENT || n >= 6 {
            continue;
        }
        let Ok(e) = weft_chain::record::EventBody::decode(body) else {
            continue;
        };
        let Some(d) = ["gate.permit", "gate.defer", "gate.deny"]
            .iter()
            .position(|k| *k == e.kind)
        else {
            continue;
        };
        write(
            "receipt",
            &format!("record-{n}"),
            &[&[0u8][..], e.payload].concat(),
        );
        let mut framed = vec![1u8];
        framed.extend_from_slice(&(e.payload.len() as u16).to_le_bytes());
        framed.push(d as u8);
        framed.extend_from_slice(e.payload);
        write("receipt", &format!("event-{n}"), &framed);
        n += 1;
    }
    write(
        "receipt",
        "recipe-0",
        b"\x02\x04\x00\x01a\x00\x01b\x01c\x01d\x01\x01e\x02\x01\x02\x03",
    );
    write(
        "receipt",
        "recipe-1",
        b"\x02\x08\x00\x02ab\x01x\x01y\x00\x00\x03\x00\x01r\x04\x01q\x00\x00\x00\x07\x09",
    );
    write("receipt", "forged-0", &[3; 140]);
    write(
        "receipt",
        "forged-1",
        &[&[3u8, 1, 4][..], b"gate", &[6], b"spawn", &[0; 120]].concat(),
    );
}

fn control() {
    let lines: &[&str] = &[
        r#"{"id":1,"unit":"kernel","request":{"op":"status"}}"#,
        r#"{"id":2,"unit":"kernel","request":{"op":"logs","level":"warn"}}"#,
        r#"{"id":3,"unit":"kernel","request":{"op":"tree","prefix":"/kernel"}}"#,
        r#"{"id":4,"unit":"agents","request":{"op":"ps"}}"#,
        r#"{"id":5,"unit":"ipc","request":{"op":"send","name":"echo","text":"hi","wait_ms":1000}}"#,
        r#"{"id":6,"unit":"ipc","request":{"op":"send","name":"echo","json":{"op":"whoami"}}}"#,
        r#"{"id":7,"unit":"tools","request":{"op":"ls"}}"#,
        r#"{"id":8,"unit":"tools","request":{"op":"run","name":"calc","input":"{\"expr\":\"1+2\"}"}}"#,
        r#"{"id":9,"unit":"chain","request":{"op":"tail","n":3}}"#,
        r#"{"id":10,"unit":"chain","request":{"op":"verify"}}"#,
        r#"{"id":11,"unit":"governance","request":{"op":"rules"}}"#,
        r#"{"id":12,"unit":"governance","request":{"op":"check","agent":"a","action":"tool.exec.calc","context":{"x":1},"effect":{"risk":0.5}}}"#,
        r#"{"id":13,"unit":"governance","request":{"op":"reload","policy":"[policy]\n"}}"#,
        r#"{"id":14,"unit":"cron","request":{"op":"ls"}}"#,
        r#"{"id":15,"unit":"cron","request":{"op":"add","schedule":"every 1h","target":"echo","payload":{"a":1}}}"#,
        r#"{"id":16,"unit":"cron","request":{"op":"rm","id":"job-1"}}"#,
        r#"{"id":17,"unit":"health","request":{"op":"status"}}"#,
        r#"{"id":18,"unit":"apps","request":{"op":"ls"}}"#,
        r#"{"id":19,"unit":"apps","request":{"op":"install","bundle":"/x"}}"#,
        r#"{"id":20,"unit":"apps","request":{"op":"start","name":"hello"}}"#,
        r#"{"id":21,"unit":"apps","request":{"op":"stop","name":"hello"}}"#,
        r#"{"id":22,"unit":"apps","request":{"op":"upgrade","name":"hello","bundle":"/x"}}"#,
        r#"{"id":23,"unit":"apps","request":{"op":"rm","name":"hello"}}"#,
        r#"{"id":24,"unit":"apps","request":{"op":"trust-ls"}}"#,
        r#"{"id":25,"unit":"apps","request":{"op":"trust-add","name":"k","key":"0000000000000000000000000000000000000000000000000000000000000000"}}"#,
        r#"{"id":26,"unit":"apps","request":{"op":"trust-rm","name":"k"}}"#,
        r#"{"id":27,"unit":"kernel","request":{"op":"stop"}}"#,
        r#"{"id":28,"unit":"nope","request":{"op":"x"}}"#,
        r#"{"id":29,"unit":"kernel","request":[]}"#,
        r#"{"id":30,"unit":"kernel"}"#,
        r#"{"unit":"kernel","request":{"op":"status"}}"#,
        "not json",
    ];
    for (i, l) in lines.iter().enumerate() {
        write("control", &format!("line-{i:02}"), l.as_bytes());
    }
    write("control", "session", lines[..8].join("\n").as_bytes());
    write(
        "control",
        "app-lifecycle",
        lines[17..24].join("\n").as_bytes(),
    );
}

fn programs() {
    let lit = |s: &'static str| Str::Lit(s.as_bytes());
    let progs: Vec<(&str, Program)> = vec![
        ("empty", Program::new()),
        ("whoami", Program::new().whoami().now().random(16)),
        (
            "send-echo",
            Program::new().send(Target::Named(lit("echo")), Body::Text(lit("hi"))),
        ),
        (
            "request-echo",
            Program::new().request(
                Target::Named(lit("echo")),
                Body::Json(lit("{\"op\":\"count\"}")),
                100,
            ),
        ),
        (
            "request-self",
            Program::new().request(Target::Named(lit("hostile")), Body::Text(lit("x")), 20),
        ),
        (
            "targets",
            Program::new()
                .send(Target::Agent(1), Body::Binary(lit("b")))
                .send(Target::Service(lit("svc")), Body::Text(lit("t")))
                .send(Target::Method(lit("svc"), lit("m")), Body::Text(lit("t")))
                .send(Target::Topic(lit("news")), Body::Json(lit("[1]")))
                .send(Target::Broadcast, Body::Text(lit("all"))),
        ),
        (
            "subscribe",
            Program::new().subscribe(lit("news")).subscribe(lit("")),
        ),
        (
            "tool-calc",
            Program::new().tool(lit("calc"), lit("{\"expr\":\"1+2\"}")),
        ),
        (
            "tool-bad-json",
            Program::new().tool(lit("calc"), lit("{not json")),
        ),
        (
            "tool-loop",
            Program::new().tool(lit("misbehave"), lit("{\"mode\":\"loop\"}")),
        ),
        ("chain", Program::new().chain(lit("note"), lit("{\"a\":1}"))),
        ("chain-bad", Program::new().chain(lit("a b\n"), lit("nope"))),
        ("log", Program::new().log(lit("hello"))),
        (
            "reply-json",
            Program::new().reply(Body::Json(lit("{\"ok\":true}"))),
        ),
        ("reply-bad-json", Program::new().reply(Body::Json(lit("{")))),
        (
            "reply-nested",
            Program::new().reply(Body::Json(Str::Nested(100_000))),
        ),
        (
            "reply-huge",
            Program::new().reply(Body::Text(Str::Repeat(4 << 20, b'x'))),
        ),
        ("fail", Program::new().fail(lit("no"))),
        ("random-huge", Program::new().random(u32::MAX)),
        (
            "chain-huge-kind",
            Program::new().chain(Str::Repeat(100_000, b'k'), lit("{}")),
        ),
        ("log-huge", Program::new().log(Str::Repeat(1 << 20, b'l'))),
        ("loop-now", Program::new().now().looped()),
        ("spin", Program::new().looped()),
    ];
    for (name, p) in progs {
        write("wit_boundary", name, &p.bytes());
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    manifests();
    bundles().await;
    chains().await;
    control();
    programs();
    println!("seeds written under {}", weft_fuzz::corpus_dir().display());
}
