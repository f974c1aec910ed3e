//! Tests of the local service: tokens, the service's transitions, batches
//! validated whole and applied atomically, waits on the virtual clock, and
//! state in pages.

use super::*;
use crate::local::{DEFAULT_START_TIME, LocalExecution, LocalRunner};
use crate::model::{StepOptions, WaitOptions};
use crate::service::poll_now;

fn execution() -> (LocalExecution, String) {
    let e = LocalRunner::new().start(&()).unwrap();
    let token = "t".to_owned();
    e.lock().token = Some(token.clone());
    (e, token)
}

fn id(s: &str) -> OperationId {
    OperationId::new(s).unwrap()
}

fn up(op: &str, t: OperationType, a: OperationAction) -> OperationUpdate {
    let mut u = OperationUpdate::new(id(op), t, a);
    u.name = Some("n".into());
    u
}

fn send(
    e: &LocalExecution,
    token: &str,
    updates: Vec<OperationUpdate>,
) -> Result<String, ServiceError> {
    let r = e.lock().checkpoint(token, &updates)?;
    Ok(r.checkpoint_token.unwrap())
}

fn rejected(r: Result<String, ServiceError>) -> String {
    match r {
        Err(ServiceError::Rejected(m)) => m,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn tokens_are_single_use() {
    let (e, t) = execution();
    let t2 = send(&e, &t, vec![]).unwrap();
    assert_ne!(t, t2);
    assert!(matches!(
        send(&e, &t, vec![]),
        Err(ServiceError::InvalidToken(_))
    ));
    assert!(send(&e, &t2, vec![]).is_ok());
}

#[test]
fn step_transitions_follow_the_service() {
    use OperationAction as A;
    use OperationType as T;
    let (e, mut t) = execution();
    t = send(
        &e,
        &t,
        vec![up("s", T::Step, A::Start), up("s", T::Step, A::Succeed)],
    )
    .unwrap();
    let op = e.lock().get(&id("s")).cloned().unwrap();
    assert_eq!(op.status, OperationStatus::Succeeded);
    assert_eq!(op.step_details.unwrap().attempt, Some(1));
    // A finished step cannot start or succeed again.
    let m = rejected(send(&e, &t, vec![up("s", T::Step, A::Start)]));
    assert!(m.contains("Invalid current STEP state to start"), "{m}");
    let m = rejected(send(&e, &t, vec![up("s", T::Step, A::Succeed)]));
    assert!(m.contains("is SUCCEEDED"), "{m}");
    // RETRY needs a delay and exactly one of error and payload.
    t = send(&e, &t, vec![up("r", T::Step, A::Start)]).unwrap();
    rejected(send(&e, &t, vec![up("r", T::Step, A::Retry)]));
    let mut retry = up("r", T::Step, A::Retry);
    retry.step_options = Some(StepOptions::retry_after(3));
    retry.error = Some(Box::new(ErrorObject::new("E", "m")));
    send(&e, &t, vec![retry]).unwrap();
    let op = e.lock().get(&id("r")).cloned().unwrap();
    assert_eq!(op.status, OperationStatus::Pending);
    let d = op.step_details.unwrap();
    assert_eq!(d.attempt, Some(1));
    assert_eq!(d.next_attempt_timestamp, Some(DEFAULT_START_TIME + 3000));
    // The timer makes it READY.
    assert!(e.advance_time());
    assert_eq!(
        e.lock().get(&id("r")).unwrap().status,
        OperationStatus::Ready
    );
}

#[test]
fn a_large_batch_follows_the_same_rules_as_a_small_one() {
    use OperationAction as A;
    use OperationType as T;
    let (e, t) = execution();
    // 40 items of a map in one batch: each CONTEXT and its step
    // started and finished, the CONTEXT before its step.
    let mut updates = Vec::new();
    for n in 0..40 {
        let item = format!("item-{n}");
        let step = format!("step-{n}");
        let child = |action| {
            let mut u = up(&step, T::Step, action);
            u.parent_id = Some(id(&item));
            u
        };
        let (start, succeed) = (child(A::Start), child(A::Succeed));
        updates.extend([up(&item, T::Context, A::Start), start, succeed]);
        updates.push(up(&item, T::Context, A::Succeed));
    }
    let t = send(&e, &t, updates.clone()).unwrap();
    for n in 0..40 {
        for name in [format!("item-{n}"), format!("step-{n}")] {
            let status = e.lock().get(&id(&name)).map(|op| op.status);
            assert_eq!(status, Some(OperationStatus::Succeeded), "{name}");
        }
    }
    // A third update for one operation, late in a large batch: the
    // whole batch is rejected and nothing of it applied.
    let mut late: Vec<_> = (0..30)
        .map(|n| up(&format!("late-{n}"), T::Step, A::Start))
        .collect();
    late.push(up("late-3", T::Step, A::Succeed));
    late.push(up("late-3", T::Step, A::Succeed));
    let m = rejected(send(&e, &t, late));
    assert!(
        m.contains("more than one update for operation late-3"),
        "{m}"
    );
    assert!(e.lock().get(&id("late-0")).is_none());
    // A step whose parent CONTEXT is neither stored nor in the batch.
    let mut orphan: Vec<_> = (0..30)
        .map(|n| up(&format!("o-{n}"), T::Step, A::Start))
        .collect();
    let mut child = up("o-child", T::Step, A::Start);
    child.parent_id = Some(id("o-7"));
    orphan.push(child);
    let m = rejected(send(&e, &t, orphan));
    assert!(
        m.contains("parent o-7 of operation o-child is not a known CONTEXT"),
        "{m}"
    );
}

#[test]
fn batches_are_validated_whole_and_applied_atomically() {
    use OperationAction as A;
    use OperationType as T;
    let (e, t) = execution();
    // The second update is invalid, so the first is not applied either.
    let m = rejected(send(
        &e,
        &t,
        vec![up("a", T::Step, A::Start), up("b", T::Wait, A::Start)],
    ));
    assert!(m.contains("WaitSeconds"), "{m}");
    assert!(e.lock().get(&id("a")).is_none());
    // One update per id, except START followed by one outcome.
    let m = rejected(send(
        &e,
        &t,
        vec![up("a", T::Step, A::Start), up("a", T::Step, A::Start)],
    ));
    assert!(m.contains("more than one update"), "{m}");
    // The EXECUTION update must come last.
    let m = rejected(send(
        &e,
        &t,
        vec![
            up("x", T::Execution, A::Succeed),
            up("a", T::Step, A::Start),
        ],
    ));
    assert!(m.contains("last"), "{m}");
    // Parents must be known contexts.
    let mut child = up("c", T::Step, A::Start);
    child.parent_id = Some(id("nope"));
    assert!(rejected(send(&e, &t, vec![child])).contains("not a known CONTEXT"));
    // Type, name and subtype must match the stored operation.
    let t = send(&e, &t, vec![up("a", T::Step, A::Start)]).unwrap();
    let mut renamed = up("a", T::Step, A::Succeed);
    renamed.name = Some("other".into());
    assert!(rejected(send(&e, &t, vec![renamed])).contains("does not match"));
}

#[test]
fn waits_end_on_the_virtual_clock() {
    use OperationAction as A;
    use OperationType as T;
    let (e, t) = execution();
    let mut w = up("w", T::Wait, A::Start);
    w.wait_options = Some(WaitOptions::new(3600));
    send(&e, &t, vec![w]).unwrap();
    assert!(e.lock().has_outstanding());
    assert!(e.advance_time());
    assert_eq!(e.now(), DEFAULT_START_TIME + 3_600_000);
    assert_eq!(
        e.lock().get(&id("w")).unwrap().status,
        OperationStatus::Succeeded
    );
    assert!(!e.advance_time(), "no timer left");
    assert!(!e.lock().has_outstanding());
}

/// A local service holding the execution and four steps (token `t`),
/// answering in pages of two.
fn four_steps_in_pages_of_two() -> LocalService {
    let e = LocalRunner::new().page_size(2).start(&()).unwrap();
    let mut s = e.lock();
    s.token = Some("t".into());
    for i in 0..4 {
        let op = Operation::new(
            id(&format!("op{i}")),
            OperationType::Step,
            OperationStatus::Succeeded,
        );
        s.upsert(op);
    }
    drop(s);
    LocalService {
        state: e.state.clone(),
        page_size: 2,
    }
}

#[test]
fn get_state_pages_with_markers() {
    let service = four_steps_in_pages_of_two();
    let page = |m: &str| poll_now(service.get_state("arn", "t", m));
    let p = page("1").unwrap();
    assert_eq!(p.operations.len(), 2);
    assert_eq!(p.next_marker.as_deref(), Some("3"));
    let p = page("3").unwrap();
    assert_eq!(p.operations.len(), 2);
    assert_eq!(p.next_marker, None);
    assert!(matches!(page("x"), Err(ServiceError::Rejected(_))));
    assert!(matches!(
        poll_now(service.get_state("arn", "stale", "0")),
        Err(ServiceError::InvalidToken(_))
    ));
}

/// `get_state_into` appends the same pages `get_state` returns, in
/// order, and fails the same way on a bad marker or a stale token.
#[test]
fn get_state_into_appends_the_pages_in_place() {
    let service = four_steps_in_pages_of_two();
    let expected: Vec<OperationId> = ["1", "3"]
        .iter()
        .flat_map(|m| {
            poll_now(service.get_state("arn", "t", m))
                .unwrap()
                .operations
        })
        .map(|op| op.id)
        .collect();
    let mut operations = Vec::new();
    let next = poll_now(service.get_state_into("arn", "t", "1", &mut operations));
    assert_eq!(next.unwrap().as_deref(), Some("3"));
    assert_eq!(operations.len(), 2);
    let next = poll_now(service.get_state_into("arn", "t", "3", &mut operations));
    assert_eq!(next.unwrap(), None);
    let ids: Vec<OperationId> = operations.iter().map(|op| op.id).collect();
    assert_eq!(ids, expected);
    assert!(matches!(
        poll_now(service.get_state_into("arn", "t", "x", &mut operations)),
        Err(ServiceError::Rejected(_))
    ));
    assert!(matches!(
        poll_now(service.get_state_into("arn", "stale", "0", &mut operations)),
        Err(ServiceError::InvalidToken(_))
    ));
    assert_eq!(operations.len(), 4, "a failed call appends nothing");
}
