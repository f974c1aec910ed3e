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
//!   re-runs and replays), per item, beside a sequential step; 100
//!   branches whose step bodies each sleep 100 ms, in wall time; and 2
//!   branches whose bodies compute without awaiting, as written and in
//!   `spawn_blocking`, in wall time;
//! - scale: N sequential steps (then a wait, then the end) for N = 1,000,
//!   10,000 and 25,000, each number from fresh processes (this binary run
//!   again with `scale-one ...`): live and replayed on the local runner, and
//!   replayed through `run_invocation` with a scripted service that pages
//!   the recorded history in (one page, or pages of 100 as AWS's emulator
//!   does), with the peak resident memory and the heap bytes per decoded
//!   operation. For instruction counts, run a child under callgrind, e.g.
//!   `valgrind --tool=callgrind --collect-atstart=no
//!   --toggle-collect='*scale_replay*' <bench binary> scale-one local 25000`
//!   (see BENCHMARKS.md). `scale-one local N` prints the live and replay
//!   times per step, then per step of each: heap allocations, bytes
//!   allocated and minor page faults; `scale-one map N` the same for one
//!   live map of N items (toggle `*map_live*`), `scale-one flatmap N` for
//!   one with `Nesting::Flat` (toggle `*flat_map_live*`); `scale-one
//!   local-warm N` the same as `local` after one whole execution of the
//!   same size in the same process (a warm execution environment, where
//!   the memory handed out has been written before and is not faulted in
//!   again); `scale-one map-warm N` and `flatmap-warm N` the same maps
//!   after two whole runs of the same map in the same process; `scale-one
//!   lambda-map N` and `lambda-flatmap N` (and their `-warm` forms) the
//!   same maps through the Lambda driver, `run_invocation`, against a
//!   service that answers each checkpoint with the updated operations (no
//!   local runner, no timeline), `lambda-steps N` N sequential steps so
//!   (toggles `*lambda_map_live*`, `*lambda_steps_live*`); `scale-one
//!   seqmaps N` N maps of one item each, one after the other (toggle
//!   `*sequential_maps_live*`: per map, what an invocation that holds
//!   many finished batches costs); and
//!   `scale-one scripted-warm N PAGE <history>` the Lambda path's replay
//!   after the same replay twice before in the same process;
//! - codecs: encode/decode time and size of a small struct and of a
//!   100 KiB one, with every codec, compressed (zstd), encrypted (whole
//!   payload) and with sealed fields, and the compressors zstd was picked
//!   against (zstd levels 1 and 3, lz4, deflate) on the 100 KiB JSON.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use durable_yield::codecs::compress::Compressed;
use durable_yield::codecs::seal::{Encrypted, Sealed, SealedFields, StaticKeyring};
use durable_yield::codecs::{
    Bincode, Codec, Json, MsgPack, PayloadContext, from_payload, to_payload,
};
use durable_yield::engine::{Action, Interpreter};
use durable_yield::local::TimelineEvent;
use durable_yield::model::Operation;
use durable_yield::{LocalRunner, MapConfig, Nesting, StepConfig, StepError, Workflow};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Counts heap allocations (and reallocations) made by the process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not freed yet.
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated in all (a reallocation counts its new size).
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards its arguments unchanged to `System`, which
// implements `GlobalAlloc` correctly; the only addition is an atomic counter
// increment, which neither touches the memory nor the layout, so all of
// `GlobalAlloc`'s contracts are upheld exactly as `System` upholds them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Minor page faults of this process so far (Linux: `/proc/self/stat`'s
/// tenth field; 0 elsewhere).
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The command name (field 2) may hold spaces: count after its `)`.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

/// What a phase of a benchmark cost the process: heap allocations, bytes
/// allocated and minor page faults.
#[derive(Clone, Copy)]
struct Counters {
    allocations: u64,
    bytes: u64,
    faults: u64,
}

impl Counters {
    fn now() -> Self {
        Counters {
            allocations: allocations(),
            bytes: ALLOCATED_BYTES.load(Ordering::Relaxed),
            faults: minor_faults(),
        }
    }

    /// Per operation since `self`, as "allocations bytes faults".
    fn per(self, n: u32) -> String {
        let now = Counters::now();
        let per = |a: u64, b: u64| (a - b) as f64 / f64::from(n);
        format!(
            "{:.2} {:.0} {:.3}",
            per(now.allocations, self.allocations),
            per(now.bytes, self.bytes),
            per(now.faults, self.faults)
        )
    }
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

/// `Small` with its customer sealed (for `SealedFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SmallSealed {
    id: u64,
    customer: Sealed<String>,
    amount_cents: i64,
    express: bool,
    items: Vec<u32>,
}

fn small_sealed() -> SmallSealed {
    let s = small();
    SmallSealed {
        id: s.id,
        customer: Sealed::new(s.customer),
        amount_cents: s.amount_cents,
        express: s.express,
        items: s.items,
    }
}

/// One line of an order: about 100 KiB of JSON for [`LARGE_LINES`] lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: u32,
    unit_cents: i64,
    customer: String,
    email: String,
    note: String,
    gift: bool,
}

const LARGE_LINES: u64 = 780;

fn large() -> Vec<Line> {
    (0..LARGE_LINES)
        .map(|i| Line {
            sku: format!("SKU-{:05}", i * 13 % 4000),
            quantity: (i % 7 + 1) as u32,
            unit_cents: (i as i64 * 1237) % 100_000,
            customer: format!("customer-{}", i % 97),
            email: format!("user{}@example.com", i * 31 % 1000),
            note: if i % 3 == 0 {
                "gift wrap please".into()
            } else {
                String::new()
            },
            gift: i % 3 == 0,
        })
        .collect()
}

/// The large order with each line's e-mail sealed (for `SealedFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LineSealed {
    sku: String,
    quantity: u32,
    unit_cents: i64,
    customer: String,
    email: Sealed<String>,
    note: String,
    gift: bool,
}

fn large_sealed() -> Vec<LineSealed> {
    large()
        .into_iter()
        .map(|l| LineSealed {
            sku: l.sku,
            quantity: l.quantity,
            unit_cents: l.unit_cents,
            customer: l.customer,
            email: Sealed::new(l.email),
            note: l.note,
            gift: l.gift,
        })
        .collect()
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

/// `n` unit steps, a one-second wait, then the end: the first invocation
/// runs the steps live, the second replays them all.
async fn steps_then_wait(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    for _ in 0..n {
        let () = wf.step("s", |_| async { Ok(()) }).await?;
    }
    wf.wait("w", Duration::from_secs(1)).await;
    Ok(n)
}

/// One scale measurement in this process: `n` steps live (the first
/// invocation) and replayed (the second), per step.
#[inline(never)]
fn scale_live(rt: &tokio::runtime::Runtime, n: u32) -> (durable_yield::LocalExecution, Duration) {
    first_invocation(rt, &steps_then_wait, n)
}

/// The first invocation of a fresh execution of `workflow` with input `n`,
/// timed per operation. The execution is handed back, so that dropping it
/// is not counted.
fn first_invocation<W>(
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
fn scale_replay(
    rt: &tokio::runtime::Runtime,
    execution: &durable_yield::LocalExecution,
    n: u32,
) -> Duration {
    assert!(execution.advance_time());
    let start = Instant::now();
    rt.block_on(execution.invoke(&steps_then_wait));
    let elapsed = start.elapsed();
    assert_eq!(
        execution.status(),
        durable_yield::ExecutionStatus::Succeeded
    );
    elapsed / n
}

/// A live map of `n` items (each a step in its item's context) on the
/// local runner, per item: compared with `scale_live`'s sequential steps,
/// measured the same way.
#[inline(never)]
fn map_live(rt: &tokio::runtime::Runtime, n: u32) -> (durable_yield::LocalExecution, Duration) {
    checked_map(rt, &map_items, n)
}

/// The same map with `Nesting::Flat`: each item records only its step (no
/// CONTEXT operation), so this is what the batch machinery costs per item
/// beside the operations a nested item records.
#[inline(never)]
fn flat_map_live(
    rt: &tokio::runtime::Runtime,
    n: u32,
) -> (durable_yield::LocalExecution, Duration) {
    checked_map(rt, &flat_map_items, n)
}

/// `n` sequential maps of one item each ([`sequential_maps`]), per map.
#[inline(never)]
fn sequential_maps_live(
    rt: &tokio::runtime::Runtime,
    n: u32,
) -> (durable_yield::LocalExecution, Duration) {
    checked_map(rt, &sequential_maps, n)
}

fn checked_map<W>(
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
struct Scripted {
    pages: std::sync::Mutex<Vec<Vec<Operation>>>,
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
struct Echo {
    /// Checkpoints answered: each answer's token is a new number.
    answered: AtomicU64,
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
fn lambda_input(n: u32) -> durable_yield::model::InvocationInput {
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
fn lambda_live<W>(
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
            &Echo::default(),
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
fn lambda_steps_live(rt: &tokio::runtime::Runtime, n: u32) -> Duration {
    let pending = durable_yield::model::InvocationStatus::Pending;
    lambda_live(rt, &steps_then_wait, n, pending)
}

/// A map of `n` one-step items live on the Lambda path.
#[inline(never)]
fn lambda_map_live(rt: &tokio::runtime::Runtime, n: u32, nested: bool) -> Duration {
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
fn scripted_replay(
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
fn peak_rss_kib() -> u64 {
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
fn child(args: &[&str]) -> Vec<f64> {
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

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The scale table: per-step costs at 1,000, 10,000 and 25,000 steps, each
/// measured in fresh processes.
fn bench_scale(rt: &tokio::runtime::Runtime) {
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

/// `n` maps of one item each, one after the other: per map, what the
/// batch machinery costs when an invocation holds many finished batches.
async fn sequential_maps(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
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
async fn flat_map_items(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let config = MapConfig::named("items").nesting(Nesting::Flat);
    let r = wf
        .map_with(config, 0..n, |mut wf, _, _| async move {
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

/// CPU work for about a tenth of a second, with no await in it.
fn burn() -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..BURN_ROUNDS {
        x = black_box(x.rotate_left(5) ^ i).wrapping_mul(0x2545_f491_4f6c_dd1d);
    }
    x
}

const BURN_ROUNDS: u64 = 60_000_000;

/// Two parallel branches whose step bodies each run [`burn`]: in the
/// body's own task (`spawned == false`), or with `spawn_blocking`.
async fn cpu_branches(mut wf: Workflow, spawned: bool) -> Result<u32, StepError> {
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
fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime")
}

/// The wall time of [`cpu_branches`] on a 2-worker runtime, and of one
/// [`burn`] alone.
fn bench_cpu_branches(spawned: bool) -> (Duration, Duration) {
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

struct CodecRow {
    label: &'static str,
    raw: usize,
    wire: usize,
    encode: Duration,
    decode: Duration,
}

fn bench_codec<C: Codec>(label: &'static str, codec: C) -> CodecRow {
    bench_value(label, codec, &small(), 100_000)
}

/// Encodes and decodes `value` `n` times (median of 5 rounds), for a
/// bound context as a step's result is.
fn bench_value<C, T>(label: &'static str, codec: C, value: &T, n: u32) -> CodecRow
where
    C: Codec,
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let cx = PayloadContext::new(
        "arn:aws:lambda:us-east-1:111122223333:function:orders:1/durable-execution/run/7f3c",
        "c4ca4238a0b923820dcc509a6f75849b8ff2b3e1e4ae3a6dd12e1cfa6b5f1a7e",
    );
    let payload = to_payload(&codec, value, &cx).expect("encode");
    let back: T = from_payload(&codec, &payload, &cx).expect("decode");
    assert_eq!(&back, value);
    let mut enc = Vec::new();
    let mut dec = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..n {
            black_box(to_payload(&codec, black_box(value), &cx).expect("encode"));
        }
        enc.push(start.elapsed() / n);
        let start = Instant::now();
        for _ in 0..n {
            black_box(from_payload::<_, T>(&codec, black_box(&payload), &cx).expect("decode"));
        }
        dec.push(start.elapsed() / n);
    }
    CodecRow {
        label,
        raw: codec.encode(value, &cx).expect("encode").len(),
        wire: payload.len(),
        encode: median(enc),
        decode: median(dec),
    }
}

/// Every codec and wrapper combination over one value.
fn codec_table<T, S>(value: &T, sealed: &S, n: u32) -> Vec<CodecRow>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    S: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let keys = StaticKeyring::new("bench-key", [9; 32]);
    vec![
        bench_value("JSON", Json, value, n),
        bench_value("bincode", Bincode, value, n),
        bench_value("MessagePack", MsgPack, value, n),
        bench_value("zstd(JSON)", Compressed::new(Json), value, n),
        bench_value("zstd(bincode)", Compressed::new(Bincode), value, n),
        bench_value("zstd(MessagePack)", Compressed::new(MsgPack), value, n),
        bench_value("sealed(JSON)", Encrypted::new(Json, keys.clone()), value, n),
        bench_value(
            "sealed(bincode)",
            Encrypted::new(Bincode, keys.clone()),
            value,
            n,
        ),
        bench_value(
            "sealed(MessagePack)",
            Encrypted::new(MsgPack, keys.clone()),
            value,
            n,
        ),
        bench_value(
            "sealed(zstd(JSON))",
            Encrypted::new(Compressed::new(Json), keys.clone()),
            value,
            n,
        ),
        bench_value(
            "sealed(zstd(MessagePack))",
            Encrypted::new(Compressed::new(MsgPack), keys.clone()),
            value,
            n,
        ),
        bench_value(
            "SealedFields(JSON), one field per record sealed",
            SealedFields::new(Json, keys.clone()),
            sealed,
            n,
        ),
        bench_value(
            "SealedFields(MessagePack), one field per record sealed",
            SealedFields::new(MsgPack, keys),
            sealed,
            n,
        ),
    ]
}

fn print_rows(rows: &[CodecRow]) {
    println!(
        "| codec | encoded bytes | wire payload bytes | encode (to payload) | decode (from payload) |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.label,
            r.raw,
            r.wire,
            us(r.encode),
            us(r.decode)
        );
    }
}

fn us(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

/// The AEADs AES-256-GCM-SIV was picked against: one seal of 140 bytes
/// (a small payload) and of 100 KiB, key set up once, nonce given.
fn aead_table() {
    use aes_gcm_siv::aead::{Aead, KeyInit};
    println!("\n## AEADs (seal only, key set up once)\n");
    println!("| AEAD | nonce | 140 bytes | 100 KiB |");
    println!("|---|---|---|---|");
    let small = [5u8; 140];
    let large = vec![3u8; 100 * 1024];
    let time = |n: u32, f: &dyn Fn() -> usize| {
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            rounds.push(start.elapsed() / n);
        }
        median(rounds)
    };
    let siv = aes_gcm_siv::Aes256GcmSiv::new(&[7u8; 32].into());
    let gcm = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    let xchacha = chacha20poly1305::XChaCha20Poly1305::new(&[7u8; 32].into());
    let rows: Vec<(&str, &str, Duration, Duration)> = vec![
        (
            "AES-256-GCM-SIV (picked)",
            "96-bit random, misuse resistant",
            time(50_000, &|| {
                siv.encrypt(&[1u8; 12].into(), &small[..])
                    .expect("seal")
                    .len()
            }),
            time(200, &|| {
                siv.encrypt(&[1u8; 12].into(), &large[..])
                    .expect("seal")
                    .len()
            }),
        ),
        (
            "AES-256-GCM",
            "96-bit random: at most 2^32 payloads per key",
            time(50_000, &|| {
                gcm.encrypt(&[1u8; 12].into(), &small[..])
                    .expect("seal")
                    .len()
            }),
            time(200, &|| {
                gcm.encrypt(&[1u8; 12].into(), &large[..])
                    .expect("seal")
                    .len()
            }),
        ),
        (
            "XChaCha20-Poly1305",
            "192-bit random",
            time(50_000, &|| {
                xchacha
                    .encrypt(&[1u8; 24].into(), &small[..])
                    .expect("seal")
                    .len()
            }),
            time(200, &|| {
                xchacha
                    .encrypt(&[1u8; 24].into(), &large[..])
                    .expect("seal")
                    .len()
            }),
        ),
    ];
    for (label, nonce, s, l) in rows {
        println!("| {label} | {nonce} | {} | {} |", us(s), us(l));
    }
}

/// The compressors zstd was picked against, on the 100 KiB JSON.
fn compressor_table() {
    let json = serde_json::to_vec(&large()).expect("json");
    println!(
        "\n## Compressors on the 100 KiB order ({} bytes of JSON)\n",
        json.len()
    );
    println!("| compressor | compressed bytes | ratio | compress | decompress |");
    println!("|---|---|---|---|---|");
    type Pack = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let rows: Vec<(&str, Pack, Pack)> = vec![
        (
            "zstd level 1 (picked)",
            Box::new(|d| zstd::bulk::compress(d, 1).expect("zstd")),
            Box::new(|c| zstd::bulk::decompress(c, 1 << 24).expect("zstd")),
        ),
        (
            "zstd level 3",
            Box::new(|d| zstd::bulk::compress(d, 3).expect("zstd")),
            Box::new(|c| zstd::bulk::decompress(c, 1 << 24).expect("zstd")),
        ),
        (
            "lz4 (lz4_flex)",
            Box::new(lz4_flex::compress_prepend_size),
            Box::new(|c| lz4_flex::decompress_size_prepended(c).expect("lz4")),
        ),
        (
            "deflate level 1 (miniz_oxide)",
            Box::new(|d| miniz_oxide::deflate::compress_to_vec(d, 1)),
            Box::new(|c| miniz_oxide::inflate::decompress_to_vec(c).expect("inflate")),
        ),
        (
            "deflate level 6 (miniz_oxide)",
            Box::new(|d| miniz_oxide::deflate::compress_to_vec(d, 6)),
            Box::new(|c| miniz_oxide::inflate::decompress_to_vec(c).expect("inflate")),
        ),
    ];
    for (label, pack, unpack) in rows {
        let packed = pack(&json);
        assert_eq!(unpack(&packed), json);
        let time = |f: &dyn Fn() -> usize| {
            let mut rounds = Vec::new();
            for _ in 0..5 {
                let start = Instant::now();
                for _ in 0..50 {
                    black_box(f());
                }
                rounds.push(start.elapsed() / 50);
            }
            median(rounds)
        };
        let c = time(&|| pack(black_box(&json)).len());
        let d = time(&|| unpack(black_box(&packed)).len());
        println!(
            "| {label} | {} | {:.1}x | {} | {} |",
            packed.len(),
            json.len() as f64 / packed.len() as f64,
            us(c),
            us(d)
        );
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
    // Child processes of the scale section (and the commands to profile).
    match wanted.as_slice() {
        [one, mode, n]
            if one.as_str() == "scale-one" && matches!(mode.as_str(), "local" | "local-warm") =>
        {
            let n: u32 = n.parse().expect("a step count");
            if mode.as_str() == "local-warm" {
                // A warm process (a reused execution environment): one
                // whole execution of the same size ran before, so the
                // memory allocated here has been written before.
                let (earlier, _) = scale_live(&rt, n);
                scale_replay(&rt, &earlier, n);
                drop(earlier);
            }
            let before = Counters::now();
            let (execution, live) = scale_live(&rt, n);
            let live_counts = before.per(n);
            let before = Counters::now();
            let replay = scale_replay(&rt, &execution, n);
            let replay_counts = before.per(n);
            // Times first (the scale table reads them), then per step:
            // allocations, bytes allocated, minor page faults (live, replay).
            println!(
                "{} {} {live_counts} {replay_counts}",
                live.as_nanos(),
                replay.as_nanos()
            );
            return;
        }
        [one, mode, n]
            if one.as_str() == "scale-one"
                && matches!(
                    mode.as_str(),
                    "map" | "flatmap" | "map-warm" | "flatmap-warm" | "seqmaps" | "seqmaps-warm"
                ) =>
        {
            let n: u32 = n.parse().expect("an item count");
            let run = |rt: &tokio::runtime::Runtime| {
                if mode.starts_with("map") {
                    map_live(rt, n)
                } else if mode.starts_with("flatmap") {
                    flat_map_live(rt, n)
                } else {
                    sequential_maps_live(rt, n)
                }
            };
            if mode.ends_with("-warm") {
                // As for `scripted-warm`: the same map ran twice before.
                for _ in 0..2 {
                    drop(run(&rt));
                }
            }
            let before = Counters::now();
            let (execution, live) = run(&rt);
            let counts = before.per(n);
            drop(execution);
            // Time per item, then per item: allocations, bytes, page faults.
            println!("{} {counts}", live.as_nanos());
            return;
        }
        [one, mode, n]
            if one.as_str() == "scale-one"
                && matches!(
                    mode.as_str(),
                    "lambda-map"
                        | "lambda-flatmap"
                        | "lambda-map-warm"
                        | "lambda-flatmap-warm"
                        | "lambda-steps"
                        | "lambda-steps-warm"
                ) =>
        {
            let n: u32 = n.parse().expect("an item count");
            let run = |rt: &tokio::runtime::Runtime| match mode.as_str() {
                "lambda-steps" | "lambda-steps-warm" => lambda_steps_live(rt, n),
                m => lambda_map_live(rt, n, m.starts_with("lambda-map")),
            };
            if mode.ends_with("-warm") {
                // As for `map-warm`: the same work ran twice before.
                for _ in 0..2 {
                    run(&rt);
                }
            }
            let before = Counters::now();
            let live = run(&rt);
            let counts = before.per(n);
            // Time per item, then per item: allocations, bytes, page faults.
            println!("{} {counts}", live.as_nanos());
            return;
        }
        [one, mode, n, page, path]
            if one.as_str() == "scale-one"
                && matches!(mode.as_str(), "scripted" | "scripted-warm") =>
        {
            let n: u32 = n.parse().expect("a step count");
            let page: usize = page.parse().expect("a page size");
            let text = std::fs::read_to_string(path.as_str()).expect("the history");
            let before = LIVE_BYTES.load(Ordering::Relaxed);
            let history: Vec<Operation> = serde_json::from_str(&text).expect("a history");
            drop(text);
            let bytes = LIVE_BYTES.load(Ordering::Relaxed).saturating_sub(before);
            let per_op = bytes as f64 / history.len() as f64;
            if mode.as_str() == "scripted-warm" {
                // A reused execution environment: the same replay ran
                // twice before in this process (after one, glibc has only
                // raised its mmap threshold: the history's vector is then
                // placed in the heap, which grows into fresh memory once).
                for _ in 0..2 {
                    scripted_replay(&rt, history.clone(), n, page);
                }
            }
            let replay = scripted_replay(&rt, history, n, page);
            println!("{} {} {per_op:.0}", replay.as_nanos(), peak_rss_kib());
            return;
        }
        [one, n, path] if one.as_str() == "scale-record" => {
            let n: u32 = n.parse().expect("a step count");
            let run = rt
                .block_on(LocalRunner::new().run(&steps_then_wait, &n))
                .expect("recording run");
            let json = serde_json::to_string(&run.operations).expect("json");
            std::fs::write(path.as_str(), json).expect("write the history");
            return;
        }
        _ => {}
    }

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
                // Root ids from 30,000 on are past the memo: hashed each time.
                black_box(durable_yield::id::operation_id(None, black_box(30_000 + n)));
            }
            cold.push(start.elapsed() / N as u32);
            let start = Instant::now();
            for n in 0..N {
                black_box(durable_yield::id::operation_id(None, black_box(n)));
            }
            warm.push(start.elapsed() / N as u32);
        }
        println!(
            "\nOperation id derivation (BLAKE2b-512): {} computed, {} memoized (root ids 1 to 25087 are \
                  memoized process-wide, so a cold replay adds the difference per step).",
            ns(median(cold)),
            ns(median(warm))
        );
    }
    if run("scale") {
        bench_scale(&rt);
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
        let (inline, one) = bench_cpu_branches(false);
        let (spawned, _) = bench_cpu_branches(true);
        println!(
            "\n2 branches whose step bodies each compute for {:.0} ms without awaiting, on a \
             2-worker tokio runtime: {:.0} ms of wall time as written, {:.0} ms with the work \
             in `spawn_blocking`.",
            one.as_secs_f64() * 1e3,
            inline.as_secs_f64() * 1e3,
            spawned.as_secs_f64() * 1e3
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
        println!(
            "\n## Compressed and encrypted codecs, small struct (bound to an execution and a step)\n"
        );
        print_rows(&codec_table(&small(), &small_sealed(), 20_000));
        let json = serde_json::to_vec(&large()).expect("json").len();
        println!(
            "\n## Compressed and encrypted codecs, 100 KiB order ({LARGE_LINES} lines, {json} bytes of JSON)\n"
        );
        print_rows(&codec_table(&large(), &large_sealed(), 100));
        compressor_table();
        aead_table();
    }
}
