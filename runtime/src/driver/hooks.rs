//! What plugins and `tracing` hear: operation changes as the service
//! recorded them, function and attempt events around user code, and the
//! trace header a chained invoke carries.

use super::*;
use durable_yield_interpreter::model::SharedStr;

/// The operations of a checkpoint answer, kept for the plugins'
/// operation-change hook (none without plugins, or without operations).
pub(super) fn changes_for(hooks: &Active, delta: &Delta) -> Option<Vec<Operation>> {
    (!hooks.is_empty() && !delta.is_empty()).then(|| delta.iter().cloned().collect())
}

/// Merges a checkpoint answer that no action waits for (held updates
/// flushed, or sent as the invocation ends), then tells the plugins what
/// ended and changed.
pub(super) fn absorb<S: DurableService + ?Sized>(
    delta: Delta,
    interpreter: &mut Interpreter,
    hooks: &mut Active,
    unmerged: &mut Vec<Observation>,
    arn: &str,
    service: &S,
) {
    let updated = changes_for(hooks, &delta);
    let last = delta.merge_earlier(interpreter);
    interpreter.merge_operations(last);
    report_ended(interpreter, hooks, unmerged, service);
    changed(hooks, interpreter, updated, arn, service);
}

/// Lets the plugins give each new chained invoke's START the caller's
/// trace header.
pub(super) fn propagate_trace(hooks: &mut Active, arn: &str, updates: &mut [OperationUpdate]) {
    for update in updates {
        if update.op_type != OperationType::ChainedInvoke || update.action != OperationAction::Start
        {
            continue;
        }
        let Some(options) = update.chained_invoke_options.as_deref_mut() else {
            continue;
        };
        if options.x_amzn_trace_id.is_some() {
            continue;
        }
        let invoke = ChainedInvokeStart {
            execution_arn: arn,
            id: &update.id,
            parent_id: update.parent_id.as_ref(),
            function_name: &options.function_name,
        };
        options.x_amzn_trace_id = hooks.trace_header(&invoke);
    }
}

/// Calls the plugins' operation-change hook once the answer's operations
/// were merged.
pub(super) fn changed<S: DurableService + ?Sized>(
    hooks: &mut Active,
    interpreter: &Interpreter,
    updated: Option<Vec<Operation>>,
    arn: &str,
    service: &S,
) {
    if let Some(updated) = updated {
        let now = Now::of(service);
        let change = OperationChange {
            execution_arn: arn,
            updated: &updated,
            operations: interpreter.history().operations(),
            at: now.at,
            time: now.time,
        };
        hooks.each("on_operation_change", |h| h.on_operation_change(&change));
    }
}

/// Hands what the interpreter observed to the plugins (and to `tracing`
/// at debug level). The end of an operation decided here waits in
/// `unmerged` until the service's answer to it is merged
/// ([`report_ended`]).
pub(super) fn observed<S: DurableService + ?Sized>(
    interpreter: &mut Interpreter,
    hooks: &mut Active,
    unmerged: &mut Vec<Observation>,
    service: &S,
) {
    let observations = interpreter.take_observations();
    if observations.is_empty() {
        return;
    }
    let now = Now::of(service);
    for observation in observations {
        if let Observation::Ended {
            op,
            replayed: false,
            checkpointed: true,
            ..
        } = &observation
        {
            let merged = interpreter
                .history()
                .get(&op.id)
                .is_some_and(|r| r.status.is_terminal());
            if !merged {
                unmerged.push(observation);
                continue;
            }
        }
        report(interpreter, hooks, &observation, now);
    }
}

/// Reports the ends held in `unmerged`, now that their answer is merged.
pub(super) fn report_ended<S: DurableService + ?Sized>(
    interpreter: &Interpreter,
    hooks: &mut Active,
    unmerged: &mut Vec<Observation>,
    service: &S,
) {
    if unmerged.is_empty() {
        return;
    }
    let now = Now::of(service);
    for observation in unmerged.drain(..) {
        report(interpreter, hooks, &observation, now);
    }
}

/// Hands one observation to the plugins and to `tracing`.
pub(super) fn report(
    interpreter: &Interpreter,
    hooks: &mut Active,
    observation: &Observation,
    now: Now,
) {
    let (op, replayed, status, error, result, end) = match observation {
        Observation::FunctionStarted {
            op,
            replay_children,
            replayed,
        } => {
            let event = function_event(op, *replay_children, *replayed, None, None, now);
            hooks.each("on_function_start", |h| h.on_function_start(&event));
            hooks.context_started(&event);
            return;
        }
        Observation::FunctionEnded { op, outcome, error } => {
            let event = function_event(op, false, false, Some(*outcome), error.as_deref(), now);
            hooks.each("on_function_end", |h| h.on_function_end(&event));
            hooks.context_ended(&op.id);
            return;
        }
        Observation::Started {
            op,
            replayed,
            status,
        } => (op, *replayed, *status, None, None, false),
        Observation::Ended {
            op,
            replayed,
            status,
            error,
            result,
            ..
        } => (
            op,
            *replayed,
            *status,
            error.as_deref(),
            result.as_ref(),
            true,
        ),
        _ => return,
    };
    let record = interpreter.history().get(&op.id);
    // A step's attempt: the one that ended (a terminal record counts
    // it), or the one about to run.
    let recorded_attempts = record
        .and_then(|r| r.step_details.as_ref())
        .and_then(|d| d.attempt);
    let ended_on_record = record.is_some_and(|r| r.status.is_terminal());
    let attempt = (op.op_type == OperationType::Step).then(|| {
        if end && ended_on_record {
            recorded_attempts.unwrap_or(1)
        } else {
            recorded_attempts.unwrap_or(0) + 1
        }
    });
    let event = OperationEvent {
        id: &op.id,
        parent_id: op.parent.as_ref(),
        name: op.name.as_deref(),
        op_type: op.op_type,
        sub_type: op.sub_type.as_deref(),
        replayed,
        status,
        error,
        result,
        attempt,
        record,
        at: now.at,
        time: now.time,
    };
    tracing::debug!(
        target: OPERATION_TARGET,
        operation_id = %op.id,
        parent_id = op.parent.as_ref().map(tracing::field::display),
        name = op.name.as_deref(),
        r#type = %op.op_type,
        subtype = op.sub_type.as_deref(),
        replayed,
        status = %status,
        error_type = error.and_then(|e| e.error_type.as_deref()),
        "{}",
        if end { "operation ended" } else { "operation started" }
    );
    if end {
        hooks.each("on_operation_end", |h| h.on_operation_end(&event));
    } else {
        hooks.each("on_operation_start", |h| h.on_operation_start(&event));
    }
}

/// The function event of a context's code.
pub(super) fn function_event<'a>(
    op: &'a OpRef,
    replay_children: bool,
    replayed: bool,
    outcome: Option<FunctionOutcome>,
    error: Option<&'a ErrorObject>,
    now: Now,
) -> FunctionEvent<'a> {
    FunctionEvent {
        id: &op.id,
        parent_id: op.parent.as_ref(),
        name: op.name.as_deref(),
        op_type: op.op_type,
        sub_type: op.sub_type.as_deref(),
        attempt: None,
        replay_children,
        replayed,
        outcome,
        error,
        at: now.at,
        time: now.time,
    }
}

/// A step attempt handed to the plugins.
pub(super) struct Attempt {
    pub(super) id: OperationId,
    pub(super) parent_id: Option<OperationId>,
    pub(super) name: Option<String>,
    pub(super) sub_type: SharedStr,
    pub(super) attempt: u32,
}

impl Attempt {
    pub(super) fn of(run: &StepRun) -> Self {
        Attempt {
            id: *run.context.operation_id(),
            parent_id: run.parent_id,
            name: run.context.name().map(str::to_owned),
            sub_type: run.sub_type.clone(),
            attempt: run.context.attempt(),
        }
    }

    pub(super) fn event(&self, now: Now) -> AttemptEvent<'_> {
        AttemptEvent {
            id: &self.id,
            parent_id: self.parent_id.as_ref(),
            name: self.name.as_deref(),
            sub_type: &self.sub_type,
            attempt: self.attempt,
            outcome: None,
            error: None,
            at: now.at,
            time: now.time,
        }
    }

    pub(super) fn function(&self, now: Now) -> FunctionEvent<'_> {
        FunctionEvent {
            id: &self.id,
            parent_id: self.parent_id.as_ref(),
            name: self.name.as_deref(),
            op_type: OperationType::Step,
            sub_type: Some(&self.sub_type),
            attempt: Some(self.attempt),
            replay_children: false,
            replayed: false,
            outcome: None,
            error: None,
            at: now.at,
            time: now.time,
        }
    }

    /// Reports the attempt's start; what the plugins make current
    /// around its body.
    pub(super) fn started(&self, hooks: &mut Active, now: Now) -> Vec<Arc<dyn Scope>> {
        let event = self.event(now);
        hooks.each("on_attempt_start", |h| h.on_attempt_start(&event));
        let function = self.function(now);
        hooks.each("on_function_start", |h| h.on_function_start(&function));
        hooks.scopes(UserCode::Attempt(&event))
    }

    pub(super) fn ended(&self, hooks: &mut Active, outcome: &StepOutcome, now: Now) {
        let mut event = self.event(now);
        match outcome {
            Ok(_) => event.outcome = Some(AttemptOutcome::Succeeded),
            Err(failure) => {
                event.outcome = Some(AttemptOutcome::Failed);
                event.error = Some(failure.error_object());
            }
        }
        let mut function = self.function(now);
        function.outcome = Some(match event.outcome {
            Some(AttemptOutcome::Succeeded) => FunctionOutcome::Succeeded,
            _ => FunctionOutcome::Failed,
        });
        function.error = event.error;
        hooks.each("on_function_end", |h| h.on_function_end(&function));
        hooks.each("on_attempt_end", |h| h.on_attempt_end(&event));
    }
}
