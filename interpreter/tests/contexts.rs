//! The concurrent core as a state machine, driven by hand: several step
//! bodies out at once, answered in any order; parent ids on every update;
//! suspension only when no context can go on.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use durable_yield_interpreter::batch::ADMISSION_WINDOW;
use durable_yield_interpreter::id::{branch_id, operation_id};
use durable_yield_interpreter::model::{
    ExecutionDetails, Operation, OperationAction as A, OperationId, OperationStatus as S,
    OperationType as T, OperationUpdate,
};
use durable_yield_interpreter::{
    Action, Branch, CheckpointHandle, CompletionPolicy, Interpreter, MapConfig, Outcome,
    ParallelConfig, StepError, StepHandle, StepOutcome, Workflow,
};

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f:1/durable-execution/e/1";

fn execution() -> Operation {
    let mut op = Operation::new(OperationId::new("exec").unwrap(), T::Execution, S::Started);
    op.execution_details = Some(std::sync::Arc::new(ExecutionDetails::new(Some(
        "null".into(),
    ))));
    op
}

fn run_now(mut f: impl Future<Output = StepOutcome> + Unpin) -> StepOutcome {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::Pin::new(&mut f).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("test step bodies complete at once"),
    }
}

/// Everything the interpreter hands out until it needs an answer.
#[derive(Default)]
struct Drained {
    steps: Vec<(StepHandle, String, StepOutcome)>,
    checkpoints: Vec<(CheckpointHandle, Vec<OperationUpdate>)>,
    finish: Option<Outcome>,
}

fn drain(it: &mut Interpreter) -> Drained {
    let mut d = Drained::default();
    while let Some(action) = it.poll() {
        match action {
            Action::RunStep(run) => {
                let name = run.context.name().unwrap_or("").to_owned();
                d.steps.push((run.handle, name, run_now(run.into_body())));
            }
            Action::Checkpoint {
                handle, updates, ..
            } => d.checkpoints.push((handle, updates)),
            Action::Finish(outcome) => d.finish = Some(outcome),
            other => panic!("unexpected {other:?}"),
        }
    }
    d
}

/// A map of three items, each one step named after its item.
async fn three_items(mut wf: Workflow, _: ()) -> Result<Vec<u32>, StepError> {
    let r = wf
        .map("m", vec![10u32, 20, 30], |mut wf, x, _| async move {
            wf.step(format!("item-{x}"), move |_| async move { Ok(x + 1) })
                .await
        })
        .await?;
    r.into_values()
}

#[test]
fn step_bodies_of_all_branches_are_out_at_once_and_answered_in_any_order() {
    let mut it = Interpreter::new(ARN, vec![execution()], &three_items);
    let d = drain(&mut it);
    let names: Vec<&str> = d.steps.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(names, ["item-10", "item-20", "item-30"]);
    assert!(
        d.checkpoints.is_empty(),
        "context STARTs wait for the next checkpoint"
    );
    // Answer the last body first.
    let mut steps = d.steps;
    steps.reverse();
    let mut all_updates = Vec::new();
    for (handle, _, outcome) in steps {
        it.step_finished(handle, outcome);
        let d = drain(&mut it);
        for (h, updates) in d.checkpoints {
            all_updates.extend(updates);
            it.checkpoint_finished(h, vec![]);
        }
    }
    loop {
        let d = drain(&mut it);
        if let Some(outcome) = d.finish {
            assert_eq!(
                outcome,
                Outcome::Succeeded("[11,21,31]".into()),
                "index order"
            );
            break;
        }
        assert!(!d.checkpoints.is_empty(), "the interpreter needs an answer");
        for (h, updates) in d.checkpoints {
            all_updates.extend(updates);
            it.checkpoint_finished(h, vec![]);
        }
    }
    // The map and its items were started first, in index order, and every
    // update of an item's operations names the item as its parent.
    let map_id = operation_id(None, 1);
    let item = |i: u64| branch_id(&map_id, i);
    let starts: Vec<(OperationId, Option<OperationId>)> = all_updates
        .iter()
        .filter(|u| u.op_type == T::Context && u.action == A::Start)
        .map(|u| (u.id, u.parent_id))
        .collect();
    assert_eq!(
        starts,
        vec![
            (map_id, None),
            (item(0), Some(map_id)),
            (item(1), Some(map_id)),
            (item(2), Some(map_id))
        ]
    );
    for u in all_updates.iter().filter(|u| u.op_type == T::Step) {
        let i = match u.name.as_deref() {
            Some("item-10") => 0,
            Some("item-20") => 1,
            Some("item-30") => 2,
            other => panic!("{other:?}"),
        };
        assert_eq!(u.parent_id, Some(item(i)));
        assert_eq!(u.id, operation_id(Some(&item(i)), 1));
    }
    // Names on every update of a named operation, SUCCEED included.
    assert!(all_updates.iter().all(|u| u.name.is_some()));
    let map_close = all_updates
        .iter()
        .find(|u| u.id == map_id && u.action == A::Succeed);
    let options = map_close.and_then(|u| u.context_options.as_ref());
    assert_eq!(options.and_then(|o| o.replay_children), Some(false));
}

/// Two branches that wait 5 s and 3 s, and one that steps.
async fn two_timers(mut wf: Workflow, _: ()) -> Result<Vec<u32>, StepError> {
    let r = wf
        .map("m", vec![5u64, 3, 0], |mut wf, secs, _| async move {
            if secs > 0 {
                wf.wait("w", Duration::from_secs(secs)).await;
            }
            wf.step("s", move |_| async move { Ok(secs as u32) }).await
        })
        .await?;
    r.into_values()
}

#[test]
fn the_invocation_suspends_when_no_branch_can_go_on_until_the_earliest_timer() {
    let mut it = Interpreter::new(ARN, vec![execution()], &two_timers);
    let mut d = drain(&mut it);
    // The two wait STARTs are out, and branch 2's step body runs meanwhile.
    assert_eq!(d.steps.len(), 1);
    assert_eq!(d.checkpoints.len(), 2);
    let map = operation_id(None, 1);
    let wait_of = |i: u64| operation_id(Some(&branch_id(&map, i)), 1);
    let started = |id, end| {
        let mut op = Operation::new(id, T::Wait, S::Started);
        op.wait_details = Some(std::sync::Arc::new(
            durable_yield_interpreter::model::WaitDetails::new(end),
        ));
        op
    };
    let (h0, _) = d.checkpoints.remove(0);
    it.checkpoint_finished(h0, vec![started(wait_of(0), 5_000)]);
    let (h1, _) = d.checkpoints.remove(0);
    it.checkpoint_finished(h1, vec![started(wait_of(1), 3_000)]);
    assert!(
        drain(&mut it).finish.is_none(),
        "branch 2's body is still out"
    );
    let (handle, _, outcome) = d.steps.remove(0);
    it.step_finished(handle, outcome);
    loop {
        let d = drain(&mut it);
        if let Some(outcome) = d.finish {
            assert_eq!(
                outcome,
                Outcome::Pending {
                    resume_at: Some(3_000)
                }
            );
            break;
        }
        for (h, _) in d.checkpoints {
            it.checkpoint_finished(h, vec![]);
        }
    }
}

/// Two items at once; the first success ends the map.
async fn race(mut wf: Workflow, _: ()) -> Result<Vec<String>, StepError> {
    let config = MapConfig::named("race").completion(CompletionPolicy::default().min_successful(1));
    let r = wf
        .map_with(config, vec!["a", "b"], |mut wf, x, _| async move {
            wf.step(x, move |_| async move { Ok(x.to_owned()) }).await
        })
        .await?;
    let statuses: Vec<String> = r
        .items()
        .iter()
        .map(|i| format!("{:?}", i.status))
        .collect();
    Ok(statuses)
}

#[test]
fn the_outcome_of_an_abandoned_branch_is_dropped() {
    let mut it = Interpreter::new(ARN, vec![execution()], &race);
    let mut d = drain(&mut it);
    assert_eq!(d.steps.len(), 2);
    let (late, _, late_outcome) = d.steps.remove(1);
    let mut late_outcome = Some(late_outcome);
    let (first, _, outcome) = d.steps.remove(0);
    it.step_finished(first, outcome);
    let mut sent = Vec::new();
    let outcome = loop {
        let d = drain(&mut it);
        if let Some(outcome) = d.finish {
            break outcome;
        }
        for (h, updates) in d.checkpoints {
            sent.extend(updates);
            it.checkpoint_finished(h, vec![]);
        }
        if sent
            .iter()
            .any(|u| u.name.as_deref() == Some("race") && u.action == A::Succeed)
        {
            // The map closed: the late body's outcome comes in now.
            if let Some(outcome) = late_outcome.take() {
                it.step_finished(late, outcome);
            }
        }
    };
    assert_eq!(
        outcome,
        Outcome::Succeeded(r#"["Succeeded","Started"]"#.into())
    );
    // The late step's START was queued while its body ran, before the map
    // closed (as AWS's SDKs do); its outcome, after, is never sent.
    let late: Vec<(usize, A)> = sent
        .iter()
        .enumerate()
        .filter(|(_, u)| u.name.as_deref() == Some("b") && u.op_type == T::Step)
        .map(|(i, u)| (i, u.action))
        .collect();
    let closed = sent
        .iter()
        .position(|u| u.name.as_deref() == Some("race") && u.action == A::Succeed);
    assert!(
        matches!(late.as_slice(), [(i, A::Start)] if Some(*i) < closed),
        "only the abandoned branch's START, before the map closed: {late:?}, map closed at {closed:?}"
    );
}

#[test]
fn a_zero_max_concurrency_fails_before_anything_is_sent() {
    async fn bad(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
        let config = MapConfig::named("bad").max_concurrency(0);
        let r = wf
            .map_with(config, vec![1u32], |_, x, _| async move {
                Ok::<_, StepError>(x)
            })
            .await?;
        Ok(r.total_count() as u32)
    }
    let mut it = Interpreter::new(ARN, vec![execution()], &bad);
    let d = drain(&mut it);
    assert!(d.checkpoints.is_empty());
    match d.finish {
        Some(Outcome::Failed(e)) => assert_eq!(e.error_type.as_deref(), Some("InvalidConfig")),
        other => panic!("{other:?}"),
    }
}

/// Item "a" steps; item "b" runs an inner map, one item at a time.
async fn nested_race(mut wf: Workflow, _: ()) -> Result<Vec<String>, StepError> {
    let config =
        MapConfig::named("outer").completion(CompletionPolicy::default().min_successful(1));
    let r = wf
        .map_with(config, vec!["a", "b"], |mut wf, x, _| async move {
            if x == "a" {
                return wf.step("a-step", |_| async { Ok("a".to_owned()) }).await;
            }
            let inner = MapConfig::named("inner").max_concurrency(1);
            let r = wf
                .map_with(inner, vec![0u32, 1], |mut wf, i, _| async move {
                    wf.step(format!("inner-{i}"), move |_| async move { Ok(i) })
                        .await
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        })
        .await?;
    Ok(r.items()
        .iter()
        .map(|i| format!("{:?}", i.status))
        .collect())
}

#[test]
fn a_batch_inside_an_abandoned_branch_starts_nothing_more() {
    let mut it = Interpreter::new(ARN, vec![execution()], &nested_race);
    let mut d = drain(&mut it);
    let names: Vec<&str> = d.steps.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(names, ["a-step", "inner-0"]);
    let (inner0, _, inner0_outcome) = d.steps.remove(1);
    let (a, _, a_outcome) = d.steps.remove(0);
    // "a" finishes first, then the inner item; their checkpoints are
    // answered in order, so the outer map ends (min_successful 1) before
    // the inner item's end is acknowledged.
    it.step_finished(a, a_outcome);
    it.step_finished(inner0, inner0_outcome);
    let mut sent: Vec<OperationUpdate> = Vec::new();
    let outcome = loop {
        let d = drain(&mut it);
        if let Some(outcome) = d.finish {
            break outcome;
        }
        assert!(d.steps.is_empty(), "no new step body: {:?}", d.steps.len());
        for (h, updates) in d.checkpoints {
            sent.extend(updates);
            it.checkpoint_finished(h, vec![]);
        }
    };
    assert_eq!(
        outcome,
        Outcome::Succeeded(r#"["Succeeded","Started"]"#.into())
    );
    let started: Vec<(&str, Option<OperationId>)> = sent
        .iter()
        .filter(|u| u.action == A::Start && u.op_type == T::Context)
        .map(|u| (u.name.as_deref().unwrap_or(""), u.parent_id))
        .collect();
    let inner = sent
        .iter()
        .find(|u| u.name.as_deref() == Some("inner"))
        .map(|u| u.id);
    assert!(
        !started
            .iter()
            .any(|(name, parent)| *name == "map-item-1" && *parent == inner),
        "the inner map started its second item after its branch was abandoned: {started:?}"
    );
}

/// Answers every checkpoint (with no operations) until the interpreter
/// waits for a step body or finishes; the bodies it hands out meanwhile go
/// to `out`.
fn settle(
    it: &mut Interpreter,
    out: &mut impl Extend<(StepHandle, String, StepOutcome)>,
) -> Option<Outcome> {
    loop {
        let d = drain(it);
        out.extend(d.steps);
        if d.finish.is_some() || d.checkpoints.is_empty() {
            return d.finish;
        }
        for (h, _) in d.checkpoints {
            it.checkpoint_finished(h, vec![]);
        }
    }
}

/// More items than two admission windows, each one step named after its
/// item.
const MANY: usize = 2 * ADMISSION_WINDOW + 100;

async fn many_steps(mut wf: Workflow, _: ()) -> Result<u64, StepError> {
    let items: Vec<u64> = (0..MANY as u64).collect();
    let r = wf
        .map("many", items, |mut wf, x, _| async move {
            wf.step(format!("s-{x}"), move |_| async move { Ok(x) })
                .await
        })
        .await?;
    Ok(r.into_values()?.into_iter().sum())
}

#[test]
fn a_map_without_max_concurrency_runs_a_window_of_items_at_a_time() {
    let mut it = Interpreter::new(ARN, vec![execution()], &many_steps);
    let mut out: VecDeque<(StepHandle, String, StepOutcome)> = drain(&mut it).steps.into();
    let first: Vec<&str> = out.iter().map(|s| s.1.as_str()).collect();
    let expected: Vec<String> = (0..ADMISSION_WINDOW).map(|x| format!("s-{x}")).collect();
    assert_eq!(first, expected, "the first window, in index order");
    // One body finishes at a time; each finished item makes room for the
    // next one, and never more than a window's bodies are out.
    let mut ran = Vec::new();
    let outcome = loop {
        let (handle, name, outcome) = out.pop_front().expect("a body is out");
        ran.push(name);
        it.step_finished(handle, outcome);
        let finish = settle(&mut it, &mut out);
        assert!(out.len() <= ADMISSION_WINDOW, "{} bodies out", out.len());
        if let Some(outcome) = finish {
            break outcome;
        }
        if ran.len() < MANY - ADMISSION_WINDOW {
            assert_eq!(out.len(), ADMISSION_WINDOW, "a finished item made room");
        }
    };
    let sum = (0..MANY as u64).sum::<u64>();
    assert_eq!(outcome, Outcome::Succeeded(sum.to_string().into()));
    let expected: Vec<String> = (0..MANY).map(|x| format!("s-{x}")).collect();
    assert_eq!(ran, expected, "every item ran once, in index order");
}

async fn many_waits(mut wf: Workflow, _: ()) -> Result<u64, StepError> {
    let items: Vec<u64> = (0..MANY as u64).collect();
    let r = wf
        .map("many", items, |mut wf, x, _| async move {
            wf.wait("w", Duration::from_secs(60 + x)).await;
            Ok::<_, StepError>(x)
        })
        .await?;
    Ok(r.into_values()?.into_iter().sum())
}

#[test]
fn suspended_items_hold_no_room_in_the_window() {
    let mut it = Interpreter::new(ARN, vec![execution()], &many_waits);
    let map = operation_id(None, 1);
    let index_of: std::collections::HashMap<OperationId, i64> = (0..MANY as u64)
        .map(|i| (branch_id(&map, i), i as i64))
        .collect();
    let mut sent = Vec::new();
    let outcome = loop {
        let d = drain(&mut it);
        assert!(d.steps.is_empty());
        if let Some(outcome) = d.finish {
            break outcome;
        }
        assert!(!d.checkpoints.is_empty(), "the interpreter needs an answer");
        for (h, updates) in d.checkpoints {
            // The service answers each wait's START with its end.
            let started: Vec<Operation> = updates
                .iter()
                .filter(|u| u.op_type == T::Wait)
                .map(|u| {
                    let item = u.parent_id.expect("a wait in an item");
                    let index = index_of[&item];
                    let mut op = Operation::new(u.id, T::Wait, S::Started);
                    op.wait_details = Some(std::sync::Arc::new(
                        durable_yield_interpreter::model::WaitDetails::new(1_000 * (60 + index)),
                    ));
                    op
                })
                .collect();
            sent.extend(updates);
            it.checkpoint_finished(h, started);
        }
    };
    // Every item started and began its wait in this one invocation, as
    // with no window at all.
    assert_eq!(
        outcome,
        Outcome::Pending {
            resume_at: Some(60_000)
        }
    );
    let waits = sent
        .iter()
        .filter(|u| u.op_type == T::Wait && u.action == A::Start)
        .count();
    let items = sent
        .iter()
        .filter(|u| u.op_type == T::Context && u.action == A::Start && u.parent_id == Some(map))
        .count();
    assert_eq!((items, waits), (MANY, MANY));
}

/// Five branches of one step each, in a window of two (the hook the fuzz
/// targets use to run small batches in windows), as a parallel operation.
async fn small_window(mut wf: Workflow, _: ()) -> Result<u64, StepError> {
    let branches = (0..5u64)
        .map(|x| {
            Branch::new(move |mut wf| async move {
                wf.step(format!("p-{x}"), move |_| async move { Ok(x) })
                    .await
            })
        })
        .collect();
    let config = ParallelConfig::named("few").admission_window(2);
    let r = wf.parallel_with(config, branches).await?;
    Ok(r.into_values()?.into_iter().sum())
}

#[test]
fn a_batch_can_run_in_a_smaller_window() {
    let mut it = Interpreter::new(ARN, vec![execution()], &small_window);
    let mut out: VecDeque<(StepHandle, String, StepOutcome)> = drain(&mut it).steps.into();
    let first: Vec<&str> = out.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(first, ["p-0", "p-1"], "the first window");
    let mut ran = Vec::new();
    let outcome = loop {
        let (handle, name, outcome) = out.pop_front().expect("a body is out");
        ran.push(name);
        it.step_finished(handle, outcome);
        let finish = settle(&mut it, &mut out);
        assert!(out.len() <= 2, "{} bodies out", out.len());
        if let Some(outcome) = finish {
            break outcome;
        }
    };
    assert_eq!(outcome, Outcome::Succeeded("10".into()));
    assert_eq!(ran, ["p-0", "p-1", "p-2", "p-3", "p-4"]);
}

/// Three items that each wait, in a window of one.
async fn waits_in_a_window_of_one(mut wf: Workflow, _: ()) -> Result<u64, StepError> {
    let config = MapConfig::named("few").admission_window(1);
    let r = wf
        .map_with(config, vec![1u64, 2, 3], |mut wf, x, _| async move {
            wf.wait("w", Duration::from_secs(60 * x)).await;
            Ok::<_, StepError>(x)
        })
        .await?;
    Ok(r.into_values()?.into_iter().sum())
}

#[test]
fn a_window_of_one_widens_when_its_item_waits() {
    let mut it = Interpreter::new(ARN, vec![execution()], &waits_in_a_window_of_one);
    let mut sent = Vec::new();
    let outcome = loop {
        let d = drain(&mut it);
        if let Some(outcome) = d.finish {
            break outcome;
        }
        assert!(!d.checkpoints.is_empty(), "the interpreter needs an answer");
        for (h, updates) in d.checkpoints {
            sent.extend(updates);
            it.checkpoint_finished(h, vec![]);
        }
    };
    // The service gave no end for the waits: the interpreter suspends.
    assert!(matches!(outcome, Outcome::Pending { .. }), "{outcome:?}");
    let waits = sent
        .iter()
        .filter(|u| u.op_type == T::Wait && u.action == A::Start)
        .count();
    assert_eq!(waits, 3, "every item began its wait in this invocation");
}

/// Item 0 races `r0` against `r1` (the first success ends the race); `r0`
/// first runs a child context `x`. Item 1 steps through `gate`, then runs
/// a child context `y`.
async fn reused_slot(mut wf: Workflow, _: ()) -> Result<Vec<String>, StepError> {
    let r = wf
        .map("outer", vec![0u32, 1], |mut wf, i, _| async move {
            if i == 0 {
                let race = MapConfig::named("race")
                    .completion(CompletionPolicy::default().min_successful(1));
                let r = wf
                    .map_with(race, vec!["r0", "r1"], |mut wf, r, _| async move {
                        if r == "r1" {
                            return wf.step("r1-step", |_| async { Ok(1u32) }).await;
                        }
                        wf.child("x", |mut wf| async move {
                            wf.step("x-step", |_| async { Ok(0u32) }).await
                        })
                        .await?;
                        wf.step("r0-late", |_| async { Ok(0u32) }).await
                    })
                    .await?;
                return Ok(format!("{:?}", r.completion_reason()));
            }
            wf.step("gate", |_| async { Ok(()) }).await?;
            wf.child("y", |mut wf| async move {
                wf.step("y-step", |_| async { Ok("y".to_owned()) }).await
            })
            .await
        })
        .await?;
    r.into_values()
}

#[test]
fn abandoning_a_branch_leaves_alone_the_context_that_took_its_finished_childs_slot() {
    let mut it = Interpreter::new(ARN, vec![execution()], &reused_slot);
    let mut out: Vec<(StepHandle, String, StepOutcome)> = drain(&mut it).steps;
    let finish = |it: &mut Interpreter, name: &str, out: &mut Vec<_>| {
        let at = out
            .iter()
            .position(|s: &(StepHandle, String, StepOutcome)| s.1 == name)
            .unwrap_or_else(|| panic!("{name} is not out"));
        let (handle, _, outcome) = out.remove(at);
        it.step_finished(handle, outcome);
        settle(it, out)
    };
    // `x` ends (its slot is free), then `y` starts and takes it; then the
    // race ends, abandoning `r0`, whose child `x` was.
    assert_eq!(finish(&mut it, "x-step", &mut out), None);
    assert_eq!(finish(&mut it, "gate", &mut out), None);
    assert!(out.iter().any(|s| s.1 == "y-step"));
    assert_eq!(finish(&mut it, "r1-step", &mut out), None);
    // `y` goes on: its body's outcome is taken, and item 1 ends with it.
    let outcome = finish(&mut it, "y-step", &mut out);
    assert_eq!(
        outcome,
        Some(Outcome::Succeeded(r#"["MinSuccessfulReached","y"]"#.into()))
    );
}

/// With observation on, the interpreter pauses (`Action::Observations`)
/// before the code of a context that just started runs, with the context's
/// start waiting in the observations; `scope_contexts` is called with the
/// context's id and each resumption of its code (never the root's), and
/// runs it.
#[test]
fn a_started_context_is_announced_before_its_code_runs_and_runs_in_its_scope() {
    use durable_yield_interpreter::Observation;
    use std::sync::{Arc, Mutex};

    type Log = Arc<Mutex<Vec<String>>>;
    static LOG: Mutex<Option<Log>> = Mutex::new(None);
    let log: Log = Arc::default();
    *LOG.lock().unwrap() = Some(log.clone());
    fn note(what: String) {
        if let Some(log) = LOG.lock().unwrap().as_ref() {
            log.lock().unwrap().push(what);
        }
    }
    let wf = |mut wf: Workflow, _: ()| async move {
        note("root code".into());
        let v: u32 = wf
            .child("c", |mut wf: Workflow| async move {
                note("child code".into());
                let x: u32 = wf.step("in-child", |_| async { Ok(2) }).await?;
                note("child code again".into());
                Ok::<_, StepError>(x)
            })
            .await?;
        note("root code again".into());
        Ok::<_, StepError>(v)
    };
    let mut it = Interpreter::new(ARN, vec![execution()], &wf);
    it.observe(Vec::new());
    it.scope_contexts(Box::new(|id: &OperationId, code: &mut dyn FnMut()| {
        note(format!("enter {}", &id.as_str()[..6]));
        code();
        note(format!("leave {}", &id.as_str()[..6]));
    }));
    let child = &operation_id(None, 1).as_str()[..6].to_owned();
    let mut announced = 0;
    let mut finished = false;
    for _ in 0..50 {
        match it.poll() {
            Some(Action::Observations) => {
                announced += 1;
                // The context's start is reported before its code runs.
                let seen = it.take_observations();
                assert!(
                    seen.iter()
                        .any(|o| matches!(o, Observation::FunctionStarted { .. })),
                    "{seen:?}"
                );
                assert!(!log.lock().unwrap().contains(&"child code".to_owned()));
                note("announced".into());
            }
            Some(Action::RunStep(run)) => {
                let handle = run.handle;
                it.step_finished(handle, run_now(run.into_body()));
            }
            Some(Action::Checkpoint { handle, .. }) => it.checkpoint_finished(handle, vec![]),
            Some(Action::Finish(Outcome::Succeeded(p))) => {
                assert_eq!(p.as_str(), "2");
                finished = true;
                break;
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                let _ = it.take_observations();
            }
        }
    }
    assert!(finished);
    assert_eq!(announced, 1, "one context started");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "root code".to_owned(),
            "announced".into(),
            format!("enter {child}"),
            "child code".into(),
            format!("leave {child}"),
            // The step's two requests (the step, then its body): a
            // resumption that runs no user statement.
            format!("enter {child}"),
            format!("leave {child}"),
            format!("enter {child}"),
            "child code again".into(),
            format!("leave {child}"),
            "root code again".into(),
        ]
    );
    // Without observation, no pause.
    let mut it = Interpreter::new(ARN, vec![execution()], &wf);
    let d = drain(&mut it);
    assert_eq!(d.steps.len(), 1);
}
