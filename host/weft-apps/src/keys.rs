//! `weaver key new | show`: the Ed25519 keys that sign app bundles, made
//! and read with no kernel. A key file holds the 32-byte secret as 64 hex
//! characters (or the raw 32 bytes), mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{FromArgMatches, Subcommand};
use serde_json::json;
use weft_kernel::control::cli::CliCommand;
use weft_kernel::control::protocol::exit;

use crate::SigningKey;

#[derive(Subcommand)]
enum KeyCmd {
    /// Make a new signing key and print its public key (for `weaver trust add`).
    New {
        /// Where to write the secret key (refuses to overwrite one).
        #[arg(
            short = 'o',
            long = "out",
            value_name = "FILE",
            default_value = "weft-signing.key"
        )]
        out: PathBuf,
        /// Print `{"file", "public_key"}` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the public key of a signing key file.
    Show {
        /// The secret key file.
        file: PathBuf,
        /// Print `{"file", "public_key"}` as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `weaver key`.
pub fn cli() -> CliCommand {
    CliCommand {
        command: || {
            KeyCmd::augment_subcommands(
                clap::Command::new("key")
                    .about("Signing keys for app bundles (no kernel needed)")
                    .subcommand_required(true),
            )
        },
        run: |_cx, m| Box::pin(key(m)),
    }
}

async fn key(m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match KeyCmd::from_arg_matches(m)? {
        KeyCmd::New { out, json } => {
            let key = new_key(&out)?;
            let public = hex(&key.verifying_key().to_bytes());
            if json {
                println!("{}", json!({ "file": out, "public_key": public }));
            } else {
                println!("{public}");
                eprintln!(
                    "weaver: wrote the secret signing key to {} (mode 0600; keep it secret)\n\
                     weaver: sign a bundle with: weaver app pack DIR --key {}\n\
                     weaver: trust it in a kernel with: weaver trust add NAME {public}",
                    out.display(),
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        KeyCmd::Show { file, json } => {
            let key = match read_key(&file) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("weaver: {e:#}");
                    return Ok(ExitCode::from(exit::FAILED));
                }
            };
            let public = hex(&key.verifying_key().to_bytes());
            if json {
                println!("{}", json!({ "file": file, "public_key": public }));
            } else {
                println!("{public}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Make a key and write it to `out` (created new, mode 0600, fsynced).
pub fn new_key(out: &Path) -> anyhow::Result<SigningKey> {
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).context("reading the system's random source")?;
    let key = SigningKey::from_bytes(&secret);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} already exists; not overwriting a key (choose another file with -o)",
                    out.display()
                )
            } else {
                anyhow::anyhow!("cannot create {}: {e}", out.display())
            }
        })?;
    writeln!(f, "{}", hex(&secret))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(key)
}

/// Read a signing key file: 64 hex characters (surrounding whitespace
/// ignored) or exactly 32 raw bytes. A missing file says how to make one.
pub fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let raw = match std::fs::read(path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "signing key {} does not exist; make one with: weaver key new -o {}",
            path.display(),
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading signing key {}", path.display())),
    };
    let bytes: [u8; 32] = match <[u8; 32]>::try_from(raw.as_slice()) {
        Ok(b) if !is_hex_text(&raw) => b,
        _ => {
            let text = String::from_utf8_lossy(&raw);
            let text = text.trim();
            let mut out = [0u8; 32];
            if text.len() != 64 || !text.is_ascii() {
                anyhow::bail!(
                    "{}: not a signing key: expected 64 hex characters (as `weaver key new` \
                     writes), found {} bytes",
                    path.display(),
                    raw.len()
                );
            }
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                    .with_context(|| format!("{}: not a signing key: not hex", path.display()))?;
            }
            out
        }
    };
    Ok(SigningKey::from_bytes(&bytes))
}

fn is_hex_text(raw: &[u8]) -> bool {
    raw.iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.key");
        let k = new_key(&p).unwrap();
        let back = read_key(&p).unwrap();
        assert_eq!(k.to_bytes(), back.to_bytes());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = new_key(&p).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
    }

    #[test]
    fn missing_and_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alice.key");
        let e = format!("{:#}", read_key(&p).unwrap_err());
        assert!(e.contains("weaver key new -o"), "{e}");
        std::fs::write(&p, "nope").unwrap();
        let e = format!("{:#}", read_key(&p).unwrap_err());
        assert!(e.contains("expected 64 hex characters"), "{e}");
        std::fs::write(&p, [7u8; 32]).unwrap();
        assert!(read_key(&p).is_ok());
    }
}
