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
//!   (toggles `*lambda_map_live*`, `*lambda_steps_live*`;
//!   `BENCH_SERVICE_LATENCY_US=U` makes each checkpoint request of these
//!   Lambda-path runs block for U microseconds, a stand-in for the
//!   service's round trip); `scale-one
//!   seqmaps N` N maps of one item each, one after the other (toggle
//!   `*sequential_maps_live*`: per map, what an invocation that holds
//!   many finished batches costs); `scale-one children N` (and
//!   `children-warm`) as `local` for N child contexts of one step each,
//!   one after the other (toggles `*children_live*`, `*children_replay*`);
//!   `scale-one empty-children N` (and `empty-children-warm`) the same
//!   with empty child contexts (toggles `*empty_children_live*`,
//!   `*empty_children_replay*`: a CONTEXT operation and its generator,
//!   alone); and
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

mod codecs;
mod runs;
mod scale;

use codecs::*;
use runs::*;
use scale::*;

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

fn us(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.1} µs", ns / 1e3)
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
            if one.as_str() == "scale-one"
                && matches!(
                    mode.as_str(),
                    "local"
                        | "local-warm"
                        | "children"
                        | "children-warm"
                        | "empty-children"
                        | "empty-children-warm"
                ) =>
        {
            let n: u32 = n.parse().expect("a step count");
            let kind = mode.trim_end_matches("-warm");
            let live = |rt: &tokio::runtime::Runtime| match kind {
                "children" => children_live(rt, n),
                "empty-children" => empty_children_live(rt, n),
                _ => scale_live(rt, n),
            };
            let replay =
                |rt: &tokio::runtime::Runtime, e: &durable_yield::LocalExecution| match kind {
                    "children" => children_replay(rt, e, n),
                    "empty-children" => empty_children_replay(rt, e, n),
                    _ => scale_replay(rt, e, n),
                };
            if mode.ends_with("-warm") {
                // A warm process (a reused execution environment): one
                // whole execution of the same size ran before, so the
                // memory allocated here has been written before.
                let (earlier, _) = live(&rt);
                replay(&rt, &earlier);
                drop(earlier);
            }
            let before = Counters::now();
            let (execution, live) = live(&rt);
            let live_counts = before.per(n);
            let before = Counters::now();
            let replay = replay(&rt, &execution);
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
        [one, mode, n] if one.as_str() == "scale-one" && mode.as_str() == "map-replay" => {
            let n: u32 = n.parse().expect("an item count");
            let runner = LocalRunner::new().page_size(usize::MAX);
            let execution = runner.start(&n).expect("an execution");
            rt.block_on(execution.invoke(&doubled_then_wait))
                .expect("the live map");
            assert!(execution.advance_time(), "the workflow waits");
            let before = Counters::now();
            let replay = map_replay(&rt, &execution, n);
            let counts = before.per(n);
            // Time per item, then per item: allocations, bytes, page faults.
            println!("{} {counts}", replay.as_nanos());
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
