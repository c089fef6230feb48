//! A small parking executor for calling guests from synchronous code, with
//! the deadline [`crate::Runtime::guard`] gets from tokio's timer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Drive `f` on this thread; `None` once `timeout` has passed since its
/// first yield (a call that never yields never reads the clock). Dropping
/// the future at a yield cancels the guest's fiber.
pub(crate) fn drive<F: Future>(mut f: Pin<&mut F>, timeout: Duration) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut deadline = None;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        let at = *deadline.get_or_insert(now + timeout);
        if now >= at {
            return None;
        }
        std::thread::park_timeout(at - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_future_that_never_finishes_is_dropped_at_its_deadline() {
        let spin = std::future::poll_fn(|cx| {
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        let started = Instant::now();
        assert!(drive(std::pin::pin!(spin), Duration::from_millis(30)).is_none());
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn a_ready_future_returns_its_value() {
        assert_eq!(drive(std::pin::pin!(async { 7 }), Duration::ZERO), Some(7));
    }
}
