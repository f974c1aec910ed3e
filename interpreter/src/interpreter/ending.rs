//! How an invocation ends: the outcome handed out last, and the failures
//! that end it at once (the execution's, or, transient, only the
//! invocation's, after the checkpoints it made).

use super::*;

impl Interpreter {
    /// Ends the invocation with `outcome`: contexts still open end
    /// unfinished, and nothing more is handed out.
    pub(super) fn finish(&mut self, outcome: Outcome) -> Action {
        if let Some(observer) = self.observer.as_deref_mut() {
            // Contexts whose code waits: it stops here, unfinished.
            for c in &mut self.contexts {
                if std::mem::take(&mut c.function_open) {
                    if let Some(op) = &c.op {
                        observer.function_ended(op, FunctionOutcome::Incomplete, None);
                    }
                }
            }
        }
        self.ending = Some(Ending::Finished);
        self.ready.clear();
        self.outbox.clear();
        // Dropping the coroutines ends every context.
        self.contexts.clear();
        self.free.clear();
        self.batches.clear();
        Action::Finish(outcome)
    }

    /// Ends the execution (or, for a transient error, the invocation) with
    /// `error`.
    pub(super) fn fatal(&mut self, error: ExecutionError) {
        self.fatal_boxed(Box::new(error))
    }

    pub(super) fn fatal_boxed(&mut self, error: Box<ExecutionError>) {
        if !matches!(self.ending, Some(Ending::Finished | Ending::Fatal(_))) {
            // Nothing else is handed out: the execution fails at once. An
            // invocation that fails for a while (a transient failure)
            // keeps the checkpoints it made: they go out before it ends.
            if error.is_transient() {
                self.outbox
                    .retain(|action| matches!(action, Action::Checkpoint { .. }));
            } else {
                self.outbox.clear();
            }
            self.ending = Some(Ending::Fatal(error));
            self.ready.clear();
        }
    }

    /// The driver broke the protocol: the execution fails, unless it
    /// already ended.
    pub(super) fn misuse(&mut self, what: &str) {
        if self.ending.is_none() {
            self.fatal(ExecutionError::Internal(what.to_owned()));
        }
    }
}
