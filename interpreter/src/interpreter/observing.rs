//! What a driver that listens asks of the interpreter: lifecycle
//! observations, and running each context's code inside what the driver
//! makes current for it.

use super::*;

/// What [`Interpreter::scope_contexts`] takes: given a context's operation
/// id and a resumption of its code, runs that code (once, on this thread)
/// inside whatever the driver wants around it.
pub type ContextScope = Box<dyn FnMut(&OperationId, &mut dyn FnMut()) + Send>;

impl Interpreter {
    /// Turns on lifecycle observations (see [`Observation`]) for this
    /// invocation; `updated` are the operations the service changed since
    /// the last invocation (the envelope's `UpdatedOperationIds`). Call it
    /// before the first poll, and collect what was seen with
    /// [`Interpreter::take_observations`]. Without it the interpreter keeps
    /// no such bookkeeping.
    pub fn observe(&mut self, updated: impl IntoIterator<Item = OperationId>) {
        self.observer = Some(Box::new(Observer::new(updated)));
    }

    /// Hands each resumption of a context's code (a child context, a map
    /// item, a parallel branch, a wait-for-callback; not the workflow's
    /// root) to `scope`, with the context's operation id, to run inside
    /// what the driver makes current for it (such as its tracing span),
    /// on this thread, inside [`Interpreter::poll`]. `scope` must run the
    /// code it is given exactly once; code it does not run is run after
    /// it returns.
    pub fn scope_contexts(&mut self, scope: ContextScope) {
        self.context_scope = Some(scope);
    }

    /// What was observed since the last call, in order (empty unless
    /// [`Interpreter::observe`] was called). A driver takes them after each
    /// [`Interpreter::poll`], before carrying out the action it returned, so
    /// that an operation's start comes before its attempts and its end
    /// before its checkpoint is sent.
    pub fn take_observations(&mut self) -> Vec<Observation> {
        match self.observer.as_deref_mut() {
            Some(observer) => observer.take(),
            None => Vec::new(),
        }
    }
}
