//! `weaver trust ...`: the state dir's trust store for signed app bundles.
//! Works on the file directly, with or without a kernel.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use weft_apps::{TrustError, TrustStore};

use crate::exit;

#[derive(Subcommand)]
pub enum TrustCmd {
    /// Trust an Ed25519 public key (hex) under NAME.
    Add { name: String, pubkey_hex: String },
    /// List the trusted keys.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting NAME.
    Rm { name: String },
}

pub fn run(state: &Path, c: TrustCmd) -> anyhow::Result<ExitCode> {
    let mut store = TrustStore::open(state)
        .with_context(|| format!("opening the trust store in {}", state.display()))?;
    let done = match c {
        TrustCmd::Add { name, pubkey_hex } => store.add(&name, &pubkey_hex).map(|()| {
            println!("trusted {name}");
        }),
        TrustCmd::Rm { name } => store.remove(&name).map(|()| {
            println!("removed {name}");
        }),
        TrustCmd::Ls { json } => {
            let keys = store.list();
            if json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|(n, k)| json!({ "name": n, "key": k }))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                let rows: Vec<Vec<String>> = keys.into_iter().map(|(n, k)| vec![n, k]).collect();
                super::ctl::table(&["NAME", "KEY"], &rows);
            }
            Ok(())
        }
    };
    match done {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // Refused input is a failed command; I/O trouble is an error with context.
        Err(
            e @ (TrustError::BadName(_)
            | TrustError::BadKey { .. }
            | TrustError::NotFound(_)
            | TrustError::NameTaken { .. }),
        ) => {
            eprintln!("weaver: {e}");
            Ok(ExitCode::from(exit::FAILED))
        }
        Err(e) => Err(anyhow::Error::new(e).context("updating the trust store")),
    }
}
