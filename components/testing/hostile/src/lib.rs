//! `hostile`: an agent that does whatever its message says, with any
//! arguments. A binary message is a *program*: a sequence of syscalls whose
//! arguments come from the bytes, so a fuzzer (or a test) can feed the
//! kernel's host functions arbitrary values across the WIT boundary, loop
//! on a host call forever, or hand back huge strings and deeply nested
//! JSON. Other payloads are answered with `Ok(None)`.
//!
//! The format (mirrored by `weft_fuzz::program` on the host, which has an
//! encoder for tests):
//!
//! ```text
//! program := op*                       (a missing byte reads as 0)
//! op      := code:u8 args              (code % 13 picks the op)
//!   0 send      target payload         1 request target payload ms:u16 (≤ 255 ms)
//!   2 subscribe str                    3 unsubscribe str
//!   4 tool      name:str input:str     5 log level:u8 str
//!   6 now                              7 random len:u32
//!   8 chain     kind:str body:str      9 self-pid, self-name
//!  10 reply     payload                11 fail str
//!  12 loop      (run the whole program again, forever)
//! str     := n:u8 < 0x80, n bytes      (lossy UTF-8)
//!          | 0x80..=0xBF len:u32 c:u8  (`c` repeated len times, len ≤ 32 MiB)
//!          | 0xC0..=0xFF depth:u32     (`[` × depth then `]` × depth, depth ≤ 8 Mi)
//! payload := k:u8 str                  (k % 3: text, json, binary)
//! target  := k:u8 ...                  (k % 6: agent pid:u8, named str, service str,
//!                                       service-method str str, topic str, broadcast)
//! ```
//!
//! `reply` and `fail` set what `handle` returns when the program ends.

// The generated export glue takes one argument per flattened field.
#![allow(clippy::too_many_arguments)]

// Generated from the WIT, which documents it; private, so none of it is this crate's API.
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "agent" });
}
use bindings::*;

use weft::kernel::ipc::{Level, ServiceMethod, Target};
use weft::kernel::kernel as k;

/// Largest repeated string a program can ask for.
const MAX_REPEAT: u32 = 32 << 20;
/// Deepest nesting a program can ask for.
const MAX_DEPTH: u32 = 8 << 20;

struct Hostile;

impl Guest for Hostile {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn handle(msg: Message) -> Result<Option<Payload>, String> {
        match msg.payload {
            Payload::Binary(program) => run(&program),
            _ => Ok(None),
        }
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.buf.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bytes(&mut self) -> Vec<u8> {
        let tag = self.u8();
        match tag {
            0..=0x7f => {
                let start = self.pos.min(self.buf.len());
                let end = (start + tag as usize).min(self.buf.len());
                self.pos = start + tag as usize;
                self.buf[start..end].to_vec()
            }
            0x80..=0xbf => {
                let len = self.u32().min(MAX_REPEAT) as usize;
                let c = self.u8();
                vec![c; len]
            }
            _ => {
                let depth = self.u32().min(MAX_DEPTH) as usize;
                let mut v = vec![b'['; depth];
                v.resize(depth * 2, b']');
                v
            }
        }
    }
    fn str(&mut self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
    fn payload(&mut self) -> Payload {
        match self.u8() % 3 {
            0 => Payload::Text(self.str()),
            1 => Payload::Json(self.str()),
            _ => Payload::Binary(self.bytes()),
        }
    }
    fn target(&mut self) -> Target {
        match self.u8() % 6 {
            0 => Target::Agent(u64::from(self.u8())),
            1 => Target::Named(self.str()),
            2 => Target::Service(self.str()),
            3 => Target::ServiceMethod(ServiceMethod {
                service: self.str(),
                method: self.str(),
            }),
            4 => Target::Topic(self.str()),
            _ => Target::Broadcast,
        }
    }
}

fn level(b: u8) -> Level {
    match b % 5 {
        0 => Level::Trace,
        1 => Level::Debug,
        2 => Level::Info,
        3 => Level::Warn,
        _ => Level::Error,
    }
}

/// Runs `program`; results of the calls are dropped (the host must cope
/// with whatever came before).
fn run(program: &[u8]) -> Result<Option<Payload>, String> {
    let mut c = Cursor {
        buf: program,
        pos: 0,
    };
    let mut answer = Ok(None);
    while !c.done() {
        match c.u8() % 13 {
            0 => {
                let (t, p) = (c.target(), c.payload());
                let _ = k::send(&t, &p);
            }
            1 => {
                let (t, p) = (c.target(), c.payload());
                let ms = u32::from(c.u16() % 256);
                let _ = k::request(&t, &p, ms);
            }
            2 => {
                let _ = k::subscribe(&c.str());
            }
            3 => {
                let _ = k::unsubscribe(&c.str());
            }
            4 => {
                let (name, input) = (c.str(), c.str());
                let _ = k::invoke_tool(&name, &input);
            }
            5 => {
                let l = level(c.u8());
                k::log(l, &c.str());
            }
            6 => {
                std::hint::black_box(k::now());
            }
            7 => {
                std::hint::black_box(k::random(c.u32()));
            }
            8 => {
                let (kind, body) = (c.str(), c.str());
                let _ = k::chain_append(&kind, &body);
            }
            9 => {
                std::hint::black_box((k::self_pid(), k::self_name()));
            }
            10 => answer = Ok(Some(c.payload())),
            11 => answer = Err(c.str()),
            _ => c.pos = 0,
        }
    }
    answer
}

export!(Hostile);
