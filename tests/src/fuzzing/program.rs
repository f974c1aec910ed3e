//! Generated workflow programs: the durable calls, their generation from
//! fuzz input, and the workflow that runs a program.

use super::*;

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
pub(super) fn compressed_codec() -> Compressed<Json> {
    Compressed::new(Json).threshold(0)
}

/// The codec of [`CodecKind::Sealed`].
pub(super) fn sealed_codec() -> Encrypted<Compressed<MsgPack>> {
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
    /// A custom predicate (`CompletionPolicy::should_complete`): ends as
    /// succeeded after `succeed_at` successes, as failed after `fail_at`
    /// failures (each at least 1), whichever comes first.
    Custom {
        /// Successes that end it as succeeded.
        succeed_at: u8,
        /// Failures that end it as failed.
        fail_at: u8,
    },
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
            Policy::Custom {
                succeed_at,
                fail_at,
            } => {
                let (succeed_at, fail_at) =
                    (usize::from(succeed_at.max(1)), usize::from(fail_at.max(1)));
                CompletionPolicy::should_complete(move |s| {
                    if s.success_count >= succeed_at {
                        CompletionDecision::succeed()
                    } else if s.failure_count >= fail_at {
                        CompletionDecision::fail()
                    } else {
                        CompletionDecision::Continue
                    }
                })
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
pub(super) fn gen_op(
    u: &mut Unstructured<'_>,
    next: &mut usize,
    depth: u8,
) -> arbitrary::Result<Op> {
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

pub(super) fn gen_body(
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

pub(super) type Run = Pin<Box<dyn Future<Output = Result<String, StepError>> + Send>>;

/// The value a step returns: a function of its name and attempt only.
/// The subtype a generated step is recorded with: one step in three (by
/// the number in its name) a custom one (`StepConfig::sub_type`), so that
/// replay checks custom subtypes too.
pub(super) fn step_sub_type(name: &str) -> &'static str {
    let custom = name
        .get(1..)
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n % 3 == 1);
    if custom { "Fuzz_Step" } else { "Step" }
}

pub(super) fn value(name: &str, attempt: u32) -> String {
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
        .sub_type(step_sub_type(&name))
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
pub(super) fn run_ops<'a>(
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

/// A branch's value: `None` (written as `null`, which must replay as the
/// `Some(None)` the live run had) for notes of a length divisible by 3,
/// so that batches hold both kinds.
fn nullable<E>(notes: Result<String, E>) -> Result<Option<String>, E> {
    notes.map(|notes| (notes.len() % 3 != 0).then_some(notes))
}

/// How a generated batch runs.
pub(super) struct BatchShape {
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
                    nullable(context_body(&mut wf, &body, &probe, invocation).await)
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
            async move { nullable(context_body(&mut wf, &body, &probe, invocation).await) }
        })
        .await?
    };
    let items: Vec<String> = result
        .items()
        .iter()
        .map(|item| match (&item.result, &item.error) {
            (Some(v), _) => format!("ok({v:?})"),
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
