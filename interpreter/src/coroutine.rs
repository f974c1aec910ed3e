//! The one module that knows workflows run on `genawaiter`.
//!
//! A workflow is an `async` body that talks to the interpreter only by
//! yielding requests and receiving responses (generic here: the messages
//! are `protocol`'s). This module wraps
//! `genawaiter::sync` (which is `Send`) and adds two guarantees on top:
//!
//! * a poll that returns `Pending` without a new yield (the workflow awaited
//!   a foreign future such as a tokio sleep) ends the run with
//!   [`Resumed::ForeignAwait`] instead of a panic inside genawaiter;
//! * a panic in workflow code ends the run with [`Resumed::Panicked`].

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use genawaiter::GeneratorState;
use genawaiter::sync::{Co, Gen};

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a resumed workflow did (`Q`: its requests, `R`: its result).
pub(crate) enum Resumed<Q, R> {
    /// It yields a request and waits for the response.
    Yielded(Q),
    /// It returned.
    Returned(R),
    /// It awaited something that is not a durable operation.
    ForeignAwait,
    /// It panicked; the message if the panic carried one.
    Panicked(String),
}

thread_local! {
    /// Whether the workflow being polled on this thread has yielded during
    /// the current poll. A poll runs on one thread from start to end, and
    /// [`Guard::poll`] saves and restores the flag around its own, so a
    /// workflow that (oddly) runs another one inside its poll does not
    /// disturb it. A flag per thread instead of one shared allocation per
    /// workflow: a map starts one workflow per item.
    static YIELDED: Cell<bool> = const { Cell::new(false) };
}

/// The workflow side of the channel: how workflow code yields requests
/// `Q` and gets answers `A`.
pub(crate) struct Yielder<Q, A> {
    co: Co<Q, A>,
}

impl<Q, A> Yielder<Q, A> {
    /// Hands `request` to the interpreter and waits for its response. As
    /// with genawaiter's own `yield_`, the request is handed over when this
    /// is called: await the result at once.
    pub(crate) fn yield_(&mut self, request: Q) -> impl Future<Output = A> + '_ {
        YIELDED.with(|y| y.set(true));
        self.co.yield_(request)
    }
}

/// Ends the run when a poll returns `Pending` without a yield.
struct Guard<R> {
    inner: BoxFuture<R>,
}

enum Finish<R> {
    Returned(R),
    ForeignAwait,
}

impl<R> Future for Guard<R> {
    type Output = Finish<R>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finish<R>> {
        let outer = YIELDED.with(|y| y.replace(false));
        let poll = self.inner.as_mut().poll(cx);
        let yielded = YIELDED.with(|y| y.replace(outer));
        match poll {
            Poll::Ready(result) => Poll::Ready(Finish::Returned(result)),
            Poll::Pending if yielded => Poll::Pending,
            Poll::Pending => Poll::Ready(Finish::ForeignAwait),
        }
    }
}

/// A running workflow that yields requests `Q`, is answered with `A` and
/// ends with `R`.
pub(crate) struct Coroutine<Q, A, R> {
    generator: Gen<Q, A, Guard<R>>,
    started: bool,
}

impl<Q, A: Default, R> Coroutine<Q, A, R> {
    /// Creates the workflow; nothing runs until the first [`Coroutine::resume`].
    pub(crate) fn new(start: impl FnOnce(Yielder<Q, A>) -> BoxFuture<R>) -> Self {
        let generator = Gen::new(|co| Guard {
            inner: start(Yielder { co }),
        });
        Coroutine {
            generator,
            started: false,
        }
    }

    /// Runs the workflow until its next yield or its end. The first call's
    /// response is ignored (nothing is waiting for it yet): the workflow
    /// starts with `A::default()`.
    pub(crate) fn resume(&mut self, response: A) -> Resumed<Q, R> {
        let response = if self.started {
            response
        } else {
            self.started = true;
            A::default()
        };
        let generator = &mut self.generator;
        match catch_unwind(AssertUnwindSafe(|| generator.resume_with(response))) {
            Ok(GeneratorState::Yielded(request)) => Resumed::Yielded(request),
            Ok(GeneratorState::Complete(Finish::Returned(result))) => Resumed::Returned(result),
            Ok(GeneratorState::Complete(Finish::ForeignAwait)) => Resumed::ForeignAwait,
            Err(panic) => Resumed::Panicked(panic_message(panic.as_ref())),
        }
    }
}

/// The message of a panic payload, if it is a string.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Co = Coroutine<u32, u32, u32>;

    /// A future that is never ready and never yields.
    fn foreign() -> std::future::Pending<()> {
        std::future::pending()
    }

    #[test]
    fn yields_returns_and_detects_foreign_awaits() {
        let mut co = Co::new(|mut y| {
            Box::pin(async move {
                let a = y.yield_(1).await;
                a + 1
            })
        });
        assert!(matches!(co.resume(0), Resumed::Yielded(1)));
        assert!(matches!(co.resume(41), Resumed::Returned(42)));

        let mut co = Co::new(|mut y| {
            Box::pin(async move {
                y.yield_(1).await;
                foreign().await;
                0
            })
        });
        assert!(matches!(co.resume(0), Resumed::Yielded(1)));
        assert!(matches!(co.resume(0), Resumed::ForeignAwait));
    }

    /// The per-thread yield flag is saved and restored around each poll: a
    /// workflow running another inside its own poll sees its own yields
    /// only (without the restore, the inner one's yield would make the
    /// outer one's foreign await look like a yield, and genawaiter panic).
    #[test]
    fn a_workflow_polled_inside_another_does_not_disturb_its_flag() {
        // The inner one yields, then the outer one awaits a foreign future.
        let mut outer = Co::new(|_| {
            Box::pin(async move {
                let mut inner = Co::new(|mut y| {
                    Box::pin(async move {
                        y.yield_(7).await;
                        0
                    })
                });
                assert!(matches!(inner.resume(0), Resumed::Yielded(7)));
                foreign().await;
                0
            })
        });
        assert!(matches!(outer.resume(0), Resumed::ForeignAwait));
    }
}
