//! Running one step body: in its `durable_operation` span, with a panic
//! turned into a failed attempt.

use super::*;
use durable_yield_interpreter::__private::panic_message;

/// Runs one step body in its `durable_operation` span, turning a panic
/// into a failed attempt.
pub(super) fn run_step(run: StepRun) -> impl Future<Output = (StepHandle, StepOutcome)> + Send {
    let ctx = &run.context;
    let span = tracing::info_span!(
        "durable_operation",
        operation_id = %ctx.operation_id(),
        parent_id = tracing::field::Empty,
        name = ctx.name().unwrap_or(""),
        r#type = "STEP",
        subtype = run.sub_type,
        attempt = ctx.attempt(),
    );
    if let Some(parent) = &run.parent_id {
        span.record("parent_id", tracing::field::display(parent));
    }
    let handle = run.handle;
    CatchUnwind(run.into_body())
        .instrument(span)
        .map(move |outcome| (handle, outcome))
}

/// Turns a panic in a step body into a failed attempt.
pub(super) struct CatchUnwind<F>(F);

impl<F: Future<Output = StepOutcome> + Unpin> Future for CatchUnwind<F> {
    type Output = StepOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StepOutcome> {
        let inner = Pin::new(&mut self.0);
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(StepFailure::new(
                "StepPanicked",
                format!("the step body panicked: {}", panic_message(panic.as_ref())),
            ))),
        }
    }
}
