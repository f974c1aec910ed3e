//! A local run's timeline in the service's history shape
//! (`GetDurableExecutionHistory` events), as AWS's conformance
//! requirements say the service writes them.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{Timeline, TimelineEvent};
use crate::history::{ExecutionHistory, HistoryEvent};
use crate::model::{
    ErrorObject, Millis, Operation, OperationAction, OperationId, OperationStatus, OperationType,
    Payload,
};

/// The event-type prefix of an operation type.
fn kind(op_type: OperationType) -> Option<&'static str> {
    Some(match op_type {
        OperationType::Step => "Step",
        OperationType::Wait => "Wait",
        OperationType::Context => "Context",
        OperationType::Callback => "Callback",
        OperationType::ChainedInvoke => "ChainedInvoke",
        _ => return None,
    })
}

/// The event-type ending of a terminal status.
fn ending(status: OperationStatus) -> Option<&'static str> {
    Some(match status {
        OperationStatus::Succeeded => "Succeeded",
        OperationStatus::Failed => "Failed",
        OperationStatus::TimedOut => "TimedOut",
        OperationStatus::Stopped => "Stopped",
        OperationStatus::Cancelled => "Cancelled",
        _ => return None,
    })
}

fn seconds(at: Millis) -> f64 {
    at as f64 / 1000.0
}

fn error_json(error: &ErrorObject) -> Value {
    json!({"Payload": error, "Truncated": false})
}

impl Timeline {
    /// The run as an execution history in the shape
    /// `GetDurableExecutionHistory` returns (with execution data), so that
    /// the same tools read local runs and executions on AWS (see
    /// [`crate::history`]). `operations` are the run's operations (for
    /// subtypes and parents), `arn` its ARN.
    pub fn to_history(&self, arn: &str, operations: &[Operation]) -> ExecutionHistory {
        self.to_history_with(arn, operations, &[])
    }

    /// [`Timeline::to_history`], with the ARNs of the executions that
    /// `invoked` (the run's chained invokes of durable functions) started,
    /// which their `ChainedInvokeStarted` events name.
    pub(crate) fn to_history_with(
        &self,
        arn: &str,
        operations: &[Operation],
        invoked: &[crate::local::InvokedFunction],
    ) -> ExecutionHistory {
        let ops: HashMap<OperationId, &Operation> = operations.iter().map(|o| (o.id, o)).collect();
        let execution = operations
            .iter()
            .find(|o| o.op_type == OperationType::Execution);
        let mut events: Vec<HistoryEvent> = Vec::new();
        let mut push = |event_type: String,
                        at: Millis,
                        op: Option<(&OperationId, Option<&str>)>,
                        details: Option<Value>| {
            let record = op.and_then(|(id, _)| ops.get(id));
            let mut map = Map::new();
            if let Some(details) = details {
                map.insert(format!("{event_type}Details"), details);
            }
            events.push(HistoryEvent {
                event_id: events.len() as u64 + 1,
                event_timestamp: seconds(at),
                id: op.map(|(id, _)| id.to_string()),
                name: op
                    .and_then(|(_, name)| name.map(str::to_owned))
                    .or_else(|| record.and_then(|r| r.name.as_deref().map(str::to_owned))),
                parent_id: record.and_then(|r| r.parent_id.map(|p| p.to_string())),
                sub_type: record.and_then(|r| r.sub_type.as_deref().map(str::to_owned)),
                event_type,
                details: map,
            });
        };
        let input = execution
            .and_then(|e| e.execution_details.as_ref())
            .and_then(|d| d.input_payload.as_ref())
            .map(|p| p.as_str().to_owned());
        push(
            "ExecutionStarted".into(),
            self.start,
            execution.map(|e| (&e.id, None)),
            Some(json!({"Input": {"Payload": input, "Truncated": false}})),
        );
        let mut invoked_at = self.start;
        // The attempts of each step that ended so far (the service counts
        // them: each event carries the attempt it ended), and the length of
        // each wait (its end repeats it).
        let mut attempts: HashMap<OperationId, u32> = HashMap::new();
        let mut waits: HashMap<OperationId, u32> = HashMap::new();
        for event in &self.events {
            match event {
                TimelineEvent::Invoked { at, .. } => invoked_at = *at,
                TimelineEvent::Applied {
                    at,
                    id,
                    op_type,
                    name,
                    action,
                    payload,
                    wait_seconds,
                    retry_seconds,
                    error,
                    timeout_seconds,
                    heartbeat_timeout_seconds,
                    chained_invoke_options,
                    ..
                } => {
                    let Some(kind) = kind(*op_type) else { continue };
                    let op = Some((id, name.as_deref()));
                    let is_step = *op_type == OperationType::Step;
                    // The attempt this update ends (steps).
                    let mut ended_attempt = || {
                        let ended = attempts.entry(*id).or_insert(0);
                        *ended += 1;
                        *ended
                    };
                    match action {
                        OperationAction::Start => {
                            let details = match wait_seconds {
                                Some(w) if *op_type == OperationType::Wait => {
                                    waits.insert(*id, *w);
                                    json!({
                                        "Duration": w,
                                        "ScheduledEndTimestamp": seconds(*at) + f64::from(*w),
                                    })
                                }
                                _ if *op_type == OperationType::ChainedInvoke => {
                                    let options = chained_invoke_options.as_deref();
                                    let mut details = json!({
                                        "FunctionName": options.map(|o| o.function_name.as_str()),
                                        "Input": {
                                            "Payload": payload.as_ref().map(Payload::as_str),
                                            "Truncated": false,
                                        },
                                        "ExecutedVersion": "$LATEST",
                                    });
                                    if let Some(tenant) =
                                        options.and_then(|o| o.tenant_id.as_deref())
                                    {
                                        details["TenantId"] = json!(tenant);
                                    }
                                    let child = invoked
                                        .iter()
                                        .find(|f| f.operation_id == *id)
                                        .and_then(|f| f.run.as_ref());
                                    if let Some(child) = child {
                                        details["DurableExecutionArn"] = json!(child.arn);
                                    }
                                    details
                                }
                                _ if *op_type == OperationType::Callback => {
                                    let mut details = json!({
                                        "CallbackId": ops
                                            .get(id)
                                            .and_then(|o| o.callback_details.as_ref())
                                            .and_then(|d| d.callback_id.clone()),
                                    });
                                    for (key, seconds) in [
                                        ("Timeout", timeout_seconds),
                                        ("HeartbeatTimeout", heartbeat_timeout_seconds),
                                    ] {
                                        if let Some(s) = seconds.filter(|s| *s > 0) {
                                            details[key] = json!(s);
                                        }
                                    }
                                    details
                                }
                                _ => json!({}),
                            };
                            push(format!("{kind}Started"), *at, op, Some(details));
                        }
                        OperationAction::Retry => {
                            let attempt = ended_attempt();
                            let mut details = json!({"RetryDetails": {
                                "CurrentAttempt": attempt,
                                "NextAttemptDelaySeconds": retry_seconds.unwrap_or(0),
                            }});
                            let event_type = match error {
                                Some(e) => {
                                    details["Error"] = error_json(e);
                                    "StepFailed"
                                }
                                // A wait-for-condition's check that found
                                // it unmet: the state it returned.
                                None => {
                                    details["Result"] = json!({
                                        "Payload": payload.as_ref().map(Payload::as_str),
                                        "Truncated": false,
                                    });
                                    "StepSucceeded"
                                }
                            };
                            push(event_type.into(), *at, op, Some(details));
                        }
                        OperationAction::Succeed => {
                            let mut details = json!({"Result": {
                                "Payload": payload.as_ref().map(Payload::as_str),
                                "Truncated": false,
                            }});
                            if is_step {
                                details["RetryDetails"] =
                                    json!({"CurrentAttempt": ended_attempt()});
                            }
                            push(format!("{kind}Succeeded"), *at, op, Some(details));
                        }
                        OperationAction::Fail => {
                            let mut details =
                                error.as_deref().map(|e| json!({"Error": error_json(e)}));
                            if is_step {
                                details.get_or_insert_with(|| json!({}))["RetryDetails"] =
                                    json!({"CurrentAttempt": ended_attempt()});
                            }
                            push(format!("{kind}Failed"), *at, op, details);
                        }
                        OperationAction::Cancel => {
                            push(format!("{kind}Cancelled"), *at, op, Some(json!({})));
                        }
                        _ => {}
                    }
                }
                TimelineEvent::TimerFired {
                    at,
                    id,
                    op_type: OperationType::Wait,
                    name,
                    status,
                } => {
                    if let Some(ending) = ending(*status) {
                        let details = match waits.get(id) {
                            Some(w) => json!({"Duration": w}),
                            None => json!({}),
                        };
                        push(
                            format!("Wait{ending}"),
                            *at,
                            Some((id, name.as_deref())),
                            Some(details),
                        );
                    }
                }
                TimelineEvent::Answered {
                    at,
                    id,
                    op_type,
                    name,
                    status,
                    ..
                } => {
                    let (Some(kind), Some(ending)) = (kind(*op_type), ending(*status)) else {
                        continue;
                    };
                    let record = ops.get(id);
                    let (result, error) = match op_type {
                        OperationType::Callback => {
                            let d = record.and_then(|o| o.callback_details.as_ref());
                            (
                                d.and_then(|d| d.result.clone()),
                                d.and_then(|d| d.error.clone()),
                            )
                        }
                        _ => {
                            let d = record.and_then(|o| o.chained_invoke_details.as_ref());
                            (
                                d.and_then(|d| d.result.clone()),
                                d.and_then(|d| d.error.clone()),
                            )
                        }
                    };
                    let details = match (ending, result, error) {
                        ("Succeeded", Some(r), _) => {
                            json!({"Result": {"Payload": r.as_str(), "Truncated": false}})
                        }
                        (_, _, Some(e)) => json!({"Error": error_json(&e)}),
                        _ => json!({}),
                    };
                    push(
                        format!("{kind}{ending}"),
                        *at,
                        Some((id, name.as_deref())),
                        Some(details),
                    );
                }
                TimelineEvent::Returned { invocation, at, .. }
                | TimelineEvent::InvocationFailed { invocation, at, .. } => {
                    let mut details = json!({
                        "StartTimestamp": seconds(invoked_at),
                        "EndTimestamp": seconds(*at),
                        "RequestId": format!("local-invocation-{invocation}"),
                    });
                    if let TimelineEvent::InvocationFailed {
                        error, error_type, ..
                    } = event
                    {
                        details["Error"] = json!({"Payload": {
                            "ErrorType": error_type,
                            "ErrorMessage": error,
                        }});
                    }
                    push("InvocationCompleted".into(), *at, None, Some(details));
                }
                TimelineEvent::Closed {
                    at,
                    status,
                    result,
                    error,
                    ..
                } => {
                    let op = execution.map(|e| (&e.id, None));
                    match (result, error) {
                        (_, Some(e)) if *status == crate::local::ExecutionStatus::TimedOut => push(
                            "ExecutionTimedOut".into(),
                            *at,
                            op,
                            Some(json!({"Error": error_json(e)})),
                        ),
                        (_, Some(e)) => push(
                            "ExecutionFailed".into(),
                            *at,
                            op,
                            Some(json!({"Error": error_json(e)})),
                        ),
                        (result, None) => push(
                            "ExecutionSucceeded".into(),
                            *at,
                            op,
                            Some(json!({"Result": {
                                "Payload": result.as_ref().map(Payload::as_str),
                                "Truncated": false,
                            }})),
                        ),
                    }
                }
                _ => {}
            }
        }
        ExecutionHistory {
            durable_execution_arn: Some(arn.to_owned()),
            events,
        }
    }
}
