//! Scopes: what plugins make current around user code (see
//! [Scopes](super#scopes)), and how the driver runs code inside them.

use super::*;

/// The user code a [`Scope`] is asked for ([`InvocationHooks::scope`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum UserCode<'a> {
    /// The workflow's code, at the root and in its contexts (child
    /// contexts, map items, parallel branches), for the whole invocation.
    Workflow,
    /// A step attempt's body (or a wait-for-condition check) that just
    /// started.
    Attempt(&'a AttemptEvent<'a>),
    /// The code of a context (a child context, a map item, a parallel
    /// branch, a wait-for-callback) that starts running in this
    /// invocation: its scope is entered around each resumption of that
    /// code, inside the workflow's.
    Context(&'a FunctionEvent<'a>),
}

/// Something a plugin makes current around each poll of user code (see
/// [Scopes](super#scopes)), such as an OpenTelemetry context.
///
/// ```
/// use durable_yield::plugin::Scope;
///
/// thread_local! {
///     static CURRENT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
/// }
///
/// /// Sets `CURRENT` while the code runs, and restores what was there.
/// struct Tagged(u32);
/// impl Scope for Tagged {
///     fn run(&self, code: &mut dyn FnMut()) {
///         let outer = CURRENT.with(|c| c.replace(self.0));
///         code();
///         CURRENT.with(|c| c.set(outer));
///     }
/// }
///
/// let mut seen = 0;
/// Tagged(7).run(&mut || seen = CURRENT.with(|c| c.get()));
/// assert_eq!((seen, CURRENT.with(|c| c.get())), (7, 0));
/// ```
pub trait Scope: Send + Sync {
    /// Runs `code` (one poll of the user code) inside the scope, on this
    /// thread, exactly once. Code a scope does not run (or that it
    /// panicked before running) is run outside it, after it returns.
    fn run(&self, code: &mut dyn FnMut());
}

/// Runs `code` inside `scopes`, the first outermost (a scope that panics
/// is left out).
fn nest(scopes: &[Arc<dyn Scope>], code: &mut dyn FnMut()) {
    let Some((first, rest)) = scopes.split_first() else {
        return code();
    };
    let mut inner = || nest(rest, code);
    let _ = catch_unwind(AssertUnwindSafe(|| first.run(&mut inner)));
}

/// Runs `run` inside `scopes`, the first outermost; a panic of `run`
/// itself goes on up.
pub(crate) fn within<T>(scopes: &[Arc<dyn Scope>], run: impl FnOnce() -> T) -> T {
    if scopes.is_empty() {
        return run();
    }
    let mut run = Some(run);
    let mut out = None;
    let mut code = || {
        if let Some(run) = run.take() {
            out = Some(catch_unwind(AssertUnwindSafe(run)));
        }
    };
    nest(scopes, &mut code);
    // Not run by a scope: here.
    code();
    match out {
        Some(Ok(out)) => out,
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        None => unreachable!("the code runs at the latest just above"),
    }
}

/// The scopes of the contexts whose code runs in this invocation, by
/// their operation id (shared with the interpreter, which enters them).
pub(super) type ContextScopes = Arc<Mutex<HashMap<OperationId, Arc<[Arc<dyn Scope>]>>>>;

impl Active {
    /// Asks the plugins, in order, for the scopes of `code` (a panic
    /// counts as none).
    pub(crate) fn scopes(&mut self, code: UserCode<'_>) -> Vec<Arc<dyn Scope>> {
        self.hooks
            .iter_mut()
            .filter_map(|h| {
                catch_unwind(AssertUnwindSafe(|| h.hooks.scope(code)))
                    .ok()
                    .flatten()
            })
            .collect()
    }

    /// The code of a context starts running: keeps what the plugins make
    /// current around it.
    pub(crate) fn context_started(&mut self, event: &FunctionEvent<'_>) {
        let scopes = self.scopes(UserCode::Context(event));
        if !scopes.is_empty() {
            let mut contexts = self.contexts.lock().unwrap_or_else(|e| e.into_inner());
            contexts.insert(*event.id, scopes.into());
        }
    }

    /// The code of a context stopped running in this invocation.
    pub(crate) fn context_ended(&mut self, id: &OperationId) {
        let mut contexts = self.contexts.lock().unwrap_or_else(|e| e.into_inner());
        contexts.remove(id);
    }

    /// What the interpreter runs each resumption of a context's code in:
    /// the scopes the plugins gave it.
    pub(crate) fn context_scope(&self) -> durable_yield_interpreter::ContextScope {
        let contexts = self.contexts.clone();
        Box::new(move |id: &OperationId, code: &mut dyn FnMut()| {
            let scopes = contexts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(id)
                .cloned();
            match scopes {
                Some(scopes) => nest(&scopes, code),
                None => code(),
            }
        })
    }
}
