//! Programs for the `hostile` test agent (`components/testing/hostile`):
//! a binary message it runs as a sequence of syscalls. The format is
//! documented in that crate; this is its encoder, for tests and seeds.
//!
//! ```
//! use weft_fuzz::program::{Program, Str, Target};
//! // Call `now` forever: fuel or the deadline has to stop it.
//! let spin = Program::new().now().looped();
//! // Hand the kernel 1 MiB of text as a chain event kind.
//! let big = Program::new().chain(Str::Repeat(1 << 20, b'k'), Str::Lit(b"{}"));
//! # let _ = (spin, big, Target::Broadcast);
//! ```

/// A string argument.
#[derive(Clone, Copy, Debug)]
pub enum Str<'a> {
    /// These bytes (at most 127), read as lossy UTF-8.
    Lit(&'a [u8]),
    /// One byte repeated (at most 32 MiB).
    Repeat(u32, u8),
    /// `[` × depth then `]` × depth: JSON nested `depth` deep.
    Nested(u32),
}

/// Where a message goes.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// By pid (0..=255).
    Agent(u8),
    /// By name.
    Named(Str<'a>),
    /// A service's owner.
    Service(Str<'a>),
    /// A service method.
    Method(Str<'a>, Str<'a>),
    /// A topic.
    Topic(Str<'a>),
    /// Everyone.
    Broadcast,
}

/// A message body.
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    /// `payload::text`.
    Text(Str<'a>),
    /// `payload::json` (the text is not checked by the guest).
    Json(Str<'a>),
    /// `payload::binary`.
    Binary(Str<'a>),
}

/// A program under construction.
#[derive(Clone, Debug, Default)]
pub struct Program(Vec<u8>);

impl Program {
    /// An empty program (the agent answers `none`).
    pub fn new() -> Self {
        Program(Vec::new())
    }

    /// The bytes to send the agent as a binary payload.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.clone()
    }

    fn op(mut self, code: u8) -> Self {
        self.0.push(code);
        self
    }

    fn str(mut self, s: Str<'_>) -> Self {
        match s {
            Str::Lit(b) => {
                assert!(b.len() < 0x80, "a literal holds at most 127 bytes");
                self.0.push(b.len() as u8);
                self.0.extend_from_slice(b);
            }
            Str::Repeat(n, c) => {
                self.0.push(0x80);
                self.0.extend_from_slice(&n.to_le_bytes());
                self.0.push(c);
            }
            Str::Nested(d) => {
                self.0.push(0xc0);
                self.0.extend_from_slice(&d.to_le_bytes());
            }
        }
        self
    }

    fn body(mut self, b: Body<'_>) -> Self {
        let (k, s) = match b {
            Body::Text(s) => (0, s),
            Body::Json(s) => (1, s),
            Body::Binary(s) => (2, s),
        };
        self.0.push(k);
        self.str(s)
    }

    fn target(mut self, t: Target<'_>) -> Self {
        match t {
            Target::Agent(pid) => {
                self.0.extend_from_slice(&[0, pid]);
                self
            }
            Target::Named(s) => self.op(1).str(s),
            Target::Service(s) => self.op(2).str(s),
            Target::Method(s, m) => self.op(3).str(s).str(m),
            Target::Topic(s) => self.op(4).str(s),
            Target::Broadcast => self.op(5),
        }
    }

    /// `send(to, body)`.
    pub fn send(self, to: Target<'_>, body: Body<'_>) -> Self {
        self.op(0).target(to).body(body)
    }

    /// `request(to, body, ms)`; the guest waits at most 255 ms.
    pub fn request(self, to: Target<'_>, body: Body<'_>, ms: u8) -> Self {
        let mut p = self.op(1).target(to).body(body);
        p.0.extend_from_slice(&u16::from(ms).to_le_bytes());
        p
    }

    /// `subscribe(topic)`.
    pub fn subscribe(self, topic: Str<'_>) -> Self {
        self.op(2).str(topic)
    }

    /// `invoke-tool(name, input)`.
    pub fn tool(self, name: Str<'_>, input: Str<'_>) -> Self {
        self.op(4).str(name).str(input)
    }

    /// `log(info, msg)`.
    pub fn log(self, msg: Str<'_>) -> Self {
        self.op(5).op(2).str(msg)
    }

    /// `now()`.
    pub fn now(self) -> Self {
        self.op(6)
    }

    /// `random(len)`.
    pub fn random(mut self, len: u32) -> Self {
        self.0.push(7);
        self.0.extend_from_slice(&len.to_le_bytes());
        self
    }

    /// `chain-append(kind, body)`.
    pub fn chain(self, kind: Str<'_>, body: Str<'_>) -> Self {
        self.op(8).str(kind).str(body)
    }

    /// `self-pid()` and `self-name()`.
    pub fn whoami(self) -> Self {
        self.op(9)
    }

    /// End by returning `body` from `handle`.
    pub fn reply(self, body: Body<'_>) -> Self {
        self.op(10).body(body)
    }

    /// End by returning an error.
    pub fn fail(self, msg: Str<'_>) -> Self {
        self.op(11).str(msg)
    }

    /// Run everything so far again, forever.
    pub fn looped(self) -> Self {
        self.op(12)
    }
}
