//! durable-yield's local runner beside AWS's `aws-durable-execution-sdk`
//! 0.1.0 (`test_util::LocalRunner`, single page), on the same workflows, in
//! one process run. Prints a markdown table with the time per step (or per
//! map item) of each and the ratio.
//!
//! Live: the first invocation (the steps, then the wait starts). Replayed:
//! the second invocation, which replays them all after the wait. AWS's
//! runner runs an execution to its end, so its replay is the difference
//! between the whole run and a run of the steps alone; durable-yield's
//! runner can invoke once at a time, so each invocation is timed directly
//! (the difference of two medians is too noisy for sub-microsecond steps).
//!
//! `cargo run --release --manifest-path benches/side-by-side/Cargo.toml [-- N ...]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_durable_execution_sdk as aws;
use durable_yield::{LocalRunner, StepError, Workflow};

/// Rounds per measurement; the median is reported.
const ROUNDS: usize = 5;

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
    let total = run_steps(&mut wf, n).await?;
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
    let total = run_map(&mut wf, n).await?;
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

async fn aws_steps_then_wait(n: u32, ctx: aws::DurableContext) -> Result<u32, aws::BoxError> {
    let total = aws_steps(n, ctx.clone()).await?;
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
    let total = aws_map(n, ctx.clone()).await?;
    ctx.wait(Duration::from_secs(1)).name("pause").await?;
    Ok(total)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Times `f` ROUNDS times; the median.
fn time(rt: &tokio::runtime::Runtime, mut f: impl AsyncFnMut()) -> Duration {
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        rt.block_on(f());
        times.push(start.elapsed());
    }
    median(times)
}

/// durable-yield, each invocation timed on its own: the first (live) and
/// the second (the replay after the wait); medians over ROUNDS fresh
/// executions.
fn ours_invocations<W>(
    rt: &tokio::runtime::Runtime,
    runner: &LocalRunner,
    workflow: &W,
    n: u32,
) -> (Duration, Duration)
where
    W: durable_yield::WorkflowFn<u32, u32>,
{
    let mut live = Vec::with_capacity(ROUNDS);
    let mut replay = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
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
    }
    (median(live), median(replay))
}

struct Row {
    what: String,
    ours: Duration,
    theirs: Duration,
}

fn per(d: Duration, n: u32) -> Duration {
    d / n.max(1)
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
        let (ours_live, ours_replay) = ours_invocations(&rt, &ours, &dy_steps_then_wait, n);
        let theirs_live = time(&rt, async || {
            let r = theirs.run(aws_steps, n).await;
            assert!(r.is_success());
            black_box(r.output().copied());
        });
        let theirs_both = time(&rt, async || {
            let r = theirs.run(aws_steps_then_wait, n).await;
            assert!(r.is_success());
            assert_eq!(r.invocation_count(), 2);
            black_box(r.output().copied());
        });
        rows.push(Row {
            what: format!("{n} steps, live"),
            ours: per(ours_live, n),
            theirs: per(theirs_live, n),
        });
        rows.push(Row {
            what: format!("{n} steps, replayed"),
            ours: per(ours_replay, n),
            theirs: per(theirs_both.saturating_sub(theirs_live), n),
        });
    }

    const ITEMS: u32 = 100;
    let (ours_map, ours_map_replay) = ours_invocations(&rt, &ours, &dy_map_then_wait, ITEMS);
    let theirs_map = time(&rt, async || {
        let r = theirs.run(aws_map, ITEMS).await;
        assert!(r.is_success());
        black_box(r.output().copied());
    });
    let theirs_map_both = time(&rt, async || {
        let r = theirs.run(aws_map_then_wait, ITEMS).await;
        assert!(r.is_success());
        black_box(r.output().copied());
    });
    rows.push(Row {
        what: format!("{ITEMS}-item map, live (per item)"),
        ours: per(ours_map, ITEMS),
        theirs: per(theirs_map, ITEMS),
    });
    rows.push(Row {
        what: format!("{ITEMS}-item map, replayed (per item)"),
        ours: per(ours_map_replay, ITEMS),
        theirs: per(theirs_map_both.saturating_sub(theirs_map), ITEMS),
    });

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
