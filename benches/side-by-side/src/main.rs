//! durable-yield's local runner beside AWS's `aws-durable-execution-sdk`
//! 0.1.0 (`test_util::LocalRunner`, single page), on the same workflows, in
//! one process run. Prints a markdown table with the time per step (or per
//! map item) of each and the ratio.
//!
//! Live: the first invocation (the steps, then the wait starts). Replayed:
//! the second invocation, which replays them all after the wait, timed two
//! ways. "In the handler": both SDKs, from the second handler's entry to
//! the end of the replayed steps (or map), measured by the workflow code
//! itself, the same way for both. "Whole invocation": durable-yield's
//! runner invokes once at a time, so its second invocation is timed whole
//! (driver, paging, the last checkpoint); AWS's runner runs an execution to
//! its end, so its figure is from the first invocation's wait to the end
//! of the run, which also counts the wait's checkpoint and the runner
//! building its result: an upper bound. (The difference between a whole
//! run and a run of the steps alone, used before, is below the noise of a
//! 10-second run at 25,000 steps.)
//!
//! `cargo run --release --manifest-path benches/side-by-side/Cargo.toml [-- N ...]`
//! (N: the step counts, by default 1,000, 10,000 and 25,000; the map
//! sizes, by default 100 items, from `SIDE_BY_SIDE_MAPS=100,1000,...`).

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_durable_execution_sdk as aws;
use durable_yield::{LocalRunner, StepError, Workflow};

/// The fewest rounds per measurement; the median is reported.
const ROUNDS: usize = 5;

/// Rounds for a workflow of `n` operations: more for small ones (up to 25
/// at 1,000 operations or fewer), whose whole replay takes well under a
/// millisecond and so is the most exposed to this VM's scheduling noise.
fn rounds(n: u32) -> usize {
    (25_000 / n.max(1) as usize).clamp(ROUNDS, 25)
}

// ---- durable-yield ----

async fn run_steps(wf: &mut Workflow, n: u32) -> Result<u32, StepError> {
    let mut total = 0u32;
    for i in 0..n {
        total = wf
            .step("add", move |_| async move { Ok(total.wrapping_add(i)) })
            .await?;
    }
    Ok(total)
}

async fn dy_steps_then_wait(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let total = timed_if_replay(run_steps(&mut wf, n)).await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    Ok(total)
}

async fn run_map(wf: &mut Workflow, n: u32) -> Result<u32, StepError> {
    let r = wf
        .map("items", 0..n, |mut wf, i, _| async move {
            wf.step("double", move |_| async move { Ok(i * 2) }).await
        })
        .await?;
    Ok(r.into_values()?.into_iter().sum())
}

async fn dy_map_then_wait(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let total = timed_if_replay(run_map(&mut wf, n)).await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    Ok(total)
}

// ---- AWS's SDK ----

async fn aws_steps(n: u32, ctx: aws::DurableContext) -> Result<u32, aws::BoxError> {
    let mut total = 0u32;
    for i in 0..n {
        total = ctx
            .step(move |_| async move { Ok(total.wrapping_add(i)) })
            .name("add")
            .await?;
    }
    Ok(total)
}

/// Handler entries in the current run (either SDK's; one run at a time).
static ENTRIES: AtomicU32 = AtomicU32::new(0);
/// Nanoseconds the second invocation's handler took to replay the steps
/// (or the map) before the wait.
static REPLAY_NS: AtomicU64 = AtomicU64::new(0);

/// When the first invocation reached its wait (nanoseconds since `EPOCH`).
static WAIT_NS: AtomicU64 = AtomicU64::new(0);
static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// Times `work` when this is the run's second handler entry (the replay);
/// notes when the first one is done with it.
async fn timed_if_replay<T>(work: impl Future<Output = T>) -> T {
    let entry = ENTRIES.fetch_add(1, Ordering::SeqCst);
    let start = Instant::now();
    let out = work.await;
    match entry {
        0 => WAIT_NS.store(EPOCH.elapsed().as_nanos() as u64, Ordering::SeqCst),
        1 => REPLAY_NS.store(start.elapsed().as_nanos() as u64, Ordering::SeqCst),
        _ => {}
    }
    out
}

async fn aws_steps_then_wait(n: u32, ctx: aws::DurableContext) -> Result<u32, aws::BoxError> {
    let total = timed_if_replay(aws_steps(n, ctx.clone())).await?;
    ctx.wait(Duration::from_secs(1)).name("pause").await?;
    Ok(total)
}

async fn aws_map(n: u32, ctx: aws::DurableContext) -> Result<u32, aws::BoxError> {
    let values = ctx
        .map(0..n, |ctx: aws::DurableContext, i: u32, _| async move {
            let v = ctx
                .step(move |_| async move { Ok(i * 2) })
                .name("double")
                .await?;
            Ok::<u32, aws::BoxError>(v)
        })
        .name("items")
        .await?;
    Ok(values.into_iter().sum())
}

async fn aws_map_then_wait(n: u32, ctx: aws::DurableContext) -> Result<u32, aws::BoxError> {
    let total = timed_if_replay(aws_map(n, ctx.clone())).await?;
    ctx.wait(Duration::from_secs(1)).name("pause").await?;
    Ok(total)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Times `f` `rounds` times; the median.
fn time(rt: &tokio::runtime::Runtime, rounds: usize, mut f: impl AsyncFnMut()) -> Duration {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        rt.block_on(f());
        times.push(start.elapsed());
    }
    median(times)
}

/// AWS's replay: `run` (a run of a `*_then_wait` handler) `rounds` times,
/// each timed inside the handler of its second invocation, and from the
/// first invocation's wait to the end of the run; the medians.
fn aws_replay(
    rt: &tokio::runtime::Runtime,
    rounds: usize,
    mut run: impl AsyncFnMut(),
) -> (Duration, Duration) {
    let mut inside = Vec::with_capacity(rounds);
    let mut bound = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        ENTRIES.store(0, Ordering::SeqCst);
        REPLAY_NS.store(0, Ordering::SeqCst);
        rt.block_on(run());
        let end = EPOCH.elapsed().as_nanos() as u64;
        assert_eq!(ENTRIES.load(Ordering::SeqCst), 2, "two invocations");
        inside.push(Duration::from_nanos(REPLAY_NS.load(Ordering::SeqCst)));
        let waited = WAIT_NS.load(Ordering::SeqCst);
        bound.push(Duration::from_nanos(end.saturating_sub(waited)));
    }
    (median(inside), median(bound))
}

/// durable-yield, each invocation timed on its own: the first (live), the
/// second (the replay after the wait) and the replay inside the second
/// handler; medians over `rounds(n)` fresh executions.
fn ours_invocations<W>(
    rt: &tokio::runtime::Runtime,
    runner: &LocalRunner,
    workflow: &W,
    n: u32,
) -> (Duration, Duration, Duration)
where
    W: durable_yield::WorkflowFn<u32, u32>,
{
    let mut live = Vec::with_capacity(rounds(n));
    let mut replay = Vec::with_capacity(rounds(n));
    let mut inside = Vec::with_capacity(rounds(n));
    for _ in 0..rounds(n) {
        ENTRIES.store(0, Ordering::SeqCst);
        REPLAY_NS.store(0, Ordering::SeqCst);
        let execution = runner.start(&n).expect("an execution");
        let start = Instant::now();
        rt.block_on(execution.invoke(workflow));
        live.push(start.elapsed());
        assert!(execution.advance_time(), "the workflow waits");
        let start = Instant::now();
        rt.block_on(execution.invoke(workflow));
        replay.push(start.elapsed());
        assert_eq!(
            execution.status(),
            durable_yield::ExecutionStatus::Succeeded
        );
        assert_eq!(ENTRIES.load(Ordering::SeqCst), 2, "two invocations");
        inside.push(Duration::from_nanos(REPLAY_NS.load(Ordering::SeqCst)));
    }
    (median(live), median(replay), median(inside))
}

struct Row {
    what: String,
    ours: Duration,
    theirs: Duration,
}

fn per(d: Duration, n: u32) -> Duration {
    d / n.max(1)
}

/// The rows of one workflow of `n` operations: live, replayed in the
/// handler, replayed whole (ours and AWS's times, in that order).
fn three_rows(
    what: &str,
    unit: &str,
    n: u32,
    ours: [Duration; 3],
    theirs: [Duration; 3],
) -> [Row; 3] {
    let labels = [
        "live",
        "replayed, in the handler",
        "replayed, whole invocation (AWS: an upper bound)",
    ];
    std::array::from_fn(|i| Row {
        what: format!("{what}, {}{unit}", labels[i]),
        ours: per(ours[i], n),
        theirs: per(theirs[i], n),
    })
}

/// The map sizes to measure: `SIDE_BY_SIDE_MAPS` (comma-separated item
/// counts; `0` or empty: none), else 100 items.
fn map_sizes() -> Vec<u32> {
    match std::env::var("SIDE_BY_SIDE_MAPS") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .filter(|&n| n > 0)
            .collect(),
        Err(_) => vec![100],
    }
}

fn main() {
    let sizes: Vec<u32> = {
        let args: Vec<u32> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if args.is_empty() {
            vec![1_000, 10_000, 25_000]
        } else {
            args
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ours = LocalRunner::new().page_size(usize::MAX);
    let theirs = aws::test_util::LocalRunner::new().single_page();
    let mut rows = Vec::new();

    for &n in &sizes {
        // Live: one invocation of n steps. Live and replayed: the steps, a
        // wait, then a second invocation that replays them all; the replay
        // is the difference.
        let (ours_live, ours_replay, ours_inside) =
            ours_invocations(&rt, &ours, &dy_steps_then_wait, n);
        let theirs_live = time(&rt, rounds(n), async || {
            let r = theirs.run(aws_steps, n).await;
            assert!(r.is_success());
            black_box(r.output().copied());
        });
        let (theirs_replay, theirs_bound) = aws_replay(&rt, rounds(n), async || {
            let r = theirs.run(aws_steps_then_wait, n).await;
            assert!(r.is_success());
            assert_eq!(r.invocation_count(), 2);
            black_box(r.output().copied());
        });
        rows.extend(three_rows(
            &format!("{n} steps"),
            "",
            n,
            [ours_live, ours_inside, ours_replay],
            [theirs_live, theirs_replay, theirs_bound],
        ));
    }

    for items in map_sizes() {
        let (ours_map, ours_map_replay, ours_map_inside) =
            ours_invocations(&rt, &ours, &dy_map_then_wait, items);
        let theirs_map = time(&rt, rounds(items), async || {
            let r = theirs.run(aws_map, items).await;
            assert!(r.is_success());
            black_box(r.output().copied());
        });
        let (theirs_map_replay, theirs_map_bound) = aws_replay(&rt, rounds(items), async || {
            let r = theirs.run(aws_map_then_wait, items).await;
            assert!(r.is_success());
            black_box(r.output().copied());
        });
        rows.extend(three_rows(
            &format!("{items}-item map"),
            " (per item)",
            items,
            [ours_map, ours_map_inside, ours_map_replay],
            [theirs_map, theirs_map_replay, theirs_map_bound],
        ));
    }

    println!(
        "| workflow | durable-yield | aws-durable-execution-sdk 0.1.0 | AWS / durable-yield |"
    );
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.2} µs | {:.2} µs | {:.2}x |",
            r.what,
            r.ours.as_secs_f64() * 1e6,
            r.theirs.as_secs_f64() * 1e6,
            r.theirs.as_secs_f64() / r.ours.as_secs_f64().max(1e-12)
        );
    }
}
