//! Scale: sequential steps and maps at 1,000 to 25,000 operations, on the
//! local runner and through the Lambda driver, each in a fresh process.

use super::*;

/// A workflow of `n` steps that each return `()`.
pub(crate) async fn unit_steps(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    for _ in 0..n {
        let () = wf.step("s", |_| async { Ok(()) }).await?;
    }
    Ok(n)
}

/// A workflow of `n` steps that each return a `Small` with codec `C`.
pub(crate) fn struct_steps<C: Codec + Clone>(
    codec: C,
) -> impl Fn(Workflow, u32) -> std::pin::Pin<Box<dyn Future<Output = Result<u32, StepError>> + Send>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, n: u32| {
        let codec = codec.clone();
        Box::pin(async move {
            let mut sum = 0u64;
            for _ in 0..n {
                let s: Small = wf
                    .step_with(StepConfig::named("s").codec(codec.clone()), |_| async {
                        Ok(small())
                    })
                    .await?;
                sum += s.id;
            }
            Ok((sum / 4711) as u32)
        })
    }
}

/// `n` unit steps, a one-second wait, then the end: the first invocation
/// runs the steps live, the second replays them all.
pub(crate) async fn steps_then_wait(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    for _ in 0..n {
        let () = wf.step("s", |_| async { Ok(()) }).await?;
    }
    wf.wait("w", Duration::from_secs(1)).await;
    Ok(n)
}

/// One scale measurement in this process: `n` steps live (the first
/// invocation) and replayed (the second), per step.
#[inline(never)]
pub(crate) fn scale_live(
    rt: &tokio::runtime::Runtime,
    n: u32,
) -> (durable_yield::LocalExecution, Duration) {
    first_invocation(rt, &steps_then_wait, n)
}

/// The first invocation of a fresh execution of `workflow` with input `n`,
/// timed per operation. The execution is handed back, so that dropping it
/// is not counted.
pub(crate) fn first_invocation<W>(
    rt: &tokio::runtime::Runtime,
    workflow: &W,
    n: u32,
) -> (durable_yield::LocalExecution, Duration)
where
    W: durable_yield::WorkflowFn<u32, u32>,
{
    let execution = LocalRunner::new().start(&n).expect("start");
    let start = Instant::now();
    rt.block_on(execution.invoke(workflow));
    let elapsed = start.elapsed();
    (execution, elapsed / n)
}

#[inline(never)]
pub(crate) fn scale_replay(
    rt: &tokio::runtime::Runtime,
    execution: &durable_yield::LocalExecution,
    n: u32,
) -> Duration {
    second_invocation(rt, execution, &steps_then_wait, n)
}

/// The invocation after `execution`'s wait, which must end the execution,
/// timed per operation of `n`.
pub(crate) fn second_invocation<W>(
    rt: &tokio::runtime::Runtime,
    execution: &durable_yield::LocalExecution,
    workflow: &W,
    n: u32,
) -> Duration
where
    W: durable_yield::WorkflowFn<u32, u32>,
{
    assert!(execution.advance_time());
    let start = Instant::now();
    rt.block_on(execution.invoke(workflow));
    let elapsed = start.elapsed();
    assert_eq!(
        execution.status(),
        durable_yield::ExecutionStatus::Succeeded
    );
    elapsed / n
}

/// `n` child contexts one after the other, each one step, then a
/// one-second wait: the first invocation runs them live (two operations
/// each, as a nested map item records), the second replays each from its
/// recorded result (its body does not run).
pub(crate) async fn children_then_wait(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    for _ in 0..n {
        let () = wf
            .child("c", |mut wf| async move {
                wf.step("s", |_| async { Ok(()) }).await
            })
            .await?;
    }
    wf.wait("w", Duration::from_secs(1)).await;
    Ok(n)
}

/// [`children_then_wait`]'s first invocation, per child.
#[inline(never)]
pub(crate) fn children_live(
    rt: &tokio::runtime::Runtime,
    n: u32,
) -> (durable_yield::LocalExecution, Duration) {
    first_invocation(rt, &children_then_wait, n)
}

/// [`children_then_wait`]'s second invocation, per child.
#[inline(never)]
pub(crate) fn children_replay(
    rt: &tokio::runtime::Runtime,
    execution: &durable_yield::LocalExecution,
    n: u32,
) -> Duration {
    second_invocation(rt, execution, &children_then_wait, n)
}

/// `n` empty child contexts one after the other, then a one-second wait:
/// what a CONTEXT operation and its code's generator cost, with no
/// operation inside (a nested map item's second operation, measured
/// alone).
pub(crate) async fn empty_children_then_wait(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    for _ in 0..n {
        let () = wf.child("c", |_| async { Ok::<(), StepError>(()) }).await?;
    }
    wf.wait("w", Duration::from_secs(1)).await;
    Ok(n)
}

/// [`empty_children_then_wait`]'s first invocation, per child.
#[inline(never)]
pub(crate) fn empty_children_live(
    rt: &tokio::runtime::Runtime,
    n: u32,
) -> (durable_yield::LocalExecution, Duration) {
    first_invocation(rt, &empty_children_then_wait, n)
}

/// [`empty_children_then_wait`]'s second invocation, per child.
#[inline(never)]
pub(crate) fn empty_children_replay(
    rt: &tokio::runtime::Runtime,
    execution: &durable_yield::LocalExecution,
    n: u32,
) -> Duration {
    second_invocation(rt, execution, &empty_children_then_wait, n)
}

/// A live map of `n` items (each a step in its item's context) on the
/// local runner, per item: compared with `scale_live`'s sequential steps,
/// measured the same way.
#[inline(never)]
pub(crate) fn map_live(
    rt: &tokio::runtime::Runtime,
    n: u32,
) -> (durable_yield::LocalExecution, Duration) {
    checked_map(rt, &map_items, n)
}

/// A map of `n` items, each a step returning `2 * i`, summed, then a wait:
/// the workflow whose second invocation [`map_replay`] times.
pub(crate) async fn doubled_then_wait(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let r = wf
        .map("items", 0..n, |mut wf, i, _| async move {
            wf.step("double", move |_| async move { Ok(i * 2) }).await
        })
        .await?;
    let total = r.into_values()?.into_iter().fold(0u32, u32::wrapping_add);
    wf.wait("pause", Duration::from_secs(1)).await;
    Ok(total)
}

/// The second invocation of [`doubled_then_wait`] on the local runner (one
/// page), which replays the map after the wait: the time per item. Up to
/// about 4,000 items the map's result is recorded and decoded; above, it
/// is over 256 KiB, the result is rebuilt from the items' records.
#[inline(never)]
pub(crate) fn map_replay(
    rt: &tokio::runtime::Runtime,
    execution: &durable_yield::LocalExecution,
    n: u32,
) -> Duration {
    let start = Instant::now();
    rt.block_on(execution.invoke(&doubled_then_wait))
        .expect("the replay");
    let elapsed = start.elapsed();
    assert_eq!(
        execution.status(),
        durable_yield::ExecutionStatus::Succeeded
    );
    elapsed / n
}

/// The same map with `Nesting::Flat`: each item records only its step (no
/// CONTEXT operation), so this is what the batch machinery costs per item
/// beside the operations a nested item records.
#[inline(never)]
pub(crate) fn flat_map_live(
    rt: &tokio::runtime::Runtime,
    n: u32,
) -> (durable_yield::LocalExecution, Duration) {
    checked_map(rt, &flat_map_items, n)
}

/// `n` sequential maps of one item each ([`sequential_maps`]), per map.
#[inline(never)]
pub(crate) fn sequential_maps_live(
    rt: &tokio::runtime::Runtime,
    n: u32,
) -> (durable_yield::LocalExecution, Duration) {
    checked_map(rt, &sequential_maps, n)
}

pub(crate) fn checked_map<W>(
    rt: &tokio::runtime::Runtime,
    workflow: &W,
    n: u32,
) -> (durable_yield::LocalExecution, Duration)
where
    W: durable_yield::WorkflowFn<u32, u32>,
{
    let (execution, per_item) = first_invocation(rt, workflow, n);
    assert_eq!(
        execution.status(),
        durable_yield::ExecutionStatus::Succeeded
    );
    (execution, per_item)
}

/// Serves a recorded history to `run_invocation` in pages, as the service
/// does, and accepts every checkpoint: replay through the driver with no
/// local runner around it. Pages are handed over, not copied.
pub(crate) struct Scripted {
    pub(crate) pages: std::sync::Mutex<Vec<Vec<Operation>>>,
}

impl durable_yield::engine::DurableService for Scripted {
    fn checkpoint(
        &self,
        _: &str,
        token: &str,
        _: Vec<durable_yield::model::OperationUpdate>,
    ) -> impl Future<
        Output = Result<
            durable_yield::engine::CheckpointResponse,
            durable_yield::engine::ServiceError,
        >,
    > + Send {
        let token = format!("{token}+");
        async move {
            Ok(durable_yield::engine::CheckpointResponse::new(
                Some(token),
                Vec::new(),
            ))
        }
    }

    fn get_state(
        &self,
        _: &str,
        _: &str,
        marker: &str,
    ) -> impl Future<
        Output = Result<durable_yield::model::ExecutionState, durable_yield::engine::ServiceError>,
    > + Send {
        let at: usize = marker.parse().unwrap_or(usize::MAX);
        let mut pages = self.pages.lock().unwrap_or_else(|p| p.into_inner());
        let operations = pages.get_mut(at).map(std::mem::take).unwrap_or_default();
        let next_marker = (at + 1 < pages.len()).then(|| (at + 1).to_string());
        async move {
            Ok(durable_yield::model::ExecutionState::new(
                operations,
                next_marker,
            ))
        }
    }
}

/// A service for the Lambda path's live runs: accepts every checkpoint
/// and answers with each updated operation's new state, as AWS's does
/// (built from the update alone: no stored state, no timestamps), so the
/// interpreter merges what it would merge in Lambda.
#[derive(Default)]
pub(crate) struct Echo {
    /// Checkpoints answered: each answer's token is a new number.
    pub(crate) answered: AtomicU64,
    /// How long each checkpoint request takes, the thread blocked (none
    /// unless `BENCH_SERVICE_LATENCY_US` says so): a stand-in for the
    /// service's round trip, during which nothing else runs.
    pub(crate) latency: Duration,
}

impl Echo {
    /// An echo with the latency `BENCH_SERVICE_LATENCY_US` gives (none if
    /// unset).
    pub(crate) fn from_env() -> Self {
        let us = std::env::var("BENCH_SERVICE_LATENCY_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Echo {
            answered: AtomicU64::new(0),
            latency: Duration::from_micros(us),
        }
    }
}

impl durable_yield::engine::DurableService for Echo {
    fn checkpoint(
        &self,
        _: &str,
        _: &str,
        updates: Vec<durable_yield::model::OperationUpdate>,
    ) -> impl Future<
        Output = Result<
            durable_yield::engine::CheckpointResponse,
            durable_yield::engine::ServiceError,
        >,
    > + Send {
        use durable_yield::model::{
            ContextDetails, OperationAction as A, OperationStatus as S, OperationType as T,
            StepDetails,
        };
        if !self.latency.is_zero() {
            std::thread::sleep(self.latency);
        }
        let token = format!("t{}", self.answered.fetch_add(1, Ordering::Relaxed));
        let operations = updates
            .into_iter()
            .map(|u| {
                let status = match u.action {
                    A::Succeed => S::Succeeded,
                    A::Fail => S::Failed,
                    A::Retry => S::Pending,
                    _ => S::Started,
                };
                let mut op = Operation::new(u.id, u.op_type, status);
                op.parent_id = u.parent_id;
                op.name = u.name;
                op.sub_type = u.sub_type;
                match u.op_type {
                    T::Step => {
                        let mut d = StepDetails::default();
                        d.result = u.payload;
                        op.step_details = Some(std::sync::Arc::new(d));
                    }
                    T::Context => {
                        let mut d = ContextDetails::default();
                        d.result = u.payload;
                        op.context_details = Some(std::sync::Arc::new(d));
                    }
                    _ => {}
                }
                op
            })
            .collect();
        async move {
            Ok(durable_yield::engine::CheckpointResponse::new(
                Some(token),
                operations,
            ))
        }
    }

    async fn get_state(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<durable_yield::model::ExecutionState, durable_yield::engine::ServiceError> {
        Ok(durable_yield::model::ExecutionState::new(Vec::new(), None))
    }
}

/// The input of a first invocation of the Lambda path: the EXECUTION
/// operation, with `n` as its input.
pub(crate) fn lambda_input(n: u32) -> durable_yield::model::InvocationInput {
    let mut execution = Operation::new(
        durable_yield::model::OperationId::new("execution").expect("an id"),
        durable_yield::model::OperationType::Execution,
        durable_yield::model::OperationStatus::Started,
    );
    execution.execution_details = Some(std::sync::Arc::new(
        durable_yield::model::ExecutionDetails::new(Some(n.to_string().into())),
    ));
    durable_yield::model::InvocationInput::new(
        "arn:aws:lambda:us-east-1:1:function:bench:1/durable-execution/bench/1",
        "t",
        durable_yield::model::ExecutionState::new(vec![execution], None),
    )
}

/// One live invocation of `workflow` with input `n` on the Lambda path
/// (`run_invocation` against [`Echo`]: no local runner, no timeline),
/// which must end `status` having run `n` step bodies; the time per step
/// or item.
pub(crate) fn lambda_live<W>(
    rt: &tokio::runtime::Runtime,
    workflow: &W,
    n: u32,
    status: durable_yield::model::InvocationStatus,
) -> Duration
where
    W: durable_yield::WorkflowFn<u32, u32>,
{
    let input = lambda_input(n);
    let start = Instant::now();
    let summary = rt
        .block_on(durable_yield::engine::run_invocation(
            workflow,
            input,
            &Echo::from_env(),
        ))
        .expect("a live invocation");
    let elapsed = start.elapsed();
    assert_eq!(summary.output.status, status, "{:?}", summary.output);
    assert_eq!(summary.executed, u64::from(n), "every step body ran");
    elapsed / n
}

/// `steps_then_wait(n)` live on the Lambda path, up to its wait (echoed
/// without an end, so the invocation suspends).
#[inline(never)]
pub(crate) fn lambda_steps_live(rt: &tokio::runtime::Runtime, n: u32) -> Duration {
    let pending = durable_yield::model::InvocationStatus::Pending;
    lambda_live(rt, &steps_then_wait, n, pending)
}

/// A map of `n` one-step items live on the Lambda path.
#[inline(never)]
pub(crate) fn lambda_map_live(rt: &tokio::runtime::Runtime, n: u32, nested: bool) -> Duration {
    let succeeded = durable_yield::model::InvocationStatus::Succeeded;
    if nested {
        lambda_live(rt, &map_items, n, succeeded)
    } else {
        lambda_live(rt, &flat_map_items, n, succeeded)
    }
}

/// Replays the recorded `history` of `steps_then_wait(n)` (its wait over)
/// through `run_invocation`, `page` operations per page; returns the time
/// per step. In a fresh process nothing is memoized yet: this is the cost
/// of an invocation on a cold Lambda execution environment.
#[inline(never)]
pub(crate) fn scripted_replay(
    rt: &tokio::runtime::Runtime,
    history: Vec<Operation>,
    n: u32,
    page: usize,
) -> Duration {
    let mut pages = Vec::new();
    let mut ops = history.into_iter().peekable();
    while ops.peek().is_some() {
        pages.push(ops.by_ref().take(page).collect::<Vec<_>>());
    }
    let first = std::mem::take(&mut pages[0]);
    let service = Scripted {
        pages: std::sync::Mutex::new(pages),
    };
    let input = durable_yield::model::InvocationInput::new(
        "arn:aws:lambda:us-east-1:1:function:bench:1/durable-execution/bench/1",
        "t",
        durable_yield::model::ExecutionState::new(
            first,
            (service.pages.lock().map(|p| p.len()).unwrap_or(1) > 1).then(|| "1".to_owned()),
        ),
    );
    let start = Instant::now();
    let summary = rt
        .block_on(durable_yield::engine::run_invocation(
            &steps_then_wait,
            input,
            &service,
        ))
        .expect("replay");
    let elapsed = start.elapsed();
    assert_eq!(
        summary.output.status,
        durable_yield::model::InvocationStatus::Succeeded,
        "{:?}",
        summary.output
    );
    assert_eq!(summary.executed, 0, "a replay runs no step");
    elapsed / n
}

/// Peak resident memory of this process, in KiB (Linux).
pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs this benchmark binary again with `args` (a fresh process: nothing
/// memoized, a fresh heap) and returns the numbers it prints.
pub(crate) fn child(args: &[&str]) -> Vec<f64> {
    let exe = std::env::current_exe().expect("the benchmark binary");
    let out = std::process::Command::new(exe)
        .args(args)
        .output()
        .expect("a child process");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

pub(crate) fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The scale table: per-step costs at 1,000, 10,000 and 25,000 steps, each
/// measured in fresh processes.
pub(crate) fn bench_scale(rt: &tokio::runtime::Runtime) {
    const SIZES: [u32; 3] = [1_000, 10_000, 25_000];
    let dir = std::env::temp_dir().join(format!("durable-yield-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    println!("\n## Scale: N sequential steps, each number from fresh processes (median of 3)\n");
    println!(
        "| N | live, local runner | replay, local runner (warm process) | replay, run_invocation, cold, 1 page | replay, cold, pages of 100 | peak RSS replaying | history bytes per operation |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut first: Option<[f64; 4]> = None;
    let mut last = [0.0; 4];
    for n in SIZES {
        let run = rt
            .block_on(LocalRunner::new().run(&steps_then_wait, &n))
            .expect("recording run");
        let path = dir.join(format!("history-{n}.json"));
        std::fs::write(&path, serde_json::to_string(&run.operations).expect("json"))
            .expect("write the history");
        let path = path.to_string_lossy().into_owned();
        let n_arg = n.to_string();
        let mut cols: Vec<Vec<f64>> = vec![Vec::new(); 6];
        for _ in 0..3 {
            let local = child(&["scale-one", "local", &n_arg]);
            cols[0].push(local[0]);
            cols[1].push(local[1]);
            let one = child(&["scale-one", "scripted", &n_arg, &(n + 2).to_string(), &path]);
            cols[2].push(one[0]);
            cols[4].push(one[1]);
            cols[5].push(one[2]);
            let paged = child(&["scale-one", "scripted", &n_arg, "100", &path]);
            cols[3].push(paged[0]);
        }
        let m: Vec<f64> = cols.into_iter().map(median_f64).collect();
        let per = [m[0], m[1], m[2], m[3]];
        first.get_or_insert(per);
        last = per;
        println!(
            "| {n} | {:.0} ns | {:.0} ns | {:.0} ns | {:.0} ns | {:.1} MiB | {:.0} B |",
            m[0],
            m[1],
            m[2],
            m[3],
            m[4] / 1024.0,
            m[5]
        );
    }
    if let Some(first) = first {
        let r = |i: usize| last[i] / first[i];
        println!(
            "| 25,000 / 1,000 | {:.2}x | {:.2}x | {:.2}x | {:.2}x | | |",
            r(0),
            r(1),
            r(2),
            r(3)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
