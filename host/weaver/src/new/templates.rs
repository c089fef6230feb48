//! The template files of `weaver new` (in `host/weaver/templates/`, built
//! in) and how they are filled in: `{{name}}` and a few other placeholders,
//! plain text replacement.

use std::path::PathBuf;

/// What the project builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An `agent`-world component, run as `<app>.<id>`.
    Agent,
    /// A `tool`-world component.
    Tool,
    /// An `agent`-world component run as `<app>.service.<name>`.
    Service,
}

impl Kind {
    /// From the command line's spelling.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "agent" => Kind::Agent,
            "tool" => Kind::Tool,
            "service" => Kind::Service,
            _ => return None,
        })
    }

    /// The command line's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Tool => "tool",
            Kind::Service => "service",
        }
    }

    /// The WIT world its component implements.
    fn world(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Agent | Kind::Service => "agent",
        }
    }
}

/// The guest language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// wit-bindgen (the crate) and the `wasm32-wasip2` target.
    Rust,
    /// `wit-bindgen c`, clang 14 with wasi-libc, `wasm-tools component new`.
    C,
    /// componentize-py.
    Python,
    /// componentize-js.
    Js,
}

impl Lang {
    /// From the command line's spelling.
    pub fn parse(s: &str) -> Option<Lang> {
        Some(match s {
            "rust" => Lang::Rust,
            "c" => Lang::C,
            "python" => Lang::Python,
            "js" => Lang::Js,
            _ => return None,
        })
    }

    /// The command line's spelling.
    pub fn arg(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    /// The language's name, for people.
    pub fn display(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::C => "C",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    /// The source file a user edits.
    fn source(self) -> &'static str {
        match self {
            Lang::Rust => "src/lib.rs",
            Lang::C => "src/app.c",
            Lang::Python => "src/app.py",
            Lang::Js => "src/app.js",
        }
    }

    /// What its `build.sh` installs when missing (pinned as in
    /// `components/polyglot/build.sh`).
    fn needs(self) -> &'static str {
        match self {
            Lang::Rust => "the wasm32-wasip2 Rust target; wit-bindgen 0.63.0 from crates.io",
            Lang::C => {
                "clang-14, lld-14 and wasi-libc from Debian's apt; wit-bindgen-cli 0.63.0 and \
                 wasm-tools 1.262.0 with cargo install; the WASI adapter of wasmtime 48.0.8"
            }
            Lang::Python => "componentize-py 0.25.1 from PyPI",
            Lang::Js => "componentize-js 0.23.0 from npm (pinned by package-lock.json)",
        }
    }
}

/// One file of a project.
pub struct File {
    /// Relative to the project directory.
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
    /// Made executable (`build.sh`).
    pub executable: bool,
}

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $path))
    };
}

/// The guest source of `kind` in `lang`.
fn source(kind: Kind, lang: Lang) -> &'static str {
    match (lang, kind) {
        (Lang::Rust, Kind::Agent) => template!("rust/agent.rs"),
        (Lang::Rust, Kind::Tool) => template!("rust/tool.rs"),
        (Lang::Rust, Kind::Service) => template!("rust/service.rs"),
        (Lang::C, Kind::Agent) => template!("c/agent.c"),
        (Lang::C, Kind::Tool) => template!("c/tool.c"),
        (Lang::C, Kind::Service) => template!("c/service.c"),
        (Lang::Python, Kind::Agent) => template!("python/agent.py"),
        (Lang::Python, Kind::Tool) => template!("python/tool.py"),
        (Lang::Python, Kind::Service) => template!("python/service.py"),
        (Lang::Js, Kind::Agent) => template!("js/agent.js"),
        (Lang::Js, Kind::Tool) => template!("js/tool.js"),
        (Lang::Js, Kind::Service) => template!("js/service.js"),
    }
}

/// The lock of Weft's own JavaScript guests: the same componentize-js
/// 0.23.0 and everything it pulls in, so `npm ci` installs what Weft tests.
const JS_LOCK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../components/polyglot/js/package-lock.json"
));

/// [`JS_LOCK`] for the package `name` (its root entry renamed; the
/// dependencies are the template package.json's own).
fn js_lock(name: &str) -> String {
    JS_LOCK
        .replacen(
            "\"name\": \"weft-wordcount-js\"",
            &format!("\"name\": \"{name}\""),
            2,
        )
        .replacen("      \"license\": \"Apache-2.0\",\n", "", 1)
}

/// Every file of the project but its WIT, filled in.
pub fn render(kind: Kind, lang: Lang, name: &str) -> Vec<File> {
    let talk = match kind {
        Kind::Agent => template!("talk-agent.md"),
        Kind::Tool => template!("talk-tool.md"),
        Kind::Service => template!("talk-service.md"),
    };
    let manifest = match kind {
        Kind::Agent => template!("weftapp-agent.toml"),
        Kind::Tool => template!("weftapp-tool.toml"),
        Kind::Service => template!("weftapp-service.toml"),
    };
    let build_body = match lang {
        Lang::Rust => template!("build/rust.sh"),
        Lang::C => template!("build/c.sh"),
        Lang::Python => template!("build/python.sh"),
        Lang::Js => template!("build/js.sh"),
    };
    let build = [
        template!("build/head.sh"),
        build_body,
        template!("build/tail.sh"),
    ]
    .concat();
    let fill = |t: &str| {
        t.replace("{{talk}}", talk.trim_end())
            .replace("{{needs}}", lang.needs())
            .replace("{{source}}", lang.source())
            .replace("{{world}}", kind.world())
            .replace("{{kind}}", kind.as_str())
            .replace("{{langarg}}", lang.arg())
            .replace("{{lang}}", lang.display())
            .replace("{{c_text}}", template!("c/text.c").trim_end())
            .replace("{{name}}", name)
    };
    let file = |path: &str, text: String| File {
        path: PathBuf::from(path),
        text,
        executable: false,
    };
    let mut files = vec![
        file("README.md", fill(template!("README.md"))),
        file("weftapp.toml", fill(manifest)),
        File {
            path: PathBuf::from("build.sh"),
            text: fill(&build),
            executable: true,
        },
        file(lang.source(), fill(source(kind, lang))),
        file(".gitignore", template!("gitignore").to_string()),
    ];
    match lang {
        Lang::Rust => files.push(file("Cargo.toml", fill(template!("rust/Cargo.toml")))),
        Lang::Js => {
            files.push(file("package.json", fill(template!("js/package.json"))));
            files.push(file("package-lock.json", js_lock(name)));
        }
        Lang::C | Lang::Python => {}
    }
    files
}
