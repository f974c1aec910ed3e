//! Replay determinism: a run crashed at a checkpoint boundary and resumed
//! records what an uninterrupted run records, and never re-runs finished
//! work.

use super::*;

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
pub(super) fn flaky_steps(ops: &[Op], out: &mut Vec<String>) {
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
pub(super) struct RaceScope {
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
pub(super) fn compare(
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
pub(super) fn nothing_updated_after_its_context_closed(
    execution: &LocalExecution,
) -> Result<(), String> {
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
