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
//!
//! Requests travel through genawaiter's airlock; answers do not. The sync
//! airlock is an `Arc<Mutex<..>>`, and genawaiter's own answer path takes
//! its lock three times per resume (the answer put in, then looked at and
//! taken out by the awaiting future) on top of the three the request
//! takes. An answer is instead put in a per-thread slot of its type
//! ([`Answer`]) just before the generator is resumed, on the thread that
//! resumes it, and taken by the awaiting yield first thing in that poll
//! (the leaf future a resumed `async` body polls first): the airlock's
//! lock is taken three times per round trip instead of six, with the
//! same ownership (one answer, moved once).

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::LocalKey;

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

/// A type of answer: it has a slot per thread, through which
/// [`Coroutine::resume`] hands an answer to the yield it resumes.
pub(crate) trait Answer: Sized + 'static {
    /// This type's per-thread slot (empty but during a resume).
    fn slot() -> &'static LocalKey<Cell<Option<Self>>>;
}

/// The workflow side of the channel: how workflow code yields requests
/// `Q` and gets answers `A`.
pub(crate) struct Yielder<Q, A> {
    co: Co<Q, ()>,
    answer: std::marker::PhantomData<fn() -> A>,
}

impl<Q, A: Answer> Yielder<Q, A> {
    /// Hands `request` to the interpreter and waits for its response. As
    /// with genawaiter's own `yield_`, the request is handed over when this
    /// is called: await the result at once.
    pub(crate) fn yield_(&mut self, request: Q) -> Answered<A> {
        YIELDED.with(|y| y.set(true));
        // genawaiter puts the request in its airlock here, not when its
        // future is polled; that future would only fetch the `()` the
        // generator is resumed with, so it is not kept.
        drop(self.co.yield_(request));
        Answered {
            yielded: false,
            answer: std::marker::PhantomData,
        }
    }
}

/// The answer to a yield: pending once (the generator stops there and
/// hands the request out), then ready with what the resume put in `A`'s
/// slot.
pub(crate) struct Answered<A> {
    yielded: bool,
    answer: std::marker::PhantomData<fn() -> A>,
}

impl<A: Answer> Future for Answered<A> {
    type Output = A;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<A> {
        if !self.yielded {
            self.yielded = true;
            return Poll::Pending;
        }
        match A::slot().with(Cell::take) {
            Some(answer) => Poll::Ready(answer),
            // Polled again within the poll that yielded (a combinator in
            // workflow code): still waiting, as genawaiter's future would.
            None => Poll::Pending,
        }
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
    generator: Gen<Q, (), Guard<R>>,
    started: bool,
    answer: std::marker::PhantomData<fn(A)>,
}

impl<Q, A: Answer, R> Coroutine<Q, A, R> {
    /// Creates the workflow; nothing runs until the first [`Coroutine::resume`].
    pub(crate) fn new(start: impl FnOnce(Yielder<Q, A>) -> BoxFuture<R>) -> Self {
        let generator = Gen::new(|co| Guard {
            inner: start(Yielder {
                co,
                answer: std::marker::PhantomData,
            }),
        });
        Coroutine {
            generator,
            started: false,
            answer: std::marker::PhantomData,
        }
    }

    /// Runs the workflow until its next yield or its end. The first call's
    /// response is ignored (nothing is waiting for it yet).
    pub(crate) fn resume(&mut self, response: A) -> Resumed<Q, R> {
        if self.started {
            A::slot().with(|slot| slot.set(Some(response)));
        } else {
            self.started = true;
        }
        let generator = &mut self.generator;
        let resumed = catch_unwind(AssertUnwindSafe(|| generator.resume_with(())));
        // Taken by the yield the resume reached, unless the workflow
        // ended or panicked before: none outlives this resume.
        A::slot().with(|slot| drop(slot.take()));
        match resumed {
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

    impl Answer for u32 {
        fn slot() -> &'static LocalKey<Cell<Option<u32>>> {
            thread_local! {
                static SLOT: Cell<Option<u32>> = const { Cell::new(None) };
            }
            &SLOT
        }
    }

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

    /// Answers go to the yield of the coroutine resumed with them, also
    /// when a workflow resumes another one inside its own poll (the outer
    /// one has taken its answer before its code runs; the inner one's
    /// answers never reach it).
    #[test]
    fn each_answer_reaches_the_workflow_resumed_with_it() {
        let mut outer = Co::new(|mut y| {
            Box::pin(async move {
                let first = y.yield_(1).await;
                let mut inner = Co::new(|mut y| {
                    Box::pin(async move {
                        let a = y.yield_(100).await;
                        let b = y.yield_(200).await;
                        a * 1000 + b
                    })
                });
                let mut inner_results = Vec::new();
                for answer in [0, 7, 8] {
                    match inner.resume(answer) {
                        Resumed::Yielded(request) => inner_results.push(request),
                        Resumed::Returned(result) => inner_results.push(result),
                        _ => return u32::MAX,
                    }
                }
                assert_eq!(inner_results, [100, 200, 7008]);
                let second = y.yield_(2).await;
                first * 10 + second
            })
        });
        assert!(matches!(outer.resume(0), Resumed::Yielded(1)));
        assert!(matches!(outer.resume(4), Resumed::Yielded(2)));
        assert!(matches!(outer.resume(5), Resumed::Returned(45)));
        // Nothing is left in the slot for a later resume to find.
        assert_eq!(<u32 as Answer>::slot().with(Cell::take), None);
    }

    /// An answer the workflow does not take is dropped by the resume, not
    /// left for another workflow's yield: here the workflow made its yield
    /// but then awaits something else, which the resume reaches instead.
    #[test]
    fn an_answer_not_taken_is_dropped_with_the_resume() {
        /// Pending once, then ready.
        struct Later(bool);
        impl Future for Later {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
                if self.0 {
                    Poll::Ready(())
                } else {
                    self.0 = true;
                    Poll::Pending
                }
            }
        }
        let mut co = Co::new(|mut y| {
            Box::pin(async move {
                let mut answer = y.yield_(1);
                {
                    let mut cx = Context::from_waker(std::task::Waker::noop());
                    assert!(Pin::new(&mut answer).poll(&mut cx).is_pending());
                }
                Later(false).await;
                3
            })
        });
        assert!(matches!(co.resume(0), Resumed::Yielded(1)));
        assert!(matches!(co.resume(9), Resumed::Returned(3)));
        assert_eq!(<u32 as Answer>::slot().with(Cell::take), None);
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
