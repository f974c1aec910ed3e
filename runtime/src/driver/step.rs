//! Running one step body: in its `durable_operation` span, with a panic
//! turned into a failed attempt.

use super::*;
use durable_yield_interpreter::__private::panic_message;

/// Runs one step body in its `durable_operation` span and in the scopes
/// the plugins made for its attempt, turning a panic into a failed
/// attempt.
pub(super) fn run_step(
    run: StepRun,
    scopes: Vec<Arc<dyn Scope>>,
) -> impl Future<Output = (StepHandle, StepOutcome)> + Send {
    let ctx = &run.context;
    let span = tracing::info_span!(
        "durable_operation",
        operation_id = %ctx.operation_id(),
        parent_id = tracing::field::Empty,
        name = ctx.name().unwrap_or(""),
        r#type = "STEP",
        subtype = run.sub_type.as_str(),
        attempt = ctx.attempt(),
    );
    if let Some(parent) = &run.parent_id {
        span.record("parent_id", tracing::field::display(parent));
    }
    let handle = run.handle;
    CatchUnwind(run.into_body(), scopes)
        .instrument(span)
        .map(move |outcome| (handle, outcome))
}

/// Polls a step body within its scopes, turning a panic into a failed
/// attempt.
pub(super) struct CatchUnwind<F>(F, Vec<Arc<dyn Scope>>);

impl<F: Future<Output = StepOutcome> + Unpin> Future for CatchUnwind<F> {
    type Output = StepOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StepOutcome> {
        let this = &mut *self;
        let inner = Pin::new(&mut this.0);
        let polled = within(&this.1, || {
            catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
        });
        match polled {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(StepFailure::new(
                "StepPanicked",
                format!("the step body panicked: {}", panic_message(panic.as_ref())),
            ))),
        }
    }
}
