//! The service's rules for one operation update, as pure functions: what
//! a field must hold, and how an update moves an operation from one status
//! to the next (PROTOCOL.md §4). The local service applies them to whole
//! batches (`service.rs`); the table below tests them one by one.

use std::sync::Arc;

use crate::engine::limits::MAX_WAIT_SECONDS;
use crate::model::{
    CallbackDetails, ContextDetails, Millis, Operation, OperationAction, OperationStatus,
    OperationType, OperationUpdate, WaitDetails,
};

use super::MAX_PAYLOAD_CHARS;

/// `[A-Za-z0-9_-]`: the characters of ids and subtypes.
#[inline]
pub(super) fn id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Checks the fields of an update for an operation the service does not
/// know yet (a known operation's fields must equal the stored ones).
#[inline]
pub(super) fn check_new_fields(u: &OperationUpdate) -> Result<(), String> {
    // Branch-free over the bytes: ids are long and almost always valid.
    if !u.id.as_bytes().iter().fold(true, |ok, &b| ok & id_char(b)) {
        return Err(format!(
            "operation id {:?} must match [a-zA-Z0-9-_]{{1,64}}",
            u.id.as_str()
        ));
    }
    let id = &u.id;
    if let Some(name) = &u.name {
        if name.is_empty() || name.len() > 256 || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(format!(
                "name {name:?} of operation {id} must be 1 to 256 printable ASCII characters"
            ));
        }
    }
    if let Some(sub) = &u.sub_type {
        if sub.is_empty() || sub.len() > 32 || !sub.bytes().all(id_char) {
            return Err(format!(
                "subtype {sub:?} of operation {id} must match [A-Za-z0-9-_]{{1,32}}"
            ));
        }
    }
    Ok(())
}

#[inline]
pub(super) fn check_payload(u: &OperationUpdate) -> Result<(), String> {
    let Some(p) = &u.payload else { return Ok(()) };
    // Bytes bound characters from above: count only when it may matter.
    if p.len() <= MAX_PAYLOAD_CHARS {
        return Ok(());
    }
    let chars = p.as_str().chars().count();
    if chars <= MAX_PAYLOAD_CHARS {
        return Ok(());
    }
    Err(format!(
        "payload of operation {} is {chars} characters, over the limit of {MAX_PAYLOAD_CHARS}",
        u.id
    ))
}

/// The service's transition rules (PROTOCOL.md §4).
#[inline]
pub(super) fn transition(
    current: Option<Operation>,
    u: &OperationUpdate,
    now: Millis,
) -> Result<Operation, String> {
    use OperationAction as A;
    use OperationStatus as S;
    use OperationType as T;
    let status = current.as_ref().map(|o| o.status);
    let mut op = current.unwrap_or_else(|| {
        let mut op = Operation::new(u.id, u.op_type, S::Started);
        op.parent_id = u.parent_id;
        op.name = u.name.clone();
        op.sub_type = u.sub_type.clone();
        op.start_timestamp = Some(now);
        op
    });
    let invalid = || {
        let from = status.map_or("absent".to_owned(), |s| s.to_string());
        Err(format!(
            "Invalid current {} state to {}: operation {} is {from}",
            u.op_type,
            u.action.to_string().to_lowercase(),
            u.id
        ))
    };
    match (u.op_type, u.action, status) {
        (T::Step, A::Start, None | Some(S::Ready)) => {
            op.status = S::Started;
            let d = op.step_details.get_or_insert_with(Default::default);
            if d.attempt.is_none() {
                Arc::make_mut(d).attempt = Some(0);
            }
        }
        (T::Step, A::Retry, Some(S::Started | S::Ready)) => {
            let delay = u
                .step_options
                .as_ref()
                .and_then(|o| o.next_attempt_delay_seconds)
                .filter(|d| (1..=MAX_WAIT_SECONDS).contains(&u64::from(*d)))
                .ok_or_else(|| format!("RETRY of {} needs StepOptions.NextAttemptDelaySeconds from 1 to {MAX_WAIT_SECONDS}", u.id))?;
            if u.error.is_some() == u.payload.is_some() {
                return Err(format!(
                    "RETRY of {} needs exactly one of Error and Payload",
                    u.id
                ));
            }
            op.status = S::Pending;
            let d = Arc::make_mut(op.step_details.get_or_insert_with(Default::default));
            d.attempt = Some(d.attempt.unwrap_or(0) + 1);
            d.next_attempt_timestamp = Some(now.saturating_add(i64::from(delay) * 1000));
            if u.error.is_some() {
                d.error = u.error.as_deref().cloned();
            }
            if u.payload.is_some() {
                d.result = u.payload.clone();
            }
        }
        (T::Step, A::Succeed | A::Fail, None | Some(S::Started | S::Ready)) => {
            let d = Arc::make_mut(op.step_details.get_or_insert_with(Default::default));
            d.attempt = Some(d.attempt.unwrap_or(0) + 1);
            if u.action == A::Succeed {
                if u.error.is_some() {
                    return Err(format!("SUCCEED of {} must not carry an Error", u.id));
                }
                op.status = S::Succeeded;
                d.result = u.payload.clone();
            } else {
                if u.payload.is_some() {
                    return Err(format!("FAIL of {} must not carry a Payload", u.id));
                }
                op.status = S::Failed;
                d.error = u.error.as_deref().cloned();
            }
            op.end_timestamp = Some(now);
        }
        (T::Wait, A::Start, None) => {
            let seconds = u
                .wait_options
                .as_ref()
                .map(|o| o.wait_seconds)
                .filter(|s| (1..=MAX_WAIT_SECONDS).contains(&u64::from(*s)))
                .ok_or_else(|| format!("START of wait {} needs WaitOptions.WaitSeconds from 1 to {MAX_WAIT_SECONDS}", u.id))?;
            op.status = S::Started;
            op.wait_details = Some(Arc::new(fields!(WaitDetails {
                scheduled_end_timestamp: Some(now.saturating_add(i64::from(seconds) * 1000)),
            })));
        }
        (T::Wait, A::Cancel, Some(S::Started)) => {
            op.status = S::Cancelled;
            op.end_timestamp = Some(now);
        }
        (T::Context, A::Start, None) => op.status = S::Started,
        (T::Context, A::Succeed | A::Fail, None | Some(S::Started)) => {
            op.status = if u.action == A::Succeed {
                S::Succeeded
            } else {
                S::Failed
            };
            op.context_details = Some(Arc::new(fields!(ContextDetails {
                replay_children: u.context_options.as_ref().and_then(|o| o.replay_children),
                result: u.payload.clone(),
                error: u.error.as_deref().cloned(),
            })));
            op.end_timestamp = Some(now);
        }
        (T::Callback, A::Start, None) => {
            let o = u.callback_options.clone().unwrap_or_default();
            const MAX: u32 = 99_999_999;
            if o.timeout_seconds > MAX || o.heartbeat_timeout_seconds > MAX {
                return Err(format!(
                    "CallbackOptions of {} must be from 0 to {MAX} seconds",
                    u.id
                ));
            }
            op.status = S::Started;
            op.callback_details = Some(Arc::new(fields!(CallbackDetails {
                callback_id: Some(format!("local-callback-{}", u.id)),
                result: None,
                error: None,
            })));
        }
        (T::ChainedInvoke, A::Start, None) => {
            let named = u
                .chained_invoke_options
                .as_ref()
                .is_some_and(|o| !o.function_name.is_empty());
            if !named {
                return Err(format!(
                    "START of chained invoke {} needs ChainedInvokeOptions.FunctionName",
                    u.id
                ));
            }
            if u.payload.as_ref().is_some_and(|p| p.len() > 1024 * 1024) {
                return Err(format!(
                    "the input of chained invoke {} is over 1 MiB",
                    u.id
                ));
            }
            op.status = S::Started;
            op.chained_invoke_details = Some(Default::default());
        }
        _ => return invalid(),
    }
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        CallbackOptions, ChainedInvokeOptions, ErrorObject, OperationId, StepOptions, WaitOptions,
    };

    use OperationAction as A;
    use OperationStatus as S;
    use OperationType as T;

    /// An update of `t` with `a`, its options filled in as a valid one has them.
    fn update(t: T, a: A) -> OperationUpdate {
        let mut u = OperationUpdate::new(OperationId::new("op-1").unwrap(), t, a);
        match (t, a) {
            (T::Step, A::Retry) => {
                u.step_options = Some(StepOptions::retry_after(5));
                u.error = Some(Box::new(ErrorObject::new("E", "m")));
            }
            (T::Step, A::Fail) | (T::Context, A::Fail) => {
                u.error = Some(Box::new(ErrorObject::new("E", "m")));
            }
            (T::Wait, A::Start) => u.wait_options = Some(WaitOptions::new(10)),
            (T::Callback, A::Start) => u.callback_options = Some(CallbackOptions::new(60, 0)),
            (T::ChainedInvoke, A::Start) => {
                u.chained_invoke_options = Some(Box::new(ChainedInvokeOptions::new("target")));
            }
            _ => {}
        }
        u
    }

    fn at(status: S, t: T) -> Operation {
        Operation::new(OperationId::new("op-1").unwrap(), t, status)
    }

    /// Every (type, action, current status) the service accepts, and the
    /// status it leads to; every other combination is rejected.
    #[test]
    fn transitions_follow_the_service_table() {
        let table: &[(T, A, Option<S>, S)] = &[
            (T::Step, A::Start, None, S::Started),
            (T::Step, A::Start, Some(S::Ready), S::Started),
            (T::Step, A::Retry, Some(S::Started), S::Pending),
            (T::Step, A::Retry, Some(S::Ready), S::Pending),
            (T::Step, A::Succeed, None, S::Succeeded),
            (T::Step, A::Succeed, Some(S::Started), S::Succeeded),
            (T::Step, A::Succeed, Some(S::Ready), S::Succeeded),
            (T::Step, A::Fail, None, S::Failed),
            (T::Step, A::Fail, Some(S::Started), S::Failed),
            (T::Step, A::Fail, Some(S::Ready), S::Failed),
            (T::Wait, A::Start, None, S::Started),
            (T::Wait, A::Cancel, Some(S::Started), S::Cancelled),
            (T::Context, A::Start, None, S::Started),
            (T::Context, A::Succeed, None, S::Succeeded),
            (T::Context, A::Succeed, Some(S::Started), S::Succeeded),
            (T::Context, A::Fail, None, S::Failed),
            (T::Context, A::Fail, Some(S::Started), S::Failed),
            (T::Callback, A::Start, None, S::Started),
            (T::ChainedInvoke, A::Start, None, S::Started),
        ];
        let types = [T::Step, T::Wait, T::Context, T::Callback, T::ChainedInvoke];
        let actions = [A::Start, A::Retry, A::Succeed, A::Fail, A::Cancel];
        let statuses = [
            None,
            Some(S::Started),
            Some(S::Ready),
            Some(S::Pending),
            Some(S::Succeeded),
            Some(S::Failed),
            Some(S::Cancelled),
        ];
        let mut accepted = 0;
        for t in types {
            for a in actions {
                for status in statuses {
                    let current = status.map(|s| at(s, t));
                    let got = transition(current, &update(t, a), 1_000);
                    let want = table
                        .iter()
                        .find(|(tt, aa, ss, _)| (*tt, *aa, *ss) == (t, a, status))
                        .map(|row| row.3);
                    match (want, got) {
                        (Some(next), Ok(op)) => {
                            assert_eq!(op.status, next, "{t} {a} from {status:?}");
                            accepted += 1;
                        }
                        (None, Err(message)) => assert!(
                            message.starts_with("Invalid current"),
                            "{t} {a} from {status:?}: {message}"
                        ),
                        (want, got) => panic!("{t} {a} from {status:?}: {want:?} but {got:?}"),
                    }
                }
            }
        }
        assert_eq!(accepted, table.len());
    }

    #[test]
    fn a_transition_records_what_the_update_carries() {
        let op = transition(None, &update(T::Wait, A::Start), 1_000).unwrap();
        assert_eq!(
            op.wait_details.unwrap().scheduled_end_timestamp,
            Some(11_000)
        );
        let retried = transition(
            Some(at(S::Started, T::Step)),
            &update(T::Step, A::Retry),
            1_000,
        )
        .unwrap();
        let details = retried.step_details.unwrap();
        assert_eq!(details.attempt, Some(1));
        assert_eq!(details.next_attempt_timestamp, Some(6_000));
        let mut no_delay = update(T::Step, A::Retry);
        no_delay.step_options = None;
        assert!(transition(Some(at(S::Started, T::Step)), &no_delay, 0).is_err());
        let mut both = update(T::Step, A::Succeed);
        both.error = Some(Box::new(ErrorObject::new("E", "m")));
        assert!(transition(None, &both, 0).is_err());
        let mut too_long = update(T::Callback, A::Start);
        too_long.callback_options = Some(CallbackOptions::new(100_000_000, 0));
        assert!(transition(None, &too_long, 0).is_err());
    }

    #[test]
    fn fields_are_checked_as_the_service_checks_them() {
        let mut u = update(T::Step, A::Start);
        assert!(check_new_fields(&u).is_ok());
        u.name = Some("".into());
        assert!(check_new_fields(&u).is_err());
        u.name = Some("\u{7f}".into());
        assert!(check_new_fields(&u).is_err());
        u.name = Some("x".repeat(257).into());
        assert!(check_new_fields(&u).is_err());
        u.name = Some("ok name".into());
        u.sub_type = Some("Bad SubType".into());
        assert!(check_new_fields(&u).is_err());
        u.sub_type = Some("Step".into());
        assert!(check_new_fields(&u).is_ok());
        u.payload = Some("x".repeat(MAX_PAYLOAD_CHARS + 1).into());
        assert!(check_payload(&u).is_err());
        u.payload = Some("é".repeat(MAX_PAYLOAD_CHARS / 2 + 1).into());
        assert!(check_payload(&u).is_ok());
    }
}
