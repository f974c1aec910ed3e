//! Properties of durable-yield checked on generated inputs: by the
//! cargo-fuzz targets in `fuzz/` (coverage-guided, nightly) and by
//! `tests/properties.rs` (fixed seeds, on stable, in every CI run).
//!
//! Each `check_*` function takes raw bytes, builds its input with
//! [`arbitrary`], and returns `Err` with a description when a property is
//! violated. A panic anywhere is a violation too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use durable_yield::codecs::compress::Compressed;
use durable_yield::codecs::files::{FileSystem, StorageMode};
use durable_yield::codecs::seal::{
    Encrypted, Sealed, SealedFields, StaticKeyring, referenced_key_ids,
};
use durable_yield::codecs::{
    Bincode, Codec, Json, MsgPack, PayloadContext, from_payload, to_payload,
};
use durable_yield::id::operation_id;
use durable_yield::local::CallbackAnswer;
use durable_yield::local::CrashPoint;
use durable_yield::local::TimelineEvent;
use durable_yield::model::{
    ErrorObject, InvocationInput, InvocationStatus, Operation, OperationAction, OperationId,
    OperationStatus, OperationType,
};
use durable_yield::retry::FixedDelay;
use durable_yield::{
    Branch, CallbackConfig, ChildConfig, CompletionPolicy, Condition, ConditionConfig,
    ExecutionStatus, InvokeConfig, LocalExecution, LocalRunner, MapConfig, Nesting, ParallelConfig,
    StepConfig, StepError, StepFailure, StepSemantics, WaitConfig, WaitForCallbackConfig, Workflow,
};
use serde::{Deserialize, Serialize};

use crate::drive;

/// The codec of a generated step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum CodecKind {
    /// JSON.
    Json,
    /// bincode.
    Bincode,
    /// MessagePack.
    MsgPack,
    /// JSON compressed with zstd (even small values: threshold 0).
    Compressed,
    /// MessagePack compressed, then encrypted (a fixed test keyring): bound to
    /// the execution and the step, fresh nonces on every run.
    Sealed,
    /// JSON whose storage may be unreachable for a while
    /// ([`crate::Flaky`], untagged): in the crashed run of
    /// `replay_determinism`, the step's first encode and first decode fail
    /// transiently.
    Flaky,
}

/// The codec of [`CodecKind::Compressed`].
fn compressed_codec() -> Compressed<Json> {
    Compressed::new(Json).threshold(0)
}

/// The codec of [`CodecKind::Sealed`].
fn sealed_codec() -> Encrypted<Compressed<MsgPack>> {
    Encrypted::new(Compressed::new(MsgPack).threshold(0), fuzz_keys())
}

/// One generated durable call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A step.
    Step {
        /// Its (unique) name.
        name: String,
        /// Its codec.
        codec: CodecKind,
        /// At-most-once semantics.
        at_most_once: bool,
        /// How many attempts fail before one succeeds.
        failures: u8,
        /// Attempts allowed (1 to 3).
        max_attempts: u8,
        /// Seconds between attempts.
        retry_delay: u8,
    },
    /// A wait.
    Wait {
        /// Its (unique) name.
        name: String,
        /// Seconds, 1 to 3600.
        seconds: u16,
        /// Recorded without a name.
        unnamed: bool,
    },
    /// A child context running `body`; it fails if a step in it failed.
    Child {
        /// Its (unique) name.
        name: String,
        /// Its calls.
        body: Vec<Op>,
        /// A virtual context: nothing recorded of its own.
        is_virtual: bool,
    },
    /// A wait-for-condition on a counter: met once it reaches `target`,
    /// checked `delay` seconds apart, `max_attempts` checks at most.
    Condition {
        /// Its (unique) name.
        name: String,
        /// The count at which the condition holds (1 to 4).
        target: u8,
        /// Seconds between checks (1 to 90).
        delay: u8,
        /// Checks allowed (1 to 4).
        max_attempts: u8,
    },
    /// A callback, answered by the runner (or timing out), then awaited:
    /// created and awaited apart, or with `wait_for_callback` (a context
    /// holding the callback and its submitter step).
    Callback {
        /// Its (unique) name.
        name: String,
        /// Its time-out in seconds (1 to 3600).
        timeout: u16,
        /// How the runner answers it.
        answer: Answering,
        /// Whether it is a `wait_for_callback`.
        wait: bool,
    },
    /// A chained invoke of the runner's `echo` function (or of a missing
    /// one).
    Invoke {
        /// Its (unique) name.
        name: String,
        /// Whether the function exists.
        known: bool,
        /// Recorded without a name.
        unnamed: bool,
    },
    /// A map (or parallel) whose branch `i` runs `branches[i]`; a branch
    /// fails if a step in it failed.
    Batch {
        /// Its (unique) name.
        name: String,
        /// Parallel rather than map.
        parallel: bool,
        /// The branches' calls.
        branches: Vec<Vec<Op>>,
        /// At most this many branches at once (unset: all).
        max_concurrency: Option<u8>,
        /// Without `max_concurrency`: the admission window, when smaller
        /// than the SDK's (`admission_window`), so that the window
        /// machinery (room made by finished branches, widening when all
        /// wait, reused context slots) runs in small batches too.
        window: Option<u8>,
        /// When the batch ends.
        policy: Policy,
        /// Flat: items and branches record no CONTEXT of their own.
        flat: bool,
    },
}

/// How the runner answers a generated callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Answering {
    /// Succeeds it this many seconds after it started.
    Success(u16),
    /// Fails it this many seconds after it started.
    Failure(u16),
    /// Never: it times out.
    Never,
}

/// The completion policy of a generated batch. Policies that can end a
/// batch early mostly come with a concurrency of 1; a third of them run
/// two or three branches at once, and then which of them finished when the
/// batch ended is up to timing (and so is the batch's result, until it is
/// recorded): the crash property compares such batches more weakly (see
/// [`racing_batches`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Policy {
    /// Every branch runs.
    All,
    /// The first failure ends the batch.
    FailFast,
    /// Ends after this many successes (at least 1).
    MinSuccessful(u8),
    /// Ends when more than this many failed.
    ToleratedFailures(u8),
}

impl Policy {
    fn to_policy(self) -> CompletionPolicy {
        match self {
            Policy::All => CompletionPolicy::all(),
            Policy::FailFast => CompletionPolicy::fail_fast(),
            Policy::MinSuccessful(n) => {
                CompletionPolicy::default().min_successful(usize::from(n.max(1)))
            }
            Policy::ToleratedFailures(n) => {
                CompletionPolicy::default().tolerated_failure_count(usize::from(n))
            }
        }
    }
}

impl Op {
    /// The op's name.
    pub fn name(&self) -> &str {
        match self {
            Op::Step { name, .. }
            | Op::Wait { name, .. }
            | Op::Child { name, .. }
            | Op::Condition { name, .. }
            | Op::Callback { name, .. }
            | Op::Invoke { name, .. }
            | Op::Batch { name, .. } => name,
        }
    }

    /// What the op records at its position: `None` for nothing (a virtual
    /// child), else its recorded name (`None` when unnamed).
    pub fn recorded_name(&self) -> Option<Option<&str>> {
        match self {
            Op::Child {
                is_virtual: true, ..
            } => None,
            Op::Wait { unnamed: true, .. } | Op::Invoke { unnamed: true, .. } => Some(None),
            other => Some(Some(other.name())),
        }
    }
}

impl Op {
    /// The type the op records at its position (if it records one there).
    pub fn recorded_type(&self) -> OperationType {
        match self {
            Op::Step { .. } | Op::Condition { .. } => OperationType::Step,
            Op::Wait { .. } => OperationType::Wait,
            Op::Callback { wait: false, .. } => OperationType::Callback,
            Op::Callback { wait: true, .. } | Op::Child { .. } | Op::Batch { .. } => {
                OperationType::Context
            }
            Op::Invoke { .. } => OperationType::ChainedInvoke,
        }
    }
}

/// Whether a program holds a virtual child context, however deep.
pub fn has_virtual(ops: &[Op]) -> bool {
    ops.iter().any(|op| match op {
        Op::Child {
            is_virtual: true, ..
        } => true,
        Op::Child { body, .. } => has_virtual(body),
        Op::Batch { branches, .. } => branches.iter().any(|b| has_virtual(b)),
        _ => false,
    })
}

/// A generated workflow program: durable calls in order, names unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// The calls.
    pub ops: Vec<Op>,
}

/// Generates one call; `next` numbers names (unique in the program),
/// `depth` is the nesting level (0 at the root).
fn gen_op(u: &mut Unstructured<'_>, next: &mut usize, depth: u8) -> arbitrary::Result<Op> {
    let index = *next;
    *next += 1;
    let kind = u.int_in_range(0..=18)?;
    Ok(match kind {
        // Nested calls only to a depth of 2, and fewer of them.
        12 | 13 if depth < 2 => Op::Child {
            name: format!("c{index}"),
            body: gen_body(u, next, depth + 1, 3)?,
            is_virtual: u.ratio(1, 4)?,
        },
        14 | 15 if depth < 2 => {
            let n = u.int_in_range(0..=4)?;
            let branches = (0..n)
                .map(|_| gen_body(u, next, depth + 1, 2))
                .collect::<Result<_, _>>()?;
            let policy: Policy = u.arbitrary()?;
            let max_concurrency = if policy == Policy::All {
                if u.ratio(1, 2)? {
                    None
                } else {
                    Some(u.int_in_range(1..=3)?)
                }
            } else if index.is_multiple_of(3) {
                // A third of the batches that may end early run two or
                // three branches side by side (picked from the call's
                // number, like the window below): when such a batch ends,
                // branches still running are abandoned, and which branches
                // finish first may rightly change under a crash (see
                // `racing_batches`).
                Some(2 + (index / 3 % 2) as u8)
            } else {
                Some(1)
            };
            // Half the unbounded batches run in a window of 1 or 2, picked
            // from the call's number: no input byte is read for it, so the
            // kept inputs (corpus, regressions) decode to the same calls.
            let window = (max_concurrency.is_none() && index.is_multiple_of(2))
                .then_some(1 + (index / 2 % 2) as u8);
            Op::Batch {
                name: format!("b{index}"),
                parallel: u.arbitrary()?,
                branches,
                max_concurrency,
                window,
                policy,
                flat: u.ratio(1, 3)?,
            }
        }
        16 => Op::Condition {
            name: format!("k{index}"),
            target: u.int_in_range(1..=4)?,
            delay: u.int_in_range(1..=90)?,
            max_attempts: u.int_in_range(1..=4)?,
        },
        18 => Op::Invoke {
            name: format!("i{index}"),
            known: u.ratio(3, 4)?,
            unnamed: u.ratio(1, 3)?,
        },
        17 => Op::Callback {
            name: format!("a{index}"),
            timeout: u.int_in_range(1..=3600)?,
            answer: u.arbitrary()?,
            wait: u.ratio(1, 3)?,
        },
        0..=8 | 12..=15 => Op::Step {
            name: format!("s{index}"),
            codec: u.arbitrary()?,
            // Inside contexts, an interrupted attempt would change the
            // context's result too: at-most-once steps stay at the root.
            at_most_once: depth == 0 && u.ratio(1, 4)?,
            failures: u.int_in_range(0..=3)?,
            max_attempts: u.int_in_range(1..=3)?,
            retry_delay: u.int_in_range(1..=90)?,
        },
        _ => Op::Wait {
            name: format!("w{index}"),
            seconds: u.int_in_range(1..=3600)?,
            unnamed: u.ratio(1, 3)?,
        },
    })
}

fn gen_body(
    u: &mut Unstructured<'_>,
    next: &mut usize,
    depth: u8,
    max: usize,
) -> arbitrary::Result<Vec<Op>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| gen_op(u, next, depth)).collect()
}

impl<'a> Arbitrary<'a> for Program {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut next = 0;
        let ops = gen_body(u, &mut next, 0, 10)?;
        Ok(Program { ops })
    }
}

/// One run of a step body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// The step's name.
    pub name: String,
    /// The attempt.
    pub attempt: u32,
    /// The invocation it ran in (from 1).
    pub invocation: u32,
}

/// Shared state of a program's runs: body executions and the invocation
/// counter.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// Every body execution.
    pub execs: Arc<Mutex<Vec<Exec>>>,
    /// Invocations so far.
    pub invocations: Arc<AtomicU32>,
    /// The codecs of the [`CodecKind::Flaky`] steps that fail, by step
    /// name (a step not here never fails).
    pub flaky: Arc<Mutex<HashMap<String, crate::Flaky>>>,
}

type Run = Pin<Box<dyn Future<Output = Result<String, StepError>> + Send>>;

/// The value a step returns: a function of its name and attempt only.
fn value(name: &str, attempt: u32) -> String {
    format!("{name}@{attempt}")
}

async fn run_step<C: Codec + Clone>(
    wf: &mut Workflow,
    codec: C,
    op: &Op,
    probe: &Probe,
    invocation: u32,
) -> Result<String, StepError> {
    let Op::Step {
        name,
        at_most_once,
        failures,
        max_attempts,
        retry_delay,
        ..
    } = op.clone()
    else {
        return Ok(String::new());
    };
    let semantics = if at_most_once {
        StepSemantics::AtMostOncePerRetry
    } else {
        StepSemantics::AtLeastOncePerRetry
    };
    let config = StepConfig::named(name.clone())
        .codec(codec)
        .semantics(semantics)
        .retry(FixedDelay::new(
            Duration::from_secs(u64::from(retry_delay)),
            u32::from(max_attempts),
        ));
    let execs = probe.execs.clone();
    wf.step_with(config, move |ctx| async move {
        execs.lock().unwrap_or_else(|p| p.into_inner()).push(Exec {
            name: name.clone(),
            attempt: ctx.attempt(),
            invocation,
        });
        if ctx.attempt() <= u32::from(failures) {
            Err(StepFailure::new(
                "Flaky",
                format!("{name} attempt {}", ctx.attempt()),
            ))
        } else {
            Ok(value(&name, ctx.attempt()))
        }
    })
    .await
}

/// Runs `ops` in order on `wf`; a failed call's error is noted and the
/// calls go on. Returns one note per call.
fn run_ops<'a>(
    wf: &'a mut Workflow,
    ops: &'a [Op],
    probe: &'a Probe,
    invocation: u32,
) -> Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>> {
    Box::pin(async move {
        let mut notes = Vec::new();
        for op in ops {
            let outcome = match op {
                Op::Wait {
                    name,
                    seconds,
                    unnamed,
                } => {
                    let config = if *unnamed {
                        WaitConfig::new()
                    } else {
                        WaitConfig::named(name.clone())
                    };
                    wf.wait(config, Duration::from_secs(u64::from(*seconds)))
                        .await;
                    Ok(format!("{name} waited"))
                }
                Op::Step { codec, name, .. } => match codec {
                    CodecKind::Json => run_step(wf, Json, op, probe, invocation).await,
                    CodecKind::Bincode => run_step(wf, Bincode, op, probe, invocation).await,
                    CodecKind::MsgPack => run_step(wf, MsgPack, op, probe, invocation).await,
                    CodecKind::Compressed => {
                        run_step(wf, compressed_codec(), op, probe, invocation).await
                    }
                    CodecKind::Sealed => run_step(wf, sealed_codec(), op, probe, invocation).await,
                    CodecKind::Flaky => {
                        let codec = probe
                            .flaky
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get(name)
                            .cloned()
                            .unwrap_or_else(|| crate::Flaky {
                                untagged: true,
                                ..crate::Flaky::default()
                            });
                        run_step(wf, codec, op, probe, invocation).await
                    }
                },
                Op::Child {
                    name,
                    body,
                    is_virtual,
                } => {
                    let (body, probe) = (body.clone(), probe.clone());
                    let mut config = ChildConfig::named(name.clone());
                    if *is_virtual {
                        config = config.virtual_context();
                    }
                    wf.child_with(config, move |mut wf| async move {
                        context_body(&mut wf, &body, &probe, invocation).await
                    })
                    .await
                }
                Op::Batch {
                    name,
                    parallel,
                    branches,
                    max_concurrency,
                    window,
                    policy,
                    flat,
                } => {
                    let shape = BatchShape {
                        parallel: *parallel,
                        max_concurrency: *max_concurrency,
                        window: *window,
                        policy: *policy,
                        nesting: if *flat {
                            Nesting::Flat
                        } else {
                            Nesting::Nested
                        },
                    };
                    run_batch(wf, name, shape, branches, probe, invocation).await
                }
                Op::Condition {
                    name,
                    target,
                    delay,
                    max_attempts,
                } => {
                    let strategy = FixedDelay::new(
                        Duration::from_secs(u64::from(*delay)),
                        u32::from(*max_attempts),
                    );
                    let config = ConditionConfig::named(name.clone()).strategy(strategy);
                    let (execs, target, check_name) = (probe.execs.clone(), *target, name.clone());
                    wf.wait_for_condition_with(config, 0u8, move |ctx, n| async move {
                        execs.lock().unwrap_or_else(|p| p.into_inner()).push(Exec {
                            name: check_name,
                            attempt: ctx.attempt(),
                            invocation,
                        });
                        let n = n + 1;
                        Ok(if n >= target {
                            Condition::Met(n)
                        } else {
                            Condition::NotMet(n)
                        })
                    })
                    .await
                    .map(|n| format!("{name} reached {n}"))
                }
                Op::Invoke {
                    name,
                    known,
                    unnamed,
                } => {
                    let target = if *known { "echo" } else { "missing" };
                    // The input is what the call records under: its name,
                    // or nothing when unnamed. Replay answers a recorded
                    // invoke with its recorded result whatever the input
                    // now is (as AWS's SDKs do), so an input made from the
                    // unrecorded name of an unnamed call would make a
                    // rename look like a silently different result.
                    let (config, input) = if *unnamed {
                        (InvokeConfig::new(), "unnamed-in".to_owned())
                    } else {
                        (InvokeConfig::named(name.clone()), format!("{name}-in"))
                    };
                    match wf
                        .invoke_with::<_, String, _, _>(config, target, &input)
                        .await
                    {
                        Ok(v) => Ok(format!("{name} got {v}")),
                        Err(e) => Ok(format!("{name} ended {:?}", e.ending())),
                    }
                }
                Op::Callback {
                    name,
                    timeout,
                    wait: true,
                    ..
                } => {
                    let config = WaitForCallbackConfig::named(name.clone())
                        .timeout(Duration::from_secs(u64::from(*timeout)));
                    let answer = wf
                        .wait_for_callback_with::<String, _, _, _>(config, |_ctx, _id| async {
                            Ok(())
                        })
                        .await;
                    match answer {
                        Ok(v) => Ok(format!("{name} answered {v}")),
                        Err(e) => Ok(format!(
                            "{name} ended {}",
                            e.error_type().unwrap_or("without a type")
                        )),
                    }
                }
                Op::Callback { name, timeout, .. } => {
                    let config = CallbackConfig::named(name.clone())
                        .timeout(Duration::from_secs(u64::from(*timeout)));
                    let cb = wf.create_callback_with::<String, _>(config).await;
                    match wf.callback_result(&cb).await {
                        Ok(v) => Ok(format!("{name} answered {v}")),
                        Err(e) => Ok(format!("{name} ended {:?}", e.ending())),
                    }
                }
            };
            notes.push(match outcome {
                Ok(v) => v,
                Err(e) => format!("error: {e}"),
            });
        }
        notes
    })
}

/// The body of a child context or branch: fails if one of its calls did.
async fn context_body(
    wf: &mut Workflow,
    ops: &[Op],
    probe: &Probe,
    invocation: u32,
) -> Result<String, String> {
    let notes = run_ops(wf, ops, probe, invocation).await;
    let joined = notes.join(", ");
    if notes.iter().any(|n| n.starts_with("error")) {
        Err(joined)
    } else {
        Ok(joined)
    }
}

/// How a generated batch runs.
struct BatchShape {
    parallel: bool,
    max_concurrency: Option<u8>,
    window: Option<u8>,
    policy: Policy,
    nesting: Nesting,
}

async fn run_batch(
    wf: &mut Workflow,
    name: &str,
    shape: BatchShape,
    branches: &[Vec<Op>],
    probe: &Probe,
    invocation: u32,
) -> Result<String, StepError> {
    let BatchShape {
        parallel,
        max_concurrency,
        window,
        policy,
        nesting,
    } = shape;
    let result = if parallel {
        let mut config = ParallelConfig::named(name.to_owned())
            .completion(policy.to_policy())
            .nesting(nesting);
        if let Some(n) = max_concurrency {
            config = config.max_concurrency(usize::from(n));
        }
        if let Some(n) = window {
            config = config.admission_window(usize::from(n));
        }
        let branches = branches
            .iter()
            .map(|body| {
                let (body, probe) = (body.clone(), probe.clone());
                Branch::new(move |mut wf| async move {
                    context_body(&mut wf, &body, &probe, invocation).await
                })
            })
            .collect();
        wf.parallel_with(config, branches).await?
    } else {
        let mut config = MapConfig::named(name.to_owned())
            .completion(policy.to_policy())
            .nesting(nesting);
        if let Some(n) = max_concurrency {
            config = config.max_concurrency(usize::from(n));
        }
        if let Some(n) = window {
            config = config.admission_window(usize::from(n));
        }
        let probe = probe.clone();
        wf.map_with(config, branches.to_vec(), move |mut wf, body, _| {
            let probe = probe.clone();
            async move { context_body(&mut wf, &body, &probe, invocation).await }
        })
        .await?
    };
    let items: Vec<String> = result
        .items()
        .iter()
        .map(|item| match (&item.result, &item.error) {
            (Some(v), _) => format!("ok({v})"),
            (_, Some(e)) => format!("err({})", e.error_message.as_deref().unwrap_or("")),
            _ => format!("{:?}", item.status),
        })
        .collect();
    Ok(format!(
        "{name} {} [{}]",
        result.completion_reason(),
        items.join(" | ")
    ))
}

/// The workflow of `program`: runs every call in order; a failed call's
/// error is noted and the workflow goes on. Returns the notes.
pub fn workflow(
    program: Program,
    probe: Probe,
) -> impl Fn(Workflow, ()) -> Run + Send + Sync + 'static {
    let program = Arc::new(program);
    move |mut wf: Workflow, _: ()| {
        let program = program.clone();
        let probe = probe.clone();
        let invocation = probe.invocations.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            let notes = run_ops(&mut wf, &program.ops, &probe, invocation).await;
            Ok(notes.join("; "))
        })
    }
}

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

fn signature(arn: &str, op: &Operation) -> OpSig {
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
fn opened(arn: &str, op: &Operation, payload: &str) -> String {
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

fn record(execution: &LocalExecution) -> Result<Recorded, String> {
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
fn terminal_invocations(execution: &LocalExecution) -> BTreeMap<Option<String>, u32> {
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

fn is_racing(op: &Op) -> bool {
    matches!(
        op,
        Op::Batch { branches, max_concurrency, policy, .. }
            if *policy != Policy::All
                && branches.len() > 1
                && max_concurrency.is_none_or(|n| n > 1)
    )
}

/// The names of a program's racing batches (see [`racing_batches`]).
fn racing_names(ops: &[Op], out: &mut Vec<String>) {
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
fn callback_name(name: &str, wait: bool) -> String {
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

struct HookCheck {
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
struct CheckedScope {
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

/// Input of [`check_replay_determinism`].
#[derive(Debug, Clone, Arbitrary)]
pub struct CrashCase {
    /// The program.
    pub program: Program,
    /// Up to three crashes: (checkpoint request number, after the request?).
    pub crashes: Vec<(u8, bool)>,
}

/// Runs `program` uninterrupted, then again with crashes injected before or
/// after checkpoint requests, and each [`CodecKind::Flaky`] step's first
/// encode and first decode failing transiently (each fails the invocation).
/// Properties: the same outcome and the same operations (unless a crash or
/// a transient failure interrupted an at-most-once attempt, which then
/// counts as failed); no step body runs again after its step's outcome was
/// recorded; an at-most-once step's body never runs twice in one attempt.
pub fn check_replay_determinism(data: &[u8]) -> Result<(), String> {
    replay_determinism(data).map(|_| ())
}

/// The names of the [`CodecKind::Flaky`] steps of `ops`, however deep.
fn flaky_steps(ops: &[Op], out: &mut Vec<String>) {
    for op in ops {
        match op {
            Op::Step {
                name,
                codec: CodecKind::Flaky,
                ..
            } => out.push(name.clone()),
            Op::Child { body, .. } => flaky_steps(body, out),
            Op::Batch { branches, .. } => branches.iter().for_each(|b| flaky_steps(b, out)),
            _ => {}
        }
    }
}

/// [`check_replay_determinism`], returning how many transient codec
/// failures the crashed run met (`None`: the input decodes to no case).
pub fn replay_determinism(data: &[u8]) -> Result<Option<u32>, String> {
    let Ok(case) = CrashCase::arbitrary_take_rest(Unstructured::new(data)) else {
        return Ok(None);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let plain_probe = Probe::default();
        let plain = runner_for(&[&case.program])
            .start(&())
            .map_err(|e| e.to_string())?;
        let wf = workflow(case.program.clone(), plain_probe.clone());
        drive(&plain, &wf, 500).await?;
        let expected = record(&plain)?;

        // The crashed run is also observed by a plugin: observing must not
        // change what the interpreter does, and the hooks keep their
        // promises under crashes. It gets its state in pages of 1 to 4
        // operations (the plain run in one page): paging must not change
        // it either.
        let probe = Probe::default();
        let mut flaky = Vec::new();
        flaky_steps(&case.program.ops, &mut flaky);
        probe
            .flaky
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(flaky.into_iter().map(|name| {
                let codec = crate::Flaky {
                    encode_failures: Arc::new(AtomicU32::new(1)),
                    decode_failures: Arc::new(AtomicU32::new(1)),
                    untagged: true,
                    ..crate::Flaky::default()
                };
                (name, codec)
            }));
        let checker = HookChecker::default();
        let page = case
            .crashes
            .iter()
            .fold(0usize, |a, c| a + usize::from(c.0))
            % 4
            + 1;
        // Each transient failure fails an invocation too: more in a row
        // than AWS's emulator allows (5) must not end the execution here.
        let crashed = runner_for(&[&case.program])
            .plugin(checker.clone())
            .page_size(page)
            .max_failed_invocations(64)
            .start(&())
            .map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        for &(request, after) in case.crashes.iter().take(3) {
            let request = u64::from(request % 40) + 1;
            if !seen.contains(&request) {
                seen.push(request);
                let point = if after {
                    CrashPoint::AfterRequest
                } else {
                    CrashPoint::BeforeRequest
                };
                crashed.inject_crash(request, point);
            }
        }
        let wf = workflow(case.program.clone(), probe.clone());
        drive(&crashed, &wf, 500).await?;
        let actual = record(&crashed)?;
        // A crash (or a transient codec failure) between an at-most-once
        // step's START and its outcome costs that step an attempt
        // (`StepInterrupted`), by design: that
        // step's status, result, error and attempt count, and its note in
        // the result, may then differ. Everything else must be identical.
        let interrupted: Vec<String> = crashed
            .timeline()
            .events
            .iter()
            .filter_map(|e| match e {
                TimelineEvent::Applied {
                    name: Some(name),
                    error: Some(error),
                    ..
                } if error.error_type.as_deref() == Some("StepInterrupted") => {
                    Some(name.to_string())
                }
                _ => None,
            })
            .collect();
        // Neither run updates anything under a context after it closed
        // (branches abandoned when their batch ended record nothing more).
        nothing_updated_after_its_context_closed(&plain)
            .map_err(|e| format!("uninterrupted: {e}"))?;
        nothing_updated_after_its_context_closed(&crashed)
            .map_err(|e| format!("crashes at {seen:?}: {e}"))?;
        let mut racing = Vec::new();
        racing_names(&case.program.ops, &mut racing);
        let scope = if racing.is_empty() {
            RaceScope::default()
        } else {
            RaceScope::of(&[&plain, &crashed], &racing)?
        };
        let difference = compare(&expected, &actual, &interrupted, &case.program, &scope);
        if let Some(difference) = difference {
            return Err(format!(
                "crashes at {seen:?} changed the execution ({difference}; interrupted: \
                 {interrupted:?}):\nexpected {expected:#?}\nactual {actual:#?}"
            ));
        }
        let broken = checker
            .broken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if !broken.is_empty() {
            return Err(format!("lifecycle hooks broke their promises: {broken:?}"));
        }
        let (starts, ends) = *checker
            .invocations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if starts != ends || starts == 0 {
            return Err(format!(
                "{starts} invocation starts and {ends} ends were reported"
            ));
        }
        let terminal = terminal_invocations(&crashed);
        let execs = probe
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for exec in &execs {
            if let Some(&at) = terminal.get(&Some(exec.name.clone()))
                && exec.invocation > at
            {
                return Err(format!(
                    "{} ran in invocation {} after its outcome was recorded in invocation {at}",
                    exec.name, exec.invocation
                ));
            }
        }
        for op in &case.program.ops {
            if let Op::Step {
                name,
                at_most_once: true,
                ..
            } = op
            {
                let mut attempts: Vec<u32> = execs
                    .iter()
                    .filter(|e| &e.name == name)
                    .map(|e| e.attempt)
                    .collect();
                let total = attempts.len();
                attempts.dedup();
                if attempts.len() != total {
                    return Err(format!(
                        "at-most-once step {name} ran twice in one attempt: {execs:?}"
                    ));
                }
            }
        }
        let flaky = probe.flaky.lock().unwrap_or_else(|p| p.into_inner());
        let failed = flaky
            .values()
            .map(|c| c.failed.load(Ordering::SeqCst))
            .sum();
        Ok(Some(failed))
    })
}

/// What racing batches (see [`racing_batches`]) may change between two
/// runs: the operations at and under them (which branches ran, and how
/// far) and the results of the contexts around them (which hold the
/// batches' results). Empty for a program without one.
#[derive(Default)]
struct RaceScope {
    /// Racing batches and everything under them, in either run.
    inside: HashSet<OperationId>,
    /// The contexts that hold a racing batch, in either run.
    around: HashSet<OperationId>,
}

impl RaceScope {
    fn of(executions: &[&LocalExecution], racing: &[String]) -> Result<Self, String> {
        let mut scope = RaceScope {
            inside: HashSet::new(),
            around: HashSet::new(),
        };
        for execution in executions {
            let run = execution
                .finish::<String>()
                .map_err(|e| format!("finish: {e}"))?;
            let parent: HashMap<OperationId, OperationId> = run
                .operations
                .iter()
                .filter_map(|op| op.parent_id.map(|p| (op.id, p)))
                .collect();
            let batches: HashSet<OperationId> = run
                .operations
                .iter()
                .filter(|op| {
                    op.op_type == OperationType::Context
                        && op
                            .name
                            .as_deref()
                            .is_some_and(|n| racing.iter().any(|r| r == n))
                })
                .map(|op| op.id)
                .collect();
            // Ancestors, nearest first (a bounded walk: a cycle is a bug).
            let ancestors = |id: OperationId| {
                std::iter::successors(parent.get(&id).copied(), |p| parent.get(p).copied())
                    .take(run.operations.len())
            };
            for op in &run.operations {
                if batches.contains(&op.id) || ancestors(op.id).any(|a| batches.contains(&a)) {
                    scope.inside.insert(op.id);
                }
            }
            for &batch in &batches {
                scope.around.extend(ancestors(batch));
            }
        }
        Ok(scope)
    }
}

/// Where `actual` differs from `expected`, if anywhere, other than in
/// what a crash may rightly change: the steps named in `interrupted` (an
/// at-most-once attempt a crash cut off counts as failed: their status,
/// result, error, attempts and note may differ, their id, type and name
/// not) and what `scope` holds (racing batches and what is under them may
/// differ, as may the notes of the top-level calls that hold them; the
/// contexts around them keep their identity and status). Everything else
/// must be identical: status, operations, results and notes.
fn compare(
    expected: &Recorded,
    actual: &Recorded,
    interrupted: &[String],
    program: &Program,
    scope: &RaceScope,
) -> Option<String> {
    if actual.status != expected.status {
        return Some("the statuses differ".to_owned());
    }
    let outside = |ops: &[OpSig]| -> Vec<OpSig> {
        ops.iter()
            .filter(|op| !scope.inside.contains(&op.0))
            .cloned()
            .collect()
    };
    let (e_ops, a_ops) = (outside(&expected.operations), outside(&actual.operations));
    if e_ops.len() != a_ops.len() {
        return Some(format!(
            "the operation counts outside racing batches differ ({} and {})",
            e_ops.len(),
            a_ops.len()
        ));
    }
    let exempt = |name: &Option<String>| name.as_ref().is_some_and(|n| interrupted.contains(n));
    for (e, a) in e_ops.iter().zip(&a_ops) {
        if scope.around.contains(&e.0) {
            if (e.0, e.1, &e.2, e.3) != (a.0, a.1, &a.2, a.3) {
                return Some(format!("the context {:?} changed identity or status", e.2));
            }
        } else if exempt(&e.2) {
            if (e.0, e.1, &e.2) != (a.0, a.1, &a.2) {
                return Some(format!(
                    "the interrupted operation {:?} changed identity",
                    e.2
                ));
            }
        } else if e != a {
            return Some(format!("operation {:?} differs", e.2));
        }
    }
    match (&expected.outcome, &actual.outcome) {
        (Ok(e), Ok(a)) => {
            let (e, a): (Vec<_>, Vec<_>) = (e.split("; ").collect(), a.split("; ").collect());
            if e.len() != a.len() {
                return Some("the results have different shapes".to_owned());
            }
            for ((op, en), an) in program.ops.iter().zip(&e).zip(&a) {
                let racing = racing_batches(std::slice::from_ref(op)) > 0;
                if en != an && !racing && !interrupted.iter().any(|n| n == op.name()) {
                    return Some(format!("the note of {} differs", op.name()));
                }
            }
            None
        }
        (e, a) => (e != a).then(|| "the outcomes differ".to_owned()),
    }
}

/// Whether the run's timeline applies an update to an operation under a
/// context (however deep) after that context's SUCCEED or FAIL: nothing
/// of a context runs or is recorded once it closed.
fn nothing_updated_after_its_context_closed(execution: &LocalExecution) -> Result<(), String> {
    let mut parent: HashMap<OperationId, OperationId> = HashMap::new();
    let mut closed: HashMap<OperationId, Option<String>> = HashMap::new();
    for event in execution.timeline().events {
        let TimelineEvent::Applied {
            id,
            op_type,
            name,
            action,
            parent: p,
            ..
        } = event
        else {
            continue;
        };
        if let Some(p) = p {
            parent.insert(id, p);
        }
        let mut at = parent.get(&id).copied();
        for _ in 0..=parent.len() {
            let Some(a) = at else { break };
            if let Some(context) = closed.get(&a) {
                return Err(format!(
                    "{:?} ({op_type:?} {action:?}) was updated after its context {context:?} closed",
                    name.as_deref()
                ));
            }
            at = parent.get(&a).copied();
        }
        if op_type == OperationType::Context
            && matches!(action, OperationAction::Succeed | OperationAction::Fail)
        {
            closed.insert(id, name.as_deref().map(str::to_owned));
        }
    }
    Ok(())
}

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

fn mutate(program: &Program, mutation: &Mutation) -> Program {
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

/// A struct for codec round trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub struct Sample {
    a: u64,
    b: String,
    c: Vec<i32>,
    d: Option<bool>,
    e: Shape,
    f: BTreeMap<String, u8>,
    g: (u8, i128),
}

/// An enum for codec round trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub enum Shape {
    /// A unit variant.
    Dot,
    /// A tuple variant.
    Line(u32),
    /// A struct variant.
    Box {
        /// Width.
        w: u16,
        /// Height.
        h: u16,
    },
}

fn decode_all<C: Codec>(codec: &C, text: &str, bytes: &[u8]) {
    let _ = from_payload::<_, u64>(codec, text, &PayloadContext::DETACHED);
    let _ = from_payload::<_, String>(codec, text, &PayloadContext::DETACHED);
    let _ = from_payload::<_, Vec<u32>>(codec, text, &PayloadContext::DETACHED);
    let _ = from_payload::<_, Sample>(codec, text, &PayloadContext::DETACHED);
    let _ = codec.decode::<Sample>(bytes, &PayloadContext::DETACHED);
    let _ = codec.decode::<Vec<String>>(bytes, &PayloadContext::DETACHED);
    let _ = codec.decode::<Option<Shape>>(bytes, &PayloadContext::DETACHED);
}

/// A [`Sample`] with sealed fields, for `SealedFields` round trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedSample {
    plain: u64,
    secret: Sealed<String>,
    nested: Option<Sealed<Sample>>,
}

impl<'a> Arbitrary<'a> for SealedSample {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(SealedSample {
            plain: u.arbitrary()?,
            secret: Sealed::new(u.arbitrary()?),
            nested: Option::<Sample>::arbitrary(u)?.map(Sealed::new),
        })
    }
}

fn fuzz_keys() -> StaticKeyring {
    StaticKeyring::new("k2", [2; 32]).with_retired("k1", [1; 32])
}

const FUZZ_ARN: &str = "arn:aws:lambda:us-east-1:1:function:f:1/durable-execution/n/exec";

/// Decoding arbitrary bytes with each codec (and the encrypting and
/// compressing wrappers) is an error, never a panic; encoding then
/// decoding a generated value gives it back; a sealed payload with any
/// one byte changed, or read for another operation, never decodes.
pub fn check_codecs(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let cx = PayloadContext::new(FUZZ_ARN, "op-1");
    decode_all(&Json, &text, data);
    decode_all(&Bincode, &text, data);
    decode_all(&MsgPack, &text, data);
    let _ = from_payload::<_, serde_json::Value>(&Json, &text, &PayloadContext::DETACHED);
    let _ = from_payload::<_, serde_json::Value>(&MsgPack, &text, &PayloadContext::DETACHED);
    for tagged in ["bincode:", "msgpack:"] {
        let payload = format!("{tagged}{text}");
        decode_all(&Bincode, &payload, data);
        decode_all(&MsgPack, &payload, data);
    }
    // The sealed and compressed formats, tagged and as raw bytes.
    let keys = fuzz_keys();
    let sealed_json = Encrypted::new(Json, keys.clone());
    let sealed_packed = Encrypted::new(Compressed::new(MsgPack), keys.clone());
    let fields = SealedFields::new(Json, keys.clone());
    let packed = Compressed::new(Json);
    let packed_bincode = Compressed::new(Bincode);
    let _ = referenced_key_ids(&text);
    for prefix in [
        "",
        "sealed.json:",
        "sealed.zstd.msgpack:",
        "zstd.json:",
        "zstd.bincode:",
    ] {
        let payload = format!("{prefix}{text}");
        let _ = referenced_key_ids(&payload);
        let _ = from_payload::<_, Sample>(&sealed_json, &payload, &cx);
        let _ = from_payload::<_, Sample>(&sealed_packed, &payload, &cx);
        let _ = from_payload::<_, SealedSample>(&fields, &payload, &cx);
        let _ = from_payload::<_, Sample>(&packed, &payload, &cx);
        let _ = from_payload::<_, Vec<String>>(&packed_bincode, &payload, &cx);
    }
    // File system envelopes: the text as an envelope, as an inline value
    // and as a path (the fuzz base holds no file; nothing outside it is
    // read).
    let files = FileSystem::new(std::env::temp_dir().join("durable-yield-fuzz-files"));
    let _ = from_payload::<_, Sample>(&files, &text, &cx);
    let _ = files.decode::<serde_json::Value>(data, &cx);
    for envelope in [
        serde_json::json!({ "data": text }),
        serde_json::json!({ "file": text }),
        serde_json::json!({ "file": files.base().join(&*text) }),
    ] {
        let _ = from_payload::<_, serde_json::Value>(&files, &envelope.to_string(), &cx);
    }
    let _ = sealed_json.decode::<Sample>(data, &cx);
    let _ = sealed_packed.decode::<serde_json::Value>(data, &cx);
    let _ = packed.decode::<Sample>(data, &cx);
    let _ = packed_bincode.decode::<Sample>(data, &cx);
    // A sealed field holding arbitrary text.
    let field = serde_json::json!({"plain": 1, "secret": format!("sealed:{text}"), "nested": null});
    let _ = from_payload::<_, SealedSample>(&fields, &field.to_string(), &cx);

    let mut u = Unstructured::new(data);
    let Ok(sample) = Sample::arbitrary(&mut u) else {
        return Ok(());
    };
    fn round_trip<C: Codec, T>(
        codec: &C,
        sample: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<String, String>
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let payload = to_payload(codec, sample, cx).map_err(|e| format!("encode: {e}"))?;
        let back: T = from_payload(codec, &payload, cx).map_err(|e| format!("decode: {e}"))?;
        if &back != sample {
            return Err(format!("{} changed {sample:?} into {back:?}", codec.id()));
        }
        Ok(payload)
    }
    let detached = PayloadContext::DETACHED;
    round_trip(&Json, &sample, &detached)?;
    round_trip(&Bincode, &sample, &detached)?;
    round_trip(&MsgPack, &sample, &detached)?;
    round_trip(&packed.clone().threshold(0), &sample, &cx)?;
    round_trip(&packed_bincode, &sample, &cx)?;
    // Inline (a sample is far below the threshold): no file is written.
    round_trip(&files.clone().mode(StorageMode::Overflow), &sample, &cx)?;
    let sealed = round_trip(&sealed_packed, &sample, &cx)?;
    round_trip(
        &Encrypted::new(Compressed::new(Bincode).threshold(0), keys.clone()),
        &sample,
        &cx,
    )?;
    if let Ok(with_fields) = SealedSample::arbitrary(&mut u) {
        round_trip(&fields, &with_fields, &cx)?;
        round_trip(&Encrypted::new(MsgPack, keys), &with_fields, &cx)?;
    }
    // Tampering: one changed character of the payload, or another operation.
    let elsewhere = PayloadContext::new(FUZZ_ARN, "op-2");
    if from_payload::<_, Sample>(&sealed_packed, &sealed, &elsewhere).is_ok() {
        return Err("a sealed payload opened for another operation".into());
    }
    if let (Ok(at), Ok(with)) = (u.int_in_range(0..=sealed.len() - 1), u.arbitrary::<u8>()) {
        let mut changed = sealed.clone().into_bytes();
        let replacement = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            [usize::from(with) % 64];
        if changed[at] != replacement {
            changed[at] = replacement;
            let changed = String::from_utf8_lossy(&changed);
            if let Ok(back) = from_payload::<_, Sample>(&sealed_packed, &changed, &cx) {
                // Base64 padding bits can change without changing the bytes.
                let same_bytes = changed
                    .split_once(':')
                    .zip(sealed.split_once(':'))
                    .is_some_and(|((_, a), (_, b))| {
                        use base64::Engine as _;
                        let engine = base64::engine::general_purpose::STANDARD;
                        engine.decode(a).ok() == engine.decode(b).ok()
                    });
                if !same_bytes {
                    return Err(format!("a changed sealed payload decoded: {back:?}"));
                }
            }
        }
    }
    Ok(())
}

/// How a generated step or wait is recorded (before corruptions).
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Recording {
    Succeeded,
    Failed,
    Started,
    Pending,
    Ready,
}

/// A targeted corruption of an otherwise valid history: each breaks one
/// rule, so that most generated histories still parse and reach the
/// interpreter, where replay is fuzzed.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Corruption {
    /// A type this SDK does not know.
    UnknownType(u8),
    /// A status this SDK does not know.
    UnknownStatus(u8),
    /// A step recorded as a wait or the other way round.
    SwapType(u8),
    /// Another name.
    Rename(u8),
    /// Another subtype.
    SubType(u8),
    /// A result no codec wrote, or one written by another codec, or 2 MiB.
    Payload(u8, u8),
    /// The same id again, later, with another status.
    Duplicate(u8, Recording),
    /// A parent id naming nothing.
    Parent(u8),
    /// An attempt count out of range.
    Attempt(u8, i64),
    /// An odd timestamp.
    Timestamp(u8, u8),
    /// No EXECUTION operation.
    NoExecution,
    /// An input the workflow cannot decode.
    Input(u8),
    /// An id the service would never send (empty or too long): the
    /// envelope does not parse.
    BadId(u8),
    /// A type that is not a string: the envelope does not parse.
    NotAString(u8),
}

fn status_name(recording: Recording) -> &'static str {
    match recording {
        Recording::Succeeded => "SUCCEEDED",
        Recording::Failed => "FAILED",
        Recording::Started => "STARTED",
        Recording::Pending => "PENDING",
        Recording::Ready => "READY",
    }
}

/// The JSON of a valid history for `program`: the EXECUTION operation and
/// one recorded operation per call of a prefix of the program.
fn valid_history(program: &Program, recordings: &[Recording]) -> Vec<serde_json::Value> {
    let mut ops = vec![serde_json::json!({
        "Id": "exec", "Type": "EXECUTION", "Status": "STARTED",
        "StartTimestamp": 1_795_755_619_735i64,
        "ExecutionDetails": {"InputPayload": "null"}
    })];
    for (i, (op, &recording)) in program.ops.iter().zip(recordings).enumerate() {
        let id = operation_id(None, i as u64 + 1).to_string();
        // A virtual child records nothing at its position.
        let Some(name) = op.recorded_name() else {
            continue;
        };
        let mut v = serde_json::json!({
            "Id": id, "StartTimestamp": 1_795_755_619_735i64,
        });
        if let Some(name) = name {
            v["Name"] = name.into();
        }
        match op {
            Op::Step { name, codec, .. } => {
                v["Type"] = "STEP".into();
                v["SubType"] = "Step".into();
                let result = match codec {
                    // A flaky step's payload is plain JSON.
                    CodecKind::Json | CodecKind::Flaky => {
                        to_payload(&Json, &value(name, 1), &PayloadContext::DETACHED)
                    }
                    CodecKind::Bincode => {
                        to_payload(&Bincode, &value(name, 1), &PayloadContext::DETACHED)
                    }
                    CodecKind::MsgPack => {
                        to_payload(&MsgPack, &value(name, 1), &PayloadContext::DETACHED)
                    }
                    CodecKind::Compressed => to_payload(
                        &compressed_codec(),
                        &value(name, 1),
                        &PayloadContext::DETACHED,
                    ),
                    CodecKind::Sealed => to_payload(
                        &sealed_codec(),
                        &value(name, 1),
                        &PayloadContext::new(FUZZ_ARN, &id),
                    ),
                }
                .unwrap_or_default();
                v["Status"] = status_name(recording).into();
                v["StepDetails"] = match recording {
                    Recording::Succeeded => serde_json::json!({"Attempt": 1, "Result": result}),
                    Recording::Failed => serde_json::json!({"Attempt": 1,
                        "Error": {"ErrorType": "Flaky", "ErrorMessage": "recorded"}}),
                    Recording::Started => serde_json::json!({"Attempt": 0}),
                    Recording::Pending => serde_json::json!({"Attempt": 1,
                        "NextAttemptTimestamp": 1_795_755_679_735i64}),
                    Recording::Ready => serde_json::json!({"Attempt": 1}),
                };
            }
            Op::Wait { .. } => {
                v["Type"] = "WAIT".into();
                v["SubType"] = "Wait".into();
                v["Status"] = match recording {
                    Recording::Succeeded | Recording::Failed => "SUCCEEDED",
                    _ => "STARTED",
                }
                .into();
                v["WaitDetails"] =
                    serde_json::json!({"ScheduledEndTimestamp": 1_795_755_679_735i64});
            }
            Op::Condition { .. } => {
                v["Type"] = "STEP".into();
                v["SubType"] = "WaitForCondition".into();
                v["Status"] = status_name(recording).into();
                v["StepDetails"] = match recording {
                    Recording::Succeeded => serde_json::json!({"Attempt": 2, "Result": "2"}),
                    Recording::Failed => serde_json::json!({"Attempt": 1,
                        "Error": {"ErrorType": "WaitForConditionExhausted", "ErrorMessage": "x"}}),
                    Recording::Pending => serde_json::json!({"Attempt": 1, "Result": "1",
                        "NextAttemptTimestamp": 1_795_755_679_735i64}),
                    _ => serde_json::json!({"Attempt": 1, "Result": "1"}),
                };
            }
            Op::Invoke { .. } => {
                v["Type"] = "CHAINED_INVOKE".into();
                v["SubType"] = "ChainedInvoke".into();
                v["Status"] = status_name(recording).into();
                v["ChainedInvokeDetails"] = match recording {
                    Recording::Succeeded => serde_json::json!({"Result": "\"echoed\""}),
                    Recording::Failed => serde_json::json!({
                        "Error": {"ErrorType": "ResourceNotFoundException", "ErrorMessage": "no"}}),
                    _ => serde_json::json!({}),
                };
            }
            Op::Callback { wait: true, .. } => {
                // A context whose children (the callback, the submitter)
                // are not recorded: unless it ended, it runs again.
                v["Type"] = "CONTEXT".into();
                v["SubType"] = "WaitForCallback".into();
                v["Status"] = match recording {
                    Recording::Succeeded | Recording::Failed => status_name(recording),
                    _ => "STARTED",
                }
                .into();
                v["ContextDetails"] = match recording {
                    Recording::Succeeded => serde_json::json!({"Result": "\"done\""}),
                    Recording::Failed => serde_json::json!({
                        "Error": {"ErrorType": "Callback.Timeout", "ErrorMessage": "recorded"}}),
                    _ => serde_json::json!({}),
                };
            }
            Op::Callback { .. } => {
                v["Type"] = "CALLBACK".into();
                v["SubType"] = "Callback".into();
                v["Status"] = status_name(recording).into();
                v["CallbackDetails"] = match recording {
                    Recording::Succeeded => {
                        serde_json::json!({"CallbackId": "cb1", "Result": "done"})
                    }
                    Recording::Failed => serde_json::json!({"CallbackId": "cb1",
                        "Error": {"ErrorType": "Refused", "ErrorMessage": "no"}}),
                    // No id: the service always issues one.
                    Recording::Ready => serde_json::json!({}),
                    _ => serde_json::json!({"CallbackId": "cb1"}),
                };
            }
            Op::Child { .. } | Op::Batch { .. } => {
                v["Type"] = "CONTEXT".into();
                v["SubType"] = match op {
                    Op::Batch { parallel: true, .. } => "Parallel",
                    Op::Batch { .. } => "Map",
                    _ => "RunInChildContext",
                }
                .into();
                v["Status"] = status_name(recording).into();
                v["ContextDetails"] = match recording {
                    Recording::Succeeded => match op {
                        Op::Batch { .. } => serde_json::json!({
                            "Result": r#"{"all":[],"completionReason":"ALL_COMPLETED"}"#,
                            "ReplayChildren": false}),
                        _ => serde_json::json!({"Result": "\"recorded\"", "ReplayChildren": false}),
                    },
                    Recording::Failed => serde_json::json!({
                        "Error": {"ErrorType": "Failed", "ErrorMessage": "recorded"}}),
                    // Rebuilt from children that are not there.
                    Recording::Ready => serde_json::json!({"Result": "", "ReplayChildren": true}),
                    _ => serde_json::json!({}),
                };
            }
        }
        ops.push(v);
    }
    ops
}

fn corrupt(ops: &mut Vec<serde_json::Value>, corruption: Corruption) {
    let n = ops.len();
    let at = |i: u8| usize::from(i) % n;
    match corruption {
        Corruption::UnknownType(i) => ops[at(i)]["Type"] = "FUTURE_OP".into(),
        Corruption::UnknownStatus(i) => ops[at(i)]["Status"] = "PAUSED".into(),
        Corruption::SwapType(i) => {
            let op = &mut ops[at(i)];
            op["Type"] = if op["Type"] == "STEP" { "WAIT" } else { "STEP" }.into();
        }
        Corruption::Rename(i) => ops[at(i)]["Name"] = "renamed".into(),
        Corruption::SubType(i) => ops[at(i)]["SubType"] = "Other".into(),
        Corruption::Payload(i, kind) => {
            ops[at(i)]["StepDetails"]["Result"] = match kind % 5 {
                0 => "msgpack:!!".to_owned(),
                1 => "bincode:AAAA".to_owned(),
                2 => "x".repeat(2 * 1024 * 1024),
                3 => "{not json".to_owned(),
                _ => "\"another value\"".to_owned(),
            }
            .into()
        }
        Corruption::Duplicate(i, recording) => {
            let mut copy = ops[at(i)].clone();
            copy["Status"] = status_name(recording).into();
            ops.push(copy);
        }
        Corruption::Parent(i) => ops[at(i)]["ParentId"] = "nothing-here".into(),
        Corruption::Attempt(i, a) => ops[at(i)]["StepDetails"]["Attempt"] = a.into(),
        Corruption::Timestamp(i, kind) => {
            ops[at(i)]["StartTimestamp"] = match kind % 3 {
                0 => serde_json::json!(-5),
                1 => serde_json::json!(1.5e300),
                _ => serde_json::Value::Null,
            }
        }
        Corruption::NoExecution => {
            ops.remove(0);
        }
        Corruption::Input(kind) => {
            ops[0]["ExecutionDetails"]["InputPayload"] =
                ["[", "7", "\"\"", "{}"][usize::from(kind) % 4].into()
        }
        Corruption::BadId(i) => {
            ops[at(i)]["Id"] = if i % 2 == 0 {
                String::new()
            } else {
                "y".repeat(70)
            }
            .into()
        }
        Corruption::NotAString(i) => ops[at(i)]["Type"] = 7.into(),
    }
}

/// Input of [`check_envelope_and_history`].
#[derive(Debug, Arbitrary)]
struct EnvelopeCase {
    /// Under 16 (1 in 16): parse the rest of the input as an envelope
    /// instead.
    raw: u8,
    program: Program,
    /// How each call of a prefix of the program is recorded.
    recordings: Vec<Recording>,
    /// Up to three corruptions (more are ignored).
    corruptions: Vec<Corruption>,
}

/// Arbitrary bytes, and valid histories of a generated program with a few
/// targeted corruptions, parsed as an invocation envelope and replayed by
/// the program: never a panic; every rejection is a typed error, every end
/// a valid response.
pub fn check_envelope_and_history(data: &[u8]) -> Result<(), String> {
    envelope_and_history(data).map(|_| ())
}

/// [`check_envelope_and_history`], telling whether the input reached the
/// interpreter (parsed as an envelope): the share of generated inputs that
/// fuzz replay rather than the parser.
pub fn envelope_and_history(data: &[u8]) -> Result<bool, String> {
    let mut u = Unstructured::new(data);
    let Ok(case) = EnvelopeCase::arbitrary(&mut u) else {
        return Ok(false);
    };
    let input: InvocationInput = if case.raw < 16 {
        match serde_json::from_slice(u.take_rest()) {
            Ok(input) => input,
            Err(_) => return Ok(false),
        }
    } else {
        let mut ops = valid_history(&case.program, &case.recordings);
        for &corruption in case.corruptions.iter().take(3) {
            if !ops.is_empty() {
                corrupt(&mut ops, corruption);
            }
        }
        let envelope = serde_json::json!({
            "DurableExecutionArn": FUZZ_ARN,
            "CheckpointToken": "t",
            "InitialExecutionState": { "Operations": ops },
        });
        match serde_json::from_value(envelope) {
            Ok(input) => input,
            Err(_) => return Ok(false),
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let wf = workflow(case.program, Probe::default());
    let result = runtime.block_on(durable_yield::engine::run_invocation(
        &wf,
        input,
        &crate::AcceptingService,
    ));
    match result {
        Ok(summary) => {
            let output = summary.output;
            let valid = match output.status {
                InvocationStatus::Succeeded => output.error.is_none() && output.result.is_some(),
                InvocationStatus::Failed => output.result.is_none() && output.error.is_some(),
                InvocationStatus::Pending => output.result.is_none() && output.error.is_none(),
                _ => false,
            };
            if !valid {
                return Err(format!("invalid response {output:?}"));
            }
            Ok(true)
        }
        Err(e) => Err(format!(
            "the accepting service made the invocation fail: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(notes: &str, ops: Vec<OpSig>) -> Recorded {
        Recorded {
            status: ExecutionStatus::Succeeded,
            outcome: Ok(notes.to_owned()),
            operations: ops,
        }
    }

    fn sig(n: u64, name: &str, status: OperationStatus, attempt: u32) -> OpSig {
        let id = operation_id(None, n);
        (
            id,
            OperationType::Step,
            Some(name.into()),
            status,
            None,
            None,
            Some(attempt),
        )
    }

    #[test]
    fn only_interrupted_steps_may_differ() {
        let none = RaceScope::default();
        let program = Program {
            ops: ["s0", "s1"]
                .iter()
                .map(|n| Op::Step {
                    name: (*n).into(),
                    codec: CodecKind::Json,
                    at_most_once: true,
                    failures: 0,
                    max_attempts: 2,
                    retry_delay: 1,
                })
                .collect(),
        };
        let expected = recorded(
            "s0@1; s1@1",
            vec![
                sig(1, "s0", OperationStatus::Succeeded, 1),
                sig(2, "s1", OperationStatus::Succeeded, 1),
            ],
        );
        // s0 interrupted: its attempt and note may change.
        let s0_changed = recorded(
            "s0@2; s1@1",
            vec![
                sig(1, "s0", OperationStatus::Succeeded, 2),
                sig(2, "s1", OperationStatus::Succeeded, 1),
            ],
        );
        let interrupted = vec!["s0".to_owned()];
        assert_eq!(
            compare(&expected, &s0_changed, &interrupted, &program, &none),
            None
        );
        // s1 was not interrupted: any difference in it is caught.
        let s1_changed = recorded(
            "s0@2; s1@2",
            vec![
                sig(1, "s0", OperationStatus::Succeeded, 2),
                sig(2, "s1", OperationStatus::Succeeded, 2),
            ],
        );
        assert!(compare(&expected, &s1_changed, &interrupted, &program, &none).is_some());
        let note_changed = recorded(
            "s0@2; s1@9",
            vec![
                sig(1, "s0", OperationStatus::Succeeded, 2),
                sig(2, "s1", OperationStatus::Succeeded, 1),
            ],
        );
        assert!(compare(&expected, &note_changed, &interrupted, &program, &none).is_some());
        // Without an interruption, nothing may differ.
        assert!(compare(&expected, &s0_changed, &[], &program, &none).is_some());

        // Under a racing batch an operation may differ in anything; around
        // one, in anything but identity and status.
        let s1 = operation_id(None, 2);
        let inside = RaceScope {
            inside: HashSet::from([s1]),
            around: HashSet::new(),
        };
        let s1_other = recorded(
            "s0@1; s1@1",
            vec![
                sig(1, "s0", OperationStatus::Succeeded, 1),
                sig(2, "s1", OperationStatus::Failed, 2),
            ],
        );
        assert_eq!(compare(&expected, &s1_other, &[], &program, &inside), None);
        assert!(compare(&expected, &s1_other, &[], &program, &none).is_some());
        let around = RaceScope {
            inside: HashSet::new(),
            around: HashSet::from([s1]),
        };
        assert!(compare(&expected, &s1_other, &[], &program, &around).is_some());
        let s1_attempt = recorded(
            "s0@1; s1@1",
            vec![
                sig(1, "s0", OperationStatus::Succeeded, 1),
                sig(2, "s1", OperationStatus::Succeeded, 2),
            ],
        );
        assert_eq!(
            compare(&expected, &s1_attempt, &[], &program, &around),
            None
        );
        // The note of a call that holds no racing batch must not differ.
        assert!(compare(&expected, &note_changed, &[], &program, &inside).is_some());
    }
}
