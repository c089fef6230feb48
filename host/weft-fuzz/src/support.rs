//! What the targets share: one tokio runtime, one scratch directory on a
//! memory file system, one fixed signing key, and a byte cursor.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use weft_chain::SigningKey;

/// Run `f` to completion on the shared runtime (two workers, like the
/// machines the kernel is tested on).
pub fn block_on<F: Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
    .block_on(f)
}

/// The key every signed thing in the harnesses uses: fixed, so committed
/// corpora with signatures stay valid.
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// A directory private to this process, on `/dev/shm` when there is one
/// (fsync is free there). Left behind at exit (statics are not dropped);
/// the next process removes those of processes that are gone.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        sweep(&base);
        let dir = base.join(format!("weft-fuzz-{}", std::process::id()));
        let _stale = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch dir");
        dir
    })
}

/// Remove `weft-fuzz-<pid>` dirs whose process is gone.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("weft-fuzz-") else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _gone = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Reads fuzz input as little-endian numbers and short strings; a missing
/// byte reads as 0, so every input decodes to something.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Read from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        let b = self.buf.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// A length byte (at most `max`) and that many bytes.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.u8()).min(max);
        let start = self.pos.min(self.buf.len());
        let end = (start + n).min(self.buf.len());
        self.pos = start + n;
        &self.buf[start..end]
    }

    /// [`Cursor::bytes`] as (lossy) UTF-8.
    pub fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }
}
