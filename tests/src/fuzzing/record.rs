//! What a finished execution recorded, the shape of a program, and the
//! runner that answers its callbacks.

use super::*;

/// What a finished execution recorded, timestamps left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Status.
    pub status: ExecutionStatus,
    /// Result or error.
    pub outcome: Result<String, ErrorObject>,
    /// `(id, type, name, status, result, error, attempt)` of every operation.
    pub operations: Vec<OpSig>,
}

/// An operation without its timestamps.
pub type OpSig = (
    OperationId,
    OperationType,
    Option<String>,
    OperationStatus,
    Option<String>,
    Option<ErrorObject>,
    Option<u32>,
);

pub(super) fn signature(arn: &str, op: &Operation) -> OpSig {
    let d = op.step_details.as_deref();
    // Every execution has its own id: compare the rest.
    let id = match op.op_type {
        OperationType::Execution => OperationId::new("execution").unwrap_or(op.id),
        _ => op.id,
    };
    let c = op.context_details.as_deref();
    let result = d
        .and_then(|d| d.result.as_ref())
        .or(c.and_then(|c| c.result.as_ref()))
        .map(|p| p.as_str());
    (
        id,
        op.op_type,
        op.name.as_deref().map(str::to_owned),
        op.status,
        result.map(|p| opened(arn, op, p)),
        d.and_then(|d| d.error.clone())
            .or(c.and_then(|c| c.error.clone())),
        d.and_then(|d| d.attempt),
    )
}

/// A recorded result as compared between executions: sealed payloads
/// (fresh nonces, bound to their own execution) by what they open to in
/// their execution, the rest as they are.
pub(super) fn opened(arn: &str, op: &Operation, payload: &str) -> String {
    let codec = sealed_codec();
    if !payload.starts_with(codec.id()) {
        return payload.to_owned();
    }
    let cx = PayloadContext::new(arn, op.id.as_str());
    match from_payload::<_, String>(&codec, payload, &cx) {
        Ok(value) => format!("sealed {value:?}"),
        // Never equal between two executions: their payloads differ.
        Err(e) => format!("unopened {payload}: {e}"),
    }
}

pub(super) fn record(execution: &LocalExecution) -> Result<Recorded, String> {
    let run = execution
        .finish::<String>()
        .map_err(|e| format!("finish: {e}"))?;
    Ok(Recorded {
        status: run.status,
        outcome: match (run.result, run.error) {
            (Some(r), _) => Ok(r),
            (None, Some(e)) => Err(e),
            (None, None) => Err(ErrorObject::new("Running", "not finished")),
        },
        // Concurrent branches create their operations in an order that
        // depends on timing; what is recorded about each does not.
        operations: {
            let arn = run.arn.clone();
            let mut ops: Vec<OpSig> = run
                .operations
                .iter()
                .map(|op| signature(&arn, op))
                .collect();
            ops.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            ops
        },
    })
}

/// The invocation in which each operation's terminal update was applied.
pub(super) fn terminal_invocations(execution: &LocalExecution) -> BTreeMap<Option<String>, u32> {
    let mut invocation = 0;
    let mut out = BTreeMap::new();
    for event in execution.timeline().events {
        match event {
            TimelineEvent::Invoked { invocation: n, .. } => invocation = n,
            TimelineEvent::Applied {
                name,
                action: OperationAction::Succeed | OperationAction::Fail,
                op_type: OperationType::Step,
                ..
            } => {
                out.entry(name.map(String::from)).or_insert(invocation);
            }
            _ => {}
        }
    }
    out
}

/// What a generated program nests: `(child contexts, batches, branches)`
/// over all its calls, however deep.
pub fn nesting(ops: &[Op]) -> (usize, usize, usize) {
    ops.iter().fold((0, 0, 0), |(c, b, n), op| match op {
        Op::Child { body, .. } => {
            let (c2, b2, n2) = nesting(body);
            (c + 1 + c2, b + b2, n + n2)
        }
        Op::Batch { branches, .. } => {
            branches
                .iter()
                .fold((c, b + 1, n + branches.len()), |acc, body| {
                    let (c2, b2, n2) = nesting(body);
                    (acc.0 + c2, acc.1 + b2, acc.2 + n2)
                })
        }
        _ => (c, b, n),
    })
}

/// How many wait-for-conditions, callbacks and, of those, wait-for-callbacks
/// a program holds, however deep.
pub fn external_ops(ops: &[Op]) -> (usize, usize, usize) {
    ops.iter().fold((0, 0, 0), |(k, a, w), op| match op {
        Op::Condition { .. } => (k + 1, a, w),
        Op::Callback { wait, .. } => (k, a + 1, w + usize::from(*wait)),
        Op::Child { body, .. } => {
            let (k2, a2, w2) = external_ops(body);
            (k + k2, a + a2, w + w2)
        }
        Op::Batch { branches, .. } => branches.iter().fold((k, a, w), |(k, a, w), b| {
            let (k2, a2, w2) = external_ops(b);
            (k + k2, a + a2, w + w2)
        }),
        _ => (k, a, w),
    })
}

/// How many flat batches, virtual child contexts and unnamed operations a
/// program holds, however deep.
pub fn shapes(ops: &[Op]) -> (usize, usize, usize) {
    ops.iter().fold((0, 0, 0), |(f, v, u), op| {
        let here = match op {
            Op::Batch { flat: true, .. } => (1, 0, 0),
            Op::Child {
                is_virtual: true, ..
            } => (0, 1, 0),
            Op::Wait { unnamed: true, .. } | Op::Invoke { unnamed: true, .. } => (0, 0, 1),
            _ => (0, 0, 0),
        };
        let inner = match op {
            Op::Child { body, .. } => shapes(body),
            Op::Batch { branches, .. } => branches.iter().fold((0, 0, 0), |acc, b| {
                let s = shapes(b);
                (acc.0 + s.0, acc.1 + s.1, acc.2 + s.2)
            }),
            _ => (0, 0, 0),
        };
        (
            f + here.0 + inner.0,
            v + here.1 + inner.1,
            u + here.2 + inner.2,
        )
    })
}

/// How many batches of a program, however deep, hold more branches than
/// their admission window: those run in windows.
pub fn windowed_batches(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Batch {
                branches, window, ..
            } => {
                let here = window.is_some_and(|w| usize::from(w) < branches.len());
                usize::from(here) + branches.iter().map(|b| windowed_batches(b)).sum::<usize>()
            }
            Op::Child { body, .. } => windowed_batches(body),
            _ => 0,
        })
        .sum()
}

/// How many batches of a program, however deep, may end while branches
/// still run: a completion policy other than `all`, more than one branch,
/// and room for more than one at a time. Which of their branches finish,
/// and so their results, may rightly differ between an uninterrupted run
/// and a crashed one (a crash costs the branches that were running their
/// unrecorded progress, not the others).
pub fn racing_batches(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Batch { branches, .. } => {
                usize::from(is_racing(op))
                    + branches.iter().map(|b| racing_batches(b)).sum::<usize>()
            }
            Op::Child { body, .. } => racing_batches(body),
            _ => 0,
        })
        .sum()
}

pub(super) fn is_racing(op: &Op) -> bool {
    matches!(
        op,
        Op::Batch { branches, max_concurrency, policy, .. }
            if *policy != Policy::All
                && branches.len() > 1
                && max_concurrency.is_none_or(|n| n > 1)
    )
}

/// The names of a program's racing batches (see [`racing_batches`]).
pub(super) fn racing_names(ops: &[Op], out: &mut Vec<String>) {
    for op in ops {
        match op {
            Op::Batch { name, branches, .. } => {
                if is_racing(op) {
                    out.push(name.clone());
                }
                for b in branches {
                    racing_names(b, out);
                }
            }
            Op::Child { body, .. } => racing_names(body, out),
            _ => {}
        }
    }
}

/// How many steps of a program, however deep, use `codec`.
pub fn steps_with(ops: &[Op], codec: CodecKind) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::Step { codec: c, .. } => usize::from(*c == codec),
            Op::Child { body, .. } => steps_with(body, codec),
            Op::Batch { branches, .. } => branches.iter().map(|b| steps_with(b, codec)).sum(),
            _ => 0,
        })
        .sum()
}

/// The name of the CALLBACK operation of a callback op: `wait_for_callback`
/// names its callback after itself.
pub(super) fn callback_name(name: &str, wait: bool) -> String {
    if wait {
        format!("{name} create callback id")
    } else {
        name.to_owned()
    }
}

/// A runner that answers the program's callbacks as the program says.
pub fn runner_for(programs: &[&Program]) -> LocalRunner {
    fn add(runner: LocalRunner, ops: &[Op]) -> LocalRunner {
        ops.iter().fold(runner, |runner, op| match op {
            Op::Callback {
                name, answer, wait, ..
            } => match *answer {
                Answering::Success(after) => runner.answer_callback(
                    callback_name(name, *wait),
                    CallbackAnswer::success(&format!("{name}-ok"))
                        .after(Duration::from_secs(u64::from(after))),
                ),
                Answering::Failure(after) => runner.answer_callback(
                    callback_name(name, *wait),
                    CallbackAnswer::failure(ErrorObject::new("Refused", name.clone()))
                        .after(Duration::from_secs(u64::from(after))),
                ),
                Answering::Never => runner,
            },
            Op::Child { body, .. } => add(runner, body),
            Op::Batch { branches, .. } => branches.iter().fold(runner, |r, b| add(r, b)),
            _ => runner,
        })
    }
    let echo = LocalRunner::new().register_function("echo", Ok);
    programs.iter().fold(echo, |runner, p| add(runner, &p.ops))
}
