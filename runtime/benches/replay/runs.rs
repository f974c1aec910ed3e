//! Replay, live and map runs in this process.

use super::*;

pub(crate) struct ReplayRow {
    pub(crate) label: &'static str,
    pub(crate) per_step: Duration,
    pub(crate) allocs_per_step: f64,
    pub(crate) fixed_allocs: u64,
}

/// Records a history once on the local runner, then times replays of it.
pub(crate) fn bench_replay<W>(
    rt: &tokio::runtime::Runtime,
    label: &'static str,
    workflow: &W,
) -> ReplayRow
where
    W: durable_yield::WorkflowFn<u32, u32>,
{
    let record = |steps: u32| -> Vec<Operation> {
        let run = rt
            .block_on(LocalRunner::new().run(workflow, &steps))
            .expect("recording run");
        assert_eq!(run.result, Some(steps), "{:?}", run.error);
        run.operations
    };
    let replay = |history: &Vec<Operation>| {
        let history = history.clone();
        let before = allocations();
        let start = Instant::now();
        let mut interpreter = Interpreter::new(
            "arn:aws:lambda:us-east-1:1:function:bench:1/durable-execution/bench/1",
            history,
            workflow,
        );
        let finished = match interpreter.poll() {
            Some(Action::Finish(outcome)) => outcome,
            other => panic!("replay must not run anything: {other:?}"),
        };
        let elapsed = start.elapsed();
        let allocs = allocations() - before;
        black_box(finished);
        drop(interpreter);
        (elapsed, allocs)
    };
    // The fixed cost (interpreter, index, coroutine) from a 1-step replay...
    let one = record(1);
    let _ = replay(&one);
    let (_, fixed) = replay(&one);
    // ...and the per-step cost from full replays.
    let full = record(REPLAY_STEPS);
    let mut times = Vec::new();
    let mut allocs = 0;
    for _ in 0..rounds() {
        let (t, a) = replay(&full);
        times.push(t);
        allocs = a;
    }
    ReplayRow {
        label,
        per_step: median(times) / REPLAY_STEPS,
        allocs_per_step: (allocs.saturating_sub(fixed)) as f64 / f64::from(REPLAY_STEPS - 1),
        fixed_allocs: fixed,
    }
}

pub(crate) fn bench_live(rt: &tokio::runtime::Runtime) -> (Duration, f64, f64) {
    let mut times = Vec::new();
    let mut checkpoints = 0;
    let mut allocs = 0;
    for _ in 0..rounds() {
        let before = allocations();
        let start = Instant::now();
        let run = rt
            .block_on(LocalRunner::new().run(&unit_steps, &LIVE_STEPS))
            .expect("live run");
        times.push(start.elapsed());
        allocs = allocations() - before;
        assert_eq!(run.result, Some(LIVE_STEPS));
        checkpoints = run
            .timeline
            .events
            .iter()
            .map(|e| match e {
                TimelineEvent::Returned { checkpoints, .. } => *checkpoints,
                _ => 0,
            })
            .sum::<u64>();
    }
    (
        median(times) / LIVE_STEPS,
        checkpoints as f64 / f64::from(LIVE_STEPS),
        allocs as f64 / f64::from(LIVE_STEPS),
    )
}

/// A map of `n` items, each one step returning `()`.
pub(crate) async fn map_items(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let r = wf
        .map("items", 0..n, |mut wf, _, _| async move {
            wf.step("s", |_| async { Ok(()) }).await
        })
        .await?;
    Ok(r.success_count() as u32)
}

/// `n` maps of one item each, one after the other: per map, what the
/// batch machinery costs when an invocation holds many finished batches.
pub(crate) async fn sequential_maps(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let mut total = 0;
    for _ in 0..n {
        let r = wf
            .map("one", 0..1u32, |mut wf, _, _| async move {
                wf.step("s", |_| async { Ok(()) }).await
            })
            .await?;
        total += r.success_count() as u32;
    }
    Ok(total)
}

/// [`map_items`] with `Nesting::Flat`.
pub(crate) async fn flat_map_items(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let config = MapConfig::named("items").nesting(Nesting::Flat);
    let r = wf
        .map_with(config, 0..n, |mut wf, _, _| async move {
            wf.step("s", |_| async { Ok(()) }).await
        })
        .await?;
    Ok(r.success_count() as u32)
}

/// `n` branches whose step bodies each sleep 100 ms.
pub(crate) async fn sleepy_branches(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let r = wf
        .map("sleepers", 0..n, |mut wf, _, _| async move {
            wf.step("sleep", |_| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(())
            })
            .await
        })
        .await?;
    Ok(r.success_count() as u32)
}

/// CPU work for about a tenth of a second, with no await in it.
pub(crate) fn burn() -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..BURN_ROUNDS {
        x = black_box(x.rotate_left(5) ^ i).wrapping_mul(0x2545_f491_4f6c_dd1d);
    }
    x
}

pub(crate) const BURN_ROUNDS: u64 = 60_000_000;

/// Two parallel branches whose step bodies each run [`burn`]: in the
/// body's own task (`spawned == false`), or with `spawn_blocking`.
pub(crate) async fn cpu_branches(mut wf: Workflow, spawned: bool) -> Result<u32, StepError> {
    let r = wf
        .map("burners", 0..2u32, move |mut wf, _, _| async move {
            wf.step("burn", move |_| async move {
                let x = if spawned {
                    tokio::task::spawn_blocking(burn).await?
                } else {
                    burn()
                };
                Ok(x)
            })
            .await
        })
        .await?;
    Ok(r.success_count() as u32)
}

/// A multi-threaded tokio runtime with two workers, as the machine's cores.
pub(crate) fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// The wall time of [`cpu_branches`] on a 2-worker runtime, and of one
/// [`burn`] alone.
pub(crate) fn bench_cpu_branches(spawned: bool) -> (Duration, Duration) {
    let rt = two_workers();
    let mut times = Vec::new();
    let mut alone = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        black_box(burn());
        alone.push(start.elapsed());
        let start = Instant::now();
        let run = rt
            .block_on(LocalRunner::new().run(&cpu_branches, &spawned))
            .expect("burners");
        times.push(start.elapsed());
        assert_eq!(run.result, Some(2), "{:?}", run.error);
    }
    (median(times), median(alone))
}

/// Replays `history` in one invocation, answering checkpoints at once;
/// returns the time and the checkpoints sent. Panics if a body would run.
pub(crate) fn replay_invocation(history: Vec<Operation>) -> (Duration, u64) {
    let start = Instant::now();
    let mut interpreter = Interpreter::new(
        "arn:aws:lambda:us-east-1:1:function:bench:1/durable-execution/bench/1",
        history,
        &map_items,
    );
    let mut checkpoints = 0;
    loop {
        match interpreter.poll() {
            Some(Action::Finish(outcome)) => {
                black_box(outcome);
                break;
            }
            Some(Action::Checkpoint { handle, .. }) => {
                checkpoints += 1;
                interpreter.checkpoint_finished(handle, Vec::new());
            }
            other => panic!("replay must not run anything: {other:?}"),
        }
    }
    (start.elapsed(), checkpoints)
}

pub(crate) struct MapRow {
    pub(crate) live: Duration,
    pub(crate) live_allocs: f64,
    pub(crate) live_requests: u64,
    pub(crate) replay_recorded: Duration,
    pub(crate) replay_items: Duration,
    pub(crate) closes: u64,
}

pub(crate) fn bench_map(rt: &tokio::runtime::Runtime) -> MapRow {
    let mut live = Vec::new();
    let mut history = Vec::new();
    let mut live_requests = 0;
    let mut live_allocs = 0;
    for _ in 0..rounds() {
        let before = allocations();
        let start = Instant::now();
        let run = rt
            .block_on(LocalRunner::new().run(&map_items, &MAP_ITEMS))
            .expect("live map");
        live.push(start.elapsed());
        live_allocs = allocations() - before;
        assert_eq!(run.result, Some(MAP_ITEMS), "{:?}", run.error);
        live_requests = run
            .timeline
            .events
            .iter()
            .map(|e| match e {
                TimelineEvent::Returned { checkpoints, .. } => *checkpoints,
                _ => 0,
            })
            .sum::<u64>();
        history = run.operations;
    }
    // The map recorded: its result is decoded, no item is visited.
    let mut recorded = Vec::new();
    for _ in 0..rounds() {
        recorded.push(replay_invocation(history.clone()).0);
    }
    // Only the steps recorded (a crash before any context closed): every
    // item re-runs, replays its step and closes.
    let unclosed: Vec<Operation> = history
        .iter()
        .cloned()
        .map(|mut op| {
            if op.op_type == durable_yield::model::OperationType::Context {
                op.status = durable_yield::model::OperationStatus::Started;
                op.context_details = None;
            }
            op
        })
        .collect();
    let mut items = Vec::new();
    let mut closes = 0;
    for _ in 0..rounds() {
        let (t, c) = replay_invocation(unclosed.clone());
        items.push(t);
        closes = c;
    }
    MapRow {
        live: median(live) / MAP_ITEMS,
        live_allocs: live_allocs as f64 / f64::from(MAP_ITEMS),
        live_requests,
        replay_recorded: median(recorded) / MAP_ITEMS,
        replay_items: median(items) / MAP_ITEMS,
        closes,
    }
}

pub(crate) fn bench_sleepers() -> Duration {
    let rt = two_workers();
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let run = rt
            .block_on(LocalRunner::new().run(&sleepy_branches, &SLEEPERS))
            .expect("sleepers");
        times.push(start.elapsed());
        assert_eq!(run.result, Some(SLEEPERS), "{:?}", run.error);
    }
    median(times)
}
