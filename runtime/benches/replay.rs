//! Replay, live execution and codec benchmarks. Prints markdown tables.
//!
//! Run with `cargo bench -p durable-yield --bench replay`.
//!
//! - replay: an invocation over 10,000 recorded steps (interpreter +
//!   generator + decoding; the history is cloned outside the timed part),
//!   with the heap allocations counted per step;
//! - live: 1,000 steps run and checkpointed on the local runner in one
//!   invocation (body, encoding, checkpoint validation and apply);
//! - map: a map of 1,000 items of one step each on the local runner, live
//!   and replayed (the map recorded; or only its steps, so that every item
//!   re-runs and replays), per item, beside a sequential step; and 100
//!   branches whose step bodies each sleep 100 ms, in wall time;
//! - codecs: encode/decode time and size of a small struct.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use durable_yield::codecs::{Bincode, Codec, Json, MsgPack, from_payload, to_payload};
use durable_yield::engine::{Action, Interpreter};
use durable_yield::local::TimelineEvent;
use durable_yield::model::Operation;
use durable_yield::{LocalRunner, StepConfig, StepError, Workflow};
use serde::{Deserialize, Serialize};

/// Counts heap allocations (and reallocations) made by the process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards its arguments unchanged to `System`, which
// implements `GlobalAlloc` correctly; the only addition is an atomic counter
// increment, which neither touches the memory nor the layout, so all of
// `GlobalAlloc`'s contracts are upheld exactly as `System` upholds them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Small {
    id: u64,
    customer: String,
    amount_cents: i64,
    express: bool,
    items: Vec<u32>,
}

fn small() -> Small {
    Small {
        id: 4711,
        customer: "ada lovelace".into(),
        amount_cents: 1999,
        express: true,
        items: vec![1, 2, 3],
    }
}

const REPLAY_STEPS: u32 = 10_000;
const LIVE_STEPS: u32 = 1_000;
const MAP_ITEMS: u32 = 1_000;
const SLEEPERS: u32 = 100;
/// Timed rounds per measurement (the median is reported); `BENCH_ROUNDS`
/// overrides it, e.g. for profiling.
fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

/// A workflow of `n` steps that each return `()`.
async fn unit_steps(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    for _ in 0..n {
        let () = wf.step("s", |_| async { Ok(()) }).await?;
    }
    Ok(n)
}

/// A workflow of `n` steps that each return a `Small` with codec `C`.
fn struct_steps<C: Codec + Clone>(
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

struct ReplayRow {
    label: &'static str,
    per_step: Duration,
    allocs_per_step: f64,
    fixed_allocs: u64,
}

/// Records a history once on the local runner, then times replays of it.
fn bench_replay<W>(rt: &tokio::runtime::Runtime, label: &'static str, workflow: &W) -> ReplayRow
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

fn bench_live(rt: &tokio::runtime::Runtime) -> (Duration, f64, f64) {
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
async fn map_items(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let r = wf
        .map("items", 0..n, |mut wf, _, _| async move {
            wf.step("s", |_| async { Ok(()) }).await
        })
        .await?;
    Ok(r.success_count() as u32)
}

/// `n` branches whose step bodies each sleep 100 ms.
async fn sleepy_branches(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
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

/// Replays `history` in one invocation, answering checkpoints at once;
/// returns the time and the checkpoints sent. Panics if a body would run.
fn replay_invocation(history: Vec<Operation>) -> (Duration, u64) {
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

struct MapRow {
    live: Duration,
    live_allocs: f64,
    live_requests: u64,
    replay_recorded: Duration,
    replay_items: Duration,
    closes: u64,
}

fn bench_map(rt: &tokio::runtime::Runtime) -> MapRow {
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

fn bench_sleepers() -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime");
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

struct CodecRow {
    label: &'static str,
    raw: usize,
    wire: usize,
    encode: Duration,
    decode: Duration,
}

fn bench_codec<C: Codec>(label: &'static str, codec: C) -> CodecRow {
    const N: u32 = 100_000;
    let value = small();
    let payload = to_payload(&codec, &value).expect("encode");
    let back: Small = from_payload(&codec, &payload).expect("decode");
    assert_eq!(back, value);
    let mut enc = Vec::new();
    let mut dec = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..N {
            black_box(to_payload(&codec, black_box(&value)).expect("encode"));
        }
        enc.push(start.elapsed() / N);
        let start = Instant::now();
        for _ in 0..N {
            black_box(from_payload::<_, Small>(&codec, black_box(&payload)).expect("decode"));
        }
        dec.push(start.elapsed() / N);
    }
    CodecRow {
        label,
        raw: codec.encode(&value).expect("encode").len(),
        wire: payload.len(),
        encode: median(enc),
        decode: median(dec),
    }
}

fn ns(d: Duration) -> String {
    format!("{:.0} ns", d.as_secs_f64() * 1e9)
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; keep it quick then.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--test" || a == "--list") {
        return;
    }
    // `-- replay`, `-- live` or `-- codecs` runs one section.
    let wanted: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let run = |section: &str| wanted.is_empty() || wanted.iter().any(|w| *w == section);
    let rt = runtime();

    if run("replay") {
        println!("## Replay of {REPLAY_STEPS} recorded steps (one invocation)\n");
        println!("| step result | time per step | allocations per step | fixed allocations |");
        println!("|---|---|---|---|");
        let rows = [
            bench_replay(&rt, "`()` (JSON)", &unit_steps),
            bench_replay(&rt, "small struct, JSON", &struct_steps(Json)),
            bench_replay(&rt, "small struct, bincode", &struct_steps(Bincode)),
            bench_replay(&rt, "small struct, MessagePack", &struct_steps(MsgPack)),
        ];
        for r in &rows {
            println!(
                "| {} | {} | {:.2} | {} |",
                r.label,
                ns(r.per_step),
                r.allocs_per_step,
                r.fixed_allocs
            );
        }
    }
    if run("replay") {
        const N: u64 = 4000;
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            for n in 0..N {
                black_box(durable_yield::id::hash(None, black_box(n)));
            }
            cold.push(start.elapsed() / N as u32);
            let start = Instant::now();
            for n in 0..N {
                black_box(durable_yield::id::operation_id(None, black_box(n)));
            }
            warm.push(start.elapsed() / N as u32);
        }
        println!(
            "\nOperation id derivation (BLAKE2b-512): {} computed, {} memoized (root ids 1 to 4095 are \
                  memoized process-wide, so a cold replay adds the difference per step).",
            ns(median(cold)),
            ns(median(warm))
        );
    }
    if run("live") {
        let (live, checkpoints, allocs) = bench_live(&rt);
        println!("\n## Live execution of {LIVE_STEPS} steps on the local runner\n");
        println!("| time per step | checkpoint requests per step | allocations per step |");
        println!("|---|---|---|");
        println!("| {} | {checkpoints:.2} | {allocs:.1} |", ns(live));
    }
    // For profilers: only the live map runs (and the live steps), no output.
    if wanted.iter().any(|w| *w == "map-live") {
        for _ in 0..rounds() {
            let run = rt
                .block_on(LocalRunner::new().run(&map_items, &MAP_ITEMS))
                .expect("live map");
            black_box(run);
        }
    }
    if wanted.iter().any(|w| *w == "live-only") {
        for _ in 0..rounds() {
            let run = rt
                .block_on(LocalRunner::new().run(&unit_steps, &LIVE_STEPS))
                .expect("live steps");
            black_box(run);
        }
    }
    if run("map") {
        let (step, _, step_allocs) = bench_live(&rt);
        let row = bench_map(&rt);
        println!("\n## A map of {MAP_ITEMS} items of one step each, on the local runner\n");
        println!(
            "| run | time per item | vs. a sequential live step ({}, {step_allocs:.1} allocations) |",
            ns(step)
        );
        println!("|---|---|---|");
        let ratio = |d: Duration| d.as_secs_f64() / step.as_secs_f64();
        println!(
            "| live, one invocation ({} checkpoint requests, {:.1} allocations per item) | {} | {:.2}x |",
            row.live_requests,
            row.live_allocs,
            ns(row.live),
            ratio(row.live)
        );
        println!(
            "| replay, the map recorded | {} | {:.2}x |",
            ns(row.replay_recorded),
            ratio(row.replay_recorded)
        );
        println!(
            "| replay, only the steps recorded (every item re-runs; {} checkpoints) | {} | {:.2}x |",
            row.closes,
            ns(row.replay_items),
            ratio(row.replay_items)
        );
        let wall = bench_sleepers();
        println!(
            "\n{SLEEPERS} branches whose step bodies each sleep 100 ms: {:.0} ms of wall time \
             (one after another: {} ms).",
            wall.as_secs_f64() * 1e3,
            SLEEPERS * 100
        );
    }
    if run("codecs") {
        println!(
            "\n## Codecs, small struct `{{id, customer, amount_cents, express, items: [1, 2, 3]}}`\n"
        );
        println!(
            "| codec | encoded bytes | wire payload bytes | encode (to payload) | decode (from payload) |"
        );
        println!("|---|---|---|---|---|");
        for r in [
            bench_codec("JSON", Json),
            bench_codec("bincode", Bincode),
            bench_codec("MessagePack", MsgPack),
        ] {
            println!(
                "| {} | {} | {} | {} | {} |",
                r.label,
                r.raw,
                r.wire,
                ns(r.encode),
                ns(r.decode)
            );
        }
    }
}
