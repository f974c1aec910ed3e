//! A timer that works under any async runtime (tokio, a plain executor,
//! the local runner's tests): one background thread wakes the futures
//! whose deadlines have passed.
//!
//! The driver uses it for one thing: how long an operation's START may
//! wait, while its body runs, for the body's outcome to share its request.
//! It is armed only when a body did not finish at its first poll, so fast
//! steps never touch it.

use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A future that completes at `deadline` (real time).
pub(crate) struct Delay {
    deadline: Instant,
    /// The waker last handed to the timer thread.
    registered: Option<Waker>,
}

impl Delay {
    pub(crate) fn until(deadline: Instant) -> Self {
        Delay {
            deadline,
            registered: None,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let fresh = self
            .registered
            .as_ref()
            .is_none_or(|w| !w.will_wake(cx.waker()));
        if fresh {
            let waker = cx.waker().clone();
            self.registered = Some(waker.clone());
            timer().register(self.deadline, waker);
        }
        Poll::Pending
    }
}

struct Entry {
    deadline: Instant,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed: the heap's top is the earliest deadline.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.deadline.cmp(&self.deadline)
    }
}

struct Timer {
    entries: Mutex<BinaryHeap<Entry>>,
    changed: Condvar,
}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, BinaryHeap<Entry>> {
        // Nothing panics while the lock is held; a poisoned heap is intact.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, deadline: Instant, waker: Waker) {
        let mut entries = self.lock();
        let earliest = entries.peek().is_none_or(|e| deadline < e.deadline);
        entries.push(Entry { deadline, waker });
        drop(entries);
        if earliest {
            self.changed.notify_one();
        }
    }

    /// The timer thread: wakes each entry once its deadline has passed.
    fn run(&self) {
        let mut entries = self.lock();
        loop {
            let now = Instant::now();
            while entries.peek().is_some_and(|e| e.deadline <= now) {
                if let Some(entry) = entries.pop() {
                    entry.waker.wake();
                }
            }
            entries = match entries.peek().map(|e| e.deadline) {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(entries, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self
                    .changed
                    .wait(entries)
                    .unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}

/// The process's timer, its thread started on first use.
fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            entries: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
        }));
        let spawned = std::thread::Builder::new()
            .name("durable-yield-timer".into())
            .spawn(move || timer.run());
        if let Err(e) = spawned {
            // Without the thread, delays complete when next polled after
            // their deadline: a START may then wait for its step's outcome.
            tracing::warn!(error = %e, "could not start the timer thread");
        }
        timer
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn delays_complete_after_their_deadline() {
        let start = Instant::now();
        let deadlines = [30u64, 10, 20].map(|ms| start + Duration::from_millis(ms));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        for deadline in deadlines {
            // Not tokio's timer: the runtime has none enabled.
            rt.block_on(Delay::until(deadline));
            assert!(Instant::now() >= deadline);
        }
    }
}
