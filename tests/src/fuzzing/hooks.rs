//! A plugin that checks the lifecycle hooks' promises.

use super::*;

/// A lifecycle plugin that checks the hooks' promises and writes down
/// every broken one: each invocation's start is followed by exactly one end;
/// within an invocation an operation starts at most once and ends at most
/// once; an attempt ends only after it started.
#[derive(Clone, Default)]
pub struct HookChecker {
    /// The broken promises, described.
    pub broken: Arc<Mutex<Vec<String>>>,
    /// Invocations started and ended.
    pub invocations: Arc<Mutex<(u32, u32)>>,
}

pub(super) struct HookCheck {
    checker: HookChecker,
    started: std::collections::HashSet<String>,
    ended: std::collections::HashSet<String>,
    attempts: std::collections::HashSet<(String, u32)>,
    /// Contexts whose code ended in this invocation: their scope is never
    /// entered again.
    functions_ended: Arc<Mutex<std::collections::HashSet<String>>>,
    over: bool,
}

thread_local! {
    /// The scopes entered on this thread, innermost last.
    static ENTERED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scope that checks how it is entered and left: in LIFO order; the
/// workflow's on its own, a context's inside the workflow's (its code runs
/// inside the interpreter's poll) and never after its code ended, an
/// attempt's on its own (a step body is polled outside the workflow's
/// code).
pub(super) struct CheckedScope {
    label: String,
    context: Option<String>,
    checker: HookChecker,
    functions_ended: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl HookChecker {
    /// Notes a broken promise.
    fn broke(&self, what: String) {
        self.broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }
}

impl CheckedScope {
    fn broken(&self, what: String) {
        self.checker.broke(what);
    }
}

impl durable_yield::plugin::Scope for CheckedScope {
    fn run(&self, code: &mut dyn FnMut()) {
        let outer = ENTERED.with(|e| e.borrow().clone());
        let expected: &[&str] = if self.context.is_some() {
            &["workflow"]
        } else {
            &[]
        };
        if outer != expected {
            self.broken(format!("{} entered inside {outer:?}", self.label));
        }
        if let Some(id) = &self.context {
            let ended = self
                .functions_ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(id);
            if ended {
                self.broken(format!("{} entered after its code ended", self.label));
            }
        }
        ENTERED.with(|e| e.borrow_mut().push(self.label.clone()));
        code();
        let top = ENTERED.with(|e| e.borrow_mut().pop());
        if top.as_deref() != Some(self.label.as_str()) {
            self.broken(format!("{} left while {top:?} was innermost", self.label));
        }
    }
}

impl HookCheck {
    fn broken(&self, what: String) {
        self.checker.broke(what);
    }
}

impl durable_yield::plugin::Plugin for HookChecker {
    fn invocation(
        &self,
        _: &durable_yield::plugin::InvocationStart<'_>,
    ) -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> {
        self.invocations.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
        Ok(Box::new(HookCheck {
            checker: self.clone(),
            started: Default::default(),
            ended: Default::default(),
            attempts: Default::default(),
            functions_ended: Default::default(),
            over: false,
        }))
    }
}

impl durable_yield::plugin::InvocationHooks for HookCheck {
    fn scope(
        &mut self,
        code: durable_yield::plugin::UserCode<'_>,
    ) -> Option<Arc<dyn durable_yield::plugin::Scope>> {
        use durable_yield::plugin::UserCode;
        let (label, context) = match code {
            UserCode::Workflow => ("workflow".to_owned(), None),
            UserCode::Context(e) => (format!("context {:?}", e.name), Some(e.id.to_string())),
            UserCode::Attempt(e) => (format!("attempt {} of {:?}", e.attempt, e.name), None),
            _ => return None,
        };
        Some(Arc::new(CheckedScope {
            label,
            context,
            checker: self.checker.clone(),
            functions_ended: self.functions_ended.clone(),
        }))
    }
    fn on_function_end(
        &mut self,
        e: &durable_yield::plugin::FunctionEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        if e.op_type == OperationType::Context {
            self.functions_ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(e.id.to_string());
        }
        Ok(())
    }
    fn on_operation_start(
        &mut self,
        e: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        if !self.started.insert(e.id.to_string()) {
            self.broken(format!("{:?} started twice in one invocation", e.name));
        }
        if e.status.is_terminal() {
            self.broken(format!("{:?} started with status {}", e.name, e.status));
        }
        Ok(())
    }
    fn on_operation_end(
        &mut self,
        e: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        let id = e.id.to_string();
        if !self.ended.insert(id.clone()) {
            self.broken(format!("{:?} ended twice in one invocation", e.name));
        }
        if !e.replayed && !self.started.contains(&id) {
            self.broken(format!("{:?} ended live without starting", e.name));
        }
        if !e.status.is_terminal() {
            self.broken(format!("{:?} ended with status {}", e.name, e.status));
        }
        Ok(())
    }
    fn on_attempt_start(
        &mut self,
        e: &durable_yield::plugin::AttemptEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.attempts.insert((e.id.to_string(), e.attempt));
        Ok(())
    }
    fn on_attempt_end(
        &mut self,
        e: &durable_yield::plugin::AttemptEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        if !self.attempts.remove(&(e.id.to_string(), e.attempt)) {
            self.broken(format!(
                "attempt {} of {:?} ended without starting",
                e.attempt, e.name
            ));
        }
        Ok(())
    }
    fn on_invocation_end(
        &mut self,
        _: &durable_yield::plugin::InvocationEnd<'_>,
    ) -> durable_yield::plugin::HookResult {
        if std::mem::replace(&mut self.over, true) {
            self.broken("an invocation ended twice".into());
        }
        let entered = ENTERED.with(|e| std::mem::take(&mut *e.borrow_mut()));
        if !entered.is_empty() {
            self.broken(format!("scopes still entered at the end: {entered:?}"));
        }
        self.checker
            .invocations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1 += 1;
        Ok(())
    }
}
