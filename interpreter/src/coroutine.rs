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

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// The workflow side of the channel: how workflow code yields requests
/// `Q` and gets answers `A`.
pub(crate) struct Yielder<Q, A> {
    co: Co<Q, A>,
    yielded: Arc<AtomicBool>,
}

impl<Q, A> Yielder<Q, A> {
    /// Hands `request` to the interpreter and waits for its response.
    pub(crate) async fn yield_(&mut self, request: Q) -> A {
        self.yielded.store(true, Ordering::Relaxed);
        self.co.yield_(request).await
    }
}

/// Ends the run when a poll returns `Pending` without a yield.
struct Guard<R> {
    inner: BoxFuture<R>,
    yielded: Arc<AtomicBool>,
}

enum Finish<R> {
    Returned(R),
    ForeignAwait,
}

impl<R> Future for Guard<R> {
    type Output = Finish<R>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finish<R>> {
        self.yielded.store(false, Ordering::Relaxed);
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(Finish::Returned(result)),
            Poll::Pending if self.yielded.load(Ordering::Relaxed) => Poll::Pending,
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
        let generator = Gen::new(|co| {
            let yielded = Arc::new(AtomicBool::new(false));
            let inner = start(Yielder {
                co,
                yielded: yielded.clone(),
            });
            Guard { inner, yielded }
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
