//! Container output as lines. The engine sends frames as the process wrote
//! them, which need not end at line ends; stdout and stderr are split
//! separately.

use std::collections::VecDeque;
use std::pin::Pin;

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};

use crate::error::EngineError;

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of container output, without its line end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// stdout or stderr.
    pub stream: OutputStream,
    /// The text (invalid UTF-8 replaced).
    pub line: String,
}

/// A stream of log lines.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<LogLine, EngineError>> + Send>>;

/// Longest line kept whole; a longer run without a line end is cut into
/// pieces of this size, so a container cannot make us buffer without bound.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Default)]
pub(crate) struct Splitter {
    out: Vec<u8>,
    err: Vec<u8>,
    ready: VecDeque<LogLine>,
}

impl Splitter {
    pub(crate) fn push(&mut self, stream: OutputStream, bytes: &[u8]) {
        let buf = match stream {
            OutputStream::Stdout => &mut self.out,
            OutputStream::Stderr => &mut self.err,
        };
        for &b in bytes {
            if b == b'\n' {
                let mut l = std::mem::take(buf);
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                self.ready.push_back(line(stream, &l));
            } else {
                buf.push(b);
                if buf.len() >= MAX_LINE {
                    let l = std::mem::take(buf);
                    self.ready.push_back(line(stream, &l));
                }
            }
        }
    }

    /// Emits what is left without a line end.
    pub(crate) fn finish(&mut self) {
        for (stream, buf) in [
            (OutputStream::Stdout, &mut self.out),
            (OutputStream::Stderr, &mut self.err),
        ] {
            if !buf.is_empty() {
                let l = std::mem::take(buf);
                self.ready.push_back(line(stream, &l));
            }
        }
    }

    pub(crate) fn pop(&mut self) -> Option<LogLine> {
        self.ready.pop_front()
    }
}

fn line(stream: OutputStream, b: &[u8]) -> LogLine {
    LogLine {
        stream,
        line: String::from_utf8_lossy(b).into_owned(),
    }
}

/// Turns the engine's frames into lines.
pub(crate) fn lines<S>(frames: S, id: String) -> LogStream
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send + 'static,
{
    struct St<S> {
        frames: Pin<Box<S>>,
        split: Splitter,
        done: bool,
        id: String,
    }
    let st = St {
        frames: Box::pin(frames),
        split: Splitter::default(),
        done: false,
        id,
    };
    Box::pin(futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(l) = st.split.pop() {
                return Some((Ok(l), st));
            }
            if st.done {
                return None;
            }
            match st.frames.next().await {
                Some(Ok(LogOutput::StdOut { message }))
                | Some(Ok(LogOutput::Console { message })) => {
                    st.split.push(OutputStream::Stdout, &message)
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    st.split.push(OutputStream::Stderr, &message)
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(e)) => {
                    st.done = true;
                    st.split.finish();
                    let e = EngineError::api("logs", "container", &st.id, e);
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    st.split.finish();
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_per_stream_across_frames() {
        let mut s = Splitter::default();
        s.push(OutputStream::Stdout, b"hel");
        s.push(OutputStream::Stderr, b"oops\r\nwa");
        s.push(OutputStream::Stdout, b"lo\nworld");
        s.finish();
        let got: Vec<_> = std::iter::from_fn(|| s.pop())
            .map(|l| (l.stream, l.line))
            .collect();
        assert_eq!(
            got,
            vec![
                (OutputStream::Stderr, "oops".to_string()),
                (OutputStream::Stdout, "hello".to_string()),
                (OutputStream::Stdout, "world".to_string()),
                (OutputStream::Stderr, "wa".to_string()),
            ]
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let mut s = Splitter::default();
        s.push(OutputStream::Stdout, &vec![b'x'; MAX_LINE + 10]);
        s.finish();
        assert_eq!(s.pop().unwrap().line.len(), MAX_LINE);
        assert_eq!(s.pop().unwrap().line.len(), 10);
    }
}
