//! Code changes between invocations: a changed program replays
//! deterministically or fails with a non-determinism error.

use super::*;

/// A change to a program.
#[derive(Debug, Clone, Arbitrary)]
pub enum Mutation {
    /// Swap two calls.
    Reorder(u8, u8),
    /// Give a call a new name.
    Rename(u8),
    /// Turn a step into a wait or a wait into a step.
    ChangeType(u8),
    /// Remove a call.
    Remove(u8),
    /// Insert a new call.
    Insert(u8),
}

pub(super) fn mutate(program: &Program, mutation: &Mutation) -> Program {
    let mut ops = program.ops.clone();
    let n = ops.len();
    let at = |i: u8| usize::from(i) % n.max(1);
    match *mutation {
        _ if n == 0 => ops.push(Op::Wait {
            name: "w-new".into(),
            seconds: 1,
            unnamed: false,
        }),
        Mutation::Reorder(i, j) => ops.swap(at(i), at(j)),
        Mutation::Rename(i) => match &mut ops[at(i)] {
            Op::Step { name, .. }
            | Op::Wait { name, .. }
            | Op::Child { name, .. }
            | Op::Condition { name, .. }
            | Op::Callback { name, .. }
            | Op::Invoke { name, .. }
            | Op::Batch { name, .. } => name.push_str("-renamed"),
        },
        Mutation::ChangeType(i) => {
            let k = at(i);
            ops[k] = match &ops[k] {
                Op::Step { name, .. } => Op::Wait {
                    name: format!("w{}", &name[1..]),
                    seconds: 5,
                    unnamed: false,
                },
                Op::Wait { name, .. } => Op::Step {
                    name: format!("s{}", &name[1..]),
                    codec: CodecKind::Json,
                    at_most_once: false,
                    failures: 0,
                    max_attempts: 1,
                    retry_delay: 1,
                },
                // A context becomes a batch of one branch, a batch a child.
                Op::Child { name, body, .. } => Op::Batch {
                    name: format!("b{}", &name[1..]),
                    parallel: false,
                    branches: vec![body.clone()],
                    max_concurrency: None,
                    window: None,
                    policy: Policy::All,
                    flat: false,
                },
                Op::Batch { name, branches, .. } => Op::Child {
                    name: format!("c{}", &name[1..]),
                    body: branches.first().cloned().unwrap_or_default(),
                    is_virtual: false,
                },
                // A condition becomes a callback, a callback a wait.
                Op::Condition { name, .. } => Op::Callback {
                    name: format!("a{}", &name[1..]),
                    timeout: 60,
                    answer: Answering::Never,
                    wait: false,
                },
                Op::Callback { name, .. } => Op::Wait {
                    name: format!("w{}", &name[1..]),
                    seconds: 5,
                    unnamed: false,
                },
                Op::Invoke { name, .. } => Op::Wait {
                    name: format!("w{}", &name[1..]),
                    seconds: 7,
                    unnamed: false,
                },
            };
        }
        Mutation::Remove(i) => {
            ops.remove(at(i));
        }
        Mutation::Insert(i) => ops.insert(
            usize::from(i) % (n + 1),
            Op::Step {
                name: "s-new".into(),
                codec: CodecKind::MsgPack,
                at_most_once: false,
                failures: 0,
                max_attempts: 1,
                retry_delay: 1,
            },
        ),
    }
    Program { ops }
}

/// Input of [`check_code_change`].
#[derive(Debug, Clone, Arbitrary)]
pub struct ChangeCase {
    /// The deployed program.
    pub program: Program,
    /// How many invocations run with it before the change.
    pub before: u8,
    /// The change.
    pub mutation: Mutation,
}

/// Records part of a program's history, changes the program and replays:
/// when every recorded call is still where it was, the result is the
/// changed program's own; otherwise the execution fails with
/// `NonDeterministicExecution`. Never a silently different result.
pub fn check_code_change(data: &[u8]) -> Result<(), String> {
    classify_code_change(data).map(|_| ())
}

/// What one `code_change` input exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeChange {
    /// The input did not decode into a case.
    Undecodable,
    /// The execution ended before the change: nothing was replayed.
    EndedBeforeChange,
    /// A changed program replayed the history: the change kept every
    /// recorded call at its position, and the result was the changed
    /// program's own.
    ReplayedCompatible,
    /// A changed program replayed the history and failed as
    /// non-deterministic.
    ReplayedNonDeterministic,
    /// A changed program replayed the history after a change replay cannot
    /// see: an unnamed invoke of another function at a recorded position
    /// (replay answers it with that position's record, as AWS's SDKs do).
    /// Its result is not compared.
    ReplayedUndetectable,
}

/// [`check_code_change`], saying what the input exercised.
pub fn classify_code_change(data: &[u8]) -> Result<CodeChange, String> {
    let Ok(case) = ChangeCase::arbitrary_take_rest(Unstructured::new(data)) else {
        return Ok(CodeChange::Undecodable);
    };
    let changed = mutate(&case.program, &case.mutation);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let execution = runner_for(&[&case.program, &changed])
            .start(&())
            .map_err(|e| e.to_string())?;
        let old = workflow(case.program.clone(), Probe::default());
        let before = u32::from(case.before % 6) + 1;
        for _ in 0..before {
            if execution.status() != ExecutionStatus::Running {
                break;
            }
            execution.advance_time();
            execution.invoke(&old).await;
        }
        // The calls recorded so far, by position.
        // (Unnamed calls carry no name to tell them apart: the type must
        // match as well as the name.)
        let recorded: Vec<(usize, Option<String>, OperationType)> = execution
            .operations()
            .iter()
            .filter(|op| op.op_type != OperationType::Execution)
            .filter_map(|op| {
                let position = (1..=64u64).find(|n| operation_id(None, *n) == op.id)?;
                Some((
                    position as usize - 1,
                    op.name.as_deref().map(str::to_owned),
                    op.op_type,
                ))
            })
            .collect();
        // An unnamed invoke records neither its name nor the function it
        // calls that replay compares: one of another function moved to a
        // recorded position replays that position's result (as AWS's SDKs
        // do), which a fresh run of the changed code would not get. Such a
        // change is not one whose result can be compared.
        let same_target = |i: usize| match (case.program.ops.get(i), changed.ops.get(i)) {
            (Some(Op::Invoke { known: a, .. }), Some(Op::Invoke { known: b, .. })) => a == b,
            _ => true,
        };
        let compatible = recorded.iter().all(|(i, name, op_type)| {
            changed.ops.get(*i).is_none_or(|op| {
                op.recorded_name() == Some(name.as_deref()) && op.recorded_type() == *op_type
            })
        });
        let undetectable = compatible && recorded.iter().any(|(i, ..)| !same_target(*i));
        // The oracle above reads the calls recorded at the root. A virtual
        // child records its calls at the root too, under ids of its own
        // namespace, which a change may bring under another context:
        // replay may then fail as non-deterministic where the oracle
        // expected a result (never the other way round).
        let lenient = has_virtual(&case.program.ops) || has_virtual(&changed.ops);
        if execution.status() != ExecutionStatus::Running {
            // The execution ended before the change: nothing to replay.
            return Ok(CodeChange::EndedBeforeChange);
        }
        let new = workflow(changed.clone(), Probe::default());
        drive(&execution, &new, 500).await?;
        let replayed = record(&execution)?;
        let non_deterministic = replayed
            .outcome
            .as_ref()
            .err()
            .and_then(|e| e.error_type.as_deref())
            == Some("NonDeterministicExecution");
        if compatible && lenient && non_deterministic {
            return Ok(CodeChange::ReplayedNonDeterministic);
        }
        if undetectable {
            // Replay must still end (it did: `drive` returned), with the
            // records' results where the fresh run would call the other
            // function: no result to compare.
            return Ok(CodeChange::ReplayedUndetectable);
        }
        if compatible {
            let fresh = runner_for(&[&changed])
                .start(&())
                .map_err(|e| e.to_string())?;
            drive(&fresh, &workflow(changed, Probe::default()), 500).await?;
            let expected = record(&fresh)?;
            if replayed.outcome != expected.outcome {
                return Err(format!(
                    "a compatible change ({:?}) gave another result: {:?} instead of {:?}",
                    case.mutation, replayed.outcome, expected.outcome
                ));
            }
            Ok(CodeChange::ReplayedCompatible)
        } else {
            let error_type = replayed
                .outcome
                .as_ref()
                .err()
                .and_then(|e| e.error_type.clone());
            if error_type.as_deref() != Some("NonDeterministicExecution") {
                return Err(format!(
                    "an incompatible change ({:?}) replayed to {:?}",
                    case.mutation, replayed.outcome
                ));
            }
            Ok(CodeChange::ReplayedNonDeterministic)
        }
    })
}
