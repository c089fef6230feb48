//! `wc`: an ordinary Rust program with no Weft-specific code, to show that
//! plain WASI 0.2 commands run unchanged. Counts lines, words and bytes of
//! each file argument, or of stdin when there is none.

use std::io::Read;
use std::process::ExitCode;

#[derive(Default, Clone, Copy)]
struct Counts {
    lines: usize,
    words: usize,
    bytes: usize,
}

fn count(data: &[u8]) -> Counts {
    let text = String::from_utf8_lossy(data);
    Counts {
        lines: data.iter().filter(|&&b| b == b'\n').count(),
        words: text.split_whitespace().count(),
        bytes: data.len(),
    }
}

fn print(c: Counts, name: &str) {
    println!("{:>7} {:>7} {:>7} {name}", c.lines, c.words, c.bytes);
}

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        let mut data = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut data) {
            eprintln!("wc: stdin: {e}");
            return ExitCode::from(1);
        }
        print(count(&data), "");
        return ExitCode::SUCCESS;
    }
    let mut total = Counts::default();
    let mut failed = false;
    for f in &files {
        match std::fs::read(f) {
            Ok(data) => {
                let c = count(&data);
                total.lines += c.lines;
                total.words += c.words;
                total.bytes += c.bytes;
                print(c, f);
            }
            Err(e) => {
                eprintln!("wc: {f}: {e}");
                failed = true;
            }
        }
    }
    if files.len() > 1 {
        print(total, "total");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
