//! `weaver new agent|tool|service NAME --lang rust|c|python|js [--dir DIR]`:
//! a project that builds one component and packs it as an app, with no
//! kernel and nothing from the Weft source tree. The WIT it builds against
//! is the one embedded in this binary (so a project always matches the
//! `weaver` that made it); the template files are in `templates/`, built in
//! with `include_str!`. Each project's `build.sh` installs its toolchain at
//! the versions Weft's own guests use (`components/polyglot/build.sh`).

mod templates;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, ArgMatches, Command};
use weft_kernel::control::protocol::exit;

pub use templates::{Kind, Lang};

/// `weaver new`.
pub fn command() -> Command {
    Command::new("new")
        .about("Create a project for an agent, a tool or a service in Rust, C, Python or JavaScript")
        .long_about(
            "Create a project directory that builds one component and packs it as an app: \
             the WIT it needs, weftapp.toml, a small working example, build.sh (installs its \
             toolchain at pinned versions, builds, packs NAME.weftapp) and a README saying how \
             to install, start and talk to it. No kernel needed, e.g.\n  \
             weaver new agent greeter --lang python && cd greeter && ./build.sh",
        )
        .arg(
            Arg::new("kind")
                .required(true)
                .value_parser(["agent", "tool", "service"])
                .help("agent: a process that handles messages; tool: JSON in, JSON out; service: answers method calls"),
        )
        .arg(
            Arg::new("name")
                .required(true)
                .help("The app's name, also its agent's, tool's or service's: a-z, 0-9 and -, starting with a letter"),
        )
        .arg(
            Arg::new("lang")
                .long("lang")
                .short('l')
                .required(true)
                .value_parser(["rust", "c", "python", "js"]),
        )
        .arg(
            Arg::new("dir")
                .long("dir")
                .value_name("DIR")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Where to create it (default: ./NAME); must be empty or not exist"),
        )
}

/// Why a project could not be created.
#[derive(Debug)]
pub enum NewError {
    /// NAME breaks the naming rule; the message says how.
    BadName(String),
    /// The directory exists and holds something.
    NotEmpty(PathBuf),
    /// Creating or writing a file failed.
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for NewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewError::BadName(m) => f.write_str(m),
            NewError::NotEmpty(d) => write!(
                f,
                "{} is not empty; weaver new writes only into an empty or new directory (pick another --dir)",
                d.display()
            ),
            NewError::Io(p, e) => write!(f, "writing {}: {e}", p.display()),
        }
    }
}

/// Checks NAME: it becomes the app's name (`[a-z0-9-]`, 1 to 64), the
/// agent's id, the tool's or service's name and the project's package name,
/// so it starts with a letter and does not end with `-`.
pub fn check_name(name: &str) -> Result<(), NewError> {
    let bad = |why: &str| {
        Err(NewError::BadName(format!(
            "invalid NAME {name:?}: {why} (a-z, 0-9 and -, 1 to 64 characters, starting with a letter, e.g. `my-agent`)"
        )))
    };
    if name.is_empty() || name.len() > 64 {
        return bad("it must be 1 to 64 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return bad(&format!("{c:?} is not allowed"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("it must start with a letter");
    }
    if name.ends_with('-') {
        return bad("it must not end with `-`");
    }
    Ok(())
}

/// Writes the project `kind`/`lang` named `name` into `dir` (created; it
/// must be empty or absent) with the WIT files `wit`. Returns the files
/// written, relative to `dir`.
pub fn create(
    dir: &Path,
    kind: Kind,
    lang: Lang,
    name: &str,
    wit: &[(&str, &str)],
) -> Result<Vec<PathBuf>, NewError> {
    check_name(name)?;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(NewError::NotEmpty(dir.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NewError::Io(dir.to_path_buf(), e)),
    }
    let mut files = templates::render(kind, lang, name);
    for (file, text) in wit {
        files.push(templates::File {
            path: Path::new("wit").join(file),
            text: (*text).to_string(),
            executable: false,
        });
    }
    for f in &files {
        let path = dir.join(&f.path);
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, &f.text)?;
            if f.executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
            Ok(())
        };
        write().map_err(|e| NewError::Io(path.clone(), e))?;
    }
    Ok(files.into_iter().map(|f| f.path).collect())
}

/// Runs `weaver new` with its matches; `wit` is the embedded WIT.
pub fn run(m: &ArgMatches, wit: &[(&str, &str)]) -> ExitCode {
    let (Some(kind), Some(name), Some(lang)) = (
        m.get_one::<String>("kind").and_then(|k| Kind::parse(k)),
        m.get_one::<String>("name"),
        m.get_one::<String>("lang").and_then(|l| Lang::parse(l)),
    ) else {
        return ExitCode::from(exit::USAGE);
    };
    if let Err(e) = check_name(name) {
        eprintln!("weaver: {e}");
        return ExitCode::from(exit::USAGE);
    }
    let dir = m
        .get_one::<PathBuf>("dir")
        .cloned()
        .unwrap_or_else(|| PathBuf::from(name));
    match create(&dir, kind, lang, name, wit) {
        Ok(files) => {
            let wit_files = files.iter().filter(|f| f.starts_with("wit")).count();
            let own: Vec<String> = files
                .iter()
                .filter(|f| !f.starts_with("wit"))
                .map(|f| f.display().to_string())
                .collect();
            println!(
                "created {} ({} {} `{name}`): {}, wit/ ({wit_files} files)",
                dir.display(),
                lang.display(),
                kind.as_str(),
                own.join(", ")
            );
            println!(
                "next: cd {} && ./build.sh    (then README.md: install, start, talk to it)",
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e @ NewError::NotEmpty(_)) => {
            eprintln!("weaver: {e}");
            ExitCode::from(exit::USAGE)
        }
        Err(e) => {
            eprintln!("weaver: {e}");
            ExitCode::from(exit::FAILED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIT: &[(&str, &str)] = &[("types.wit", "package weft:kernel@0.1.0;\n")];

    #[test]
    fn names_follow_the_app_name_rule() {
        for ok in ["a", "my-agent", "x9", &"a".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "9lives",
            "-x",
            "x-",
            "My",
            "a_b",
            "a.b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            let e = check_name(bad).expect_err(bad).to_string();
            assert!(e.contains("invalid NAME"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_template_renders_every_placeholder() {
        for kind in [Kind::Agent, Kind::Tool, Kind::Service] {
            for lang in [Lang::Rust, Lang::C, Lang::Python, Lang::Js] {
                let dir = tempfile::tempdir().unwrap();
                let files = create(dir.path(), kind, lang, "my-app", WIT).unwrap();
                for f in &files {
                    let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
                    assert!(
                        !text.contains("{{"),
                        "{kind:?} {lang:?} {}: {text}",
                        f.display()
                    );
                }
                let manifest = std::fs::read_to_string(dir.path().join("weftapp.toml")).unwrap();
                assert!(manifest.contains("name = \"my-app\""), "{manifest}");
                assert!(
                    manifest.contains("component = \"out/my-app.wasm\""),
                    "{manifest}"
                );
                assert!(dir.path().join("wit/types.wit").is_file());
                let build = dir.path().join("build.sh");
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&build).unwrap().permissions().mode();
                assert_eq!(mode & 0o111, 0o111, "build.sh is executable");
            }
        }
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let e = create(dir.path(), Kind::Tool, Lang::Rust, "t", WIT).unwrap_err();
        assert!(matches!(e, NewError::NotEmpty(_)), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // An empty one is fine.
        let empty = tempfile::tempdir().unwrap();
        create(empty.path(), Kind::Tool, Lang::Rust, "t", WIT).unwrap();
    }

    #[test]
    fn the_js_lock_pins_exactly_what_package_json_asks_for() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), Kind::Agent, Lang::Js, "my-app", WIT).unwrap();
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(f)).unwrap()).unwrap()
        };
        let (pkg, lock) = (read("package.json"), read("package-lock.json"));
        let root = &lock["packages"][""];
        assert_eq!(lock["name"], "my-app");
        assert_eq!(root["name"], "my-app");
        assert_eq!(root["dependencies"], pkg["dependencies"]);
        assert_eq!(root["version"], pkg["version"]);
        assert_eq!(
            lock["packages"]["node_modules/@bytecodealliance/componentize-js"]["version"],
            "0.23.0"
        );
    }
}
