//! The fuzzing properties of `durable_yield_tests::fuzzing`, on stable:
//! each runs on inputs from a fixed-seed generator (and on the regression
//! inputs kept in `fuzz/regressions/<target>/`), so every CI run checks
//! them without nightly.

use durable_yield_tests::emulator::workspace;
use durable_yield_tests::fuzzing::{
    CodeChange, CodecKind, CrashCase, check_code_change, check_codecs, check_envelope_and_history,
    classify_code_change, envelope_and_history, external_ops, nesting, racing_batches,
    replay_determinism, shapes, steps_with, windowed_batches,
};

/// xorshift64*: a small deterministic generator for test inputs.
struct Seeded(u64);

impl Seeded {
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }
}

/// Runs `check` on the regression inputs of `target`, then on `cases`
/// generated inputs of varied length.
fn property(target: &str, cases: usize, check: fn(&[u8]) -> Result<(), String>) {
    let regressions = workspace().join("fuzz/regressions").join(target);
    let mut failures = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&regressions) {
        for entry in entries.flatten() {
            let input = std::fs::read(entry.path()).unwrap();
            if let Err(e) = check(&input) {
                failures.push(format!("{}: {e}", entry.path().display()));
            }
        }
    }
    let mut rng = Seeded(0x5eed_0000 ^ target.len() as u64);
    for case in 0..cases {
        let len = 8 + (case * 37) % 512;
        let input = rng.bytes(len);
        if let Err(e) = check(&input) {
            failures.push(format!(
                "case {case} ({} bytes, {:02x?}): {e}",
                input.len(),
                &input
            ));
            break;
        }
    }
    assert!(failures.is_empty(), "{target}:\n{}", failures.join("\n"));
}

/// Cases of `replay_determinism` whose crashed run met a transient codec
/// failure.
static TRANSIENT_CASES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn replay_determinism_counted(data: &[u8]) -> Result<(), String> {
    if replay_determinism(data)?.is_some_and(|n| n > 0) {
        TRANSIENT_CASES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    Ok(())
}

#[test]
fn replay_determinism_under_crashes() {
    property("replay_determinism", 300, replay_determinism_counted);
    // The transient codec failures of `CodecKind::Flaky` steps are met.
    let met = TRANSIENT_CASES.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        met >= 300 / 10,
        "{met} of 300 cases met a transient failure"
    );
    eprintln!("{met} cases met a transient codec failure");
}

#[test]
fn envelope_and_history_never_panic() {
    property("envelope_and_history", 1000, check_envelope_and_history);
}

#[test]
fn codecs_reject_garbage_and_round_trip() {
    property("codecs", 3000, check_codecs);
}

#[test]
fn code_changes_replay_identically_or_fail_as_non_deterministic() {
    property("code_change", 300, check_code_change);
}

/// The code-change property is only worth something if its cases replay a
/// change: count what the fixed-seed cases exercised, and require that
/// most replayed one, both ways (the same inputs as the test above).
#[test]
fn most_code_change_cases_replay_a_change() {
    let mut rng = Seeded(0x5eed_0000 ^ "code_change".len() as u64);
    let cases = 300;
    let mut seen: std::collections::HashMap<CodeChange, u32> = Default::default();
    for case in 0..cases {
        let input = rng.bytes(8 + (case * 37) % 512);
        let verdict = classify_code_change(&input).unwrap();
        *seen.entry(verdict).or_default() += 1;
    }
    let count = |v| seen.get(&v).copied().unwrap_or(0);
    let compatible = count(CodeChange::ReplayedCompatible);
    let non_deterministic = count(CodeChange::ReplayedNonDeterministic);
    eprintln!(
        "code_change: of {cases} cases, {compatible} replayed a compatible change, \
         {non_deterministic} an incompatible one (NonDeterministicExecution), {} ended before \
         the change, {} did not decode",
        count(CodeChange::EndedBeforeChange),
        count(CodeChange::Undecodable)
    );
    assert!(
        compatible + non_deterministic >= cases as u32 / 2,
        "only {} of {cases} cases replayed a change",
        compatible + non_deterministic
    );
    assert!(compatible >= 30 && non_deterministic >= 30, "{seen:?}");
}

/// The envelope generator makes mostly valid histories with a few targeted
/// corruptions, so that most inputs reach the interpreter (and fuzz
/// replay) instead of stopping in the parser.
#[test]
fn most_generated_envelopes_reach_the_interpreter() {
    let mut rng = Seeded(0x5eed_e4e1);
    let cases = 1000;
    let mut reached = 0;
    for case in 0..cases {
        let input = rng.bytes(8 + (case * 37) % 512);
        if envelope_and_history(&input).unwrap() {
            reached += 1;
        }
    }
    let share = f64::from(reached) / f64::from(cases as u32);
    eprintln!(
        "envelope_and_history: {reached} of {cases} generated inputs reached the interpreter"
    );
    assert!(
        share >= 0.6,
        "only {reached} of {cases} inputs reached the interpreter"
    );
}

/// The program generator of `replay_determinism` and `code_change` nests
/// child contexts, maps and parallels, and polls conditions, awaits
/// callbacks and waits for callbacks, often enough to fuzz them.
#[test]
fn generated_programs_nest_contexts_and_batches() {
    use arbitrary::{Arbitrary, Unstructured};
    let mut rng = Seeded(0x5eed_c0de);
    let cases = 300;
    let (mut with_child, mut with_batch, mut branches) = (0, 0, 0);
    let (mut with_condition, mut with_callback, mut with_wait) = (0, 0, 0);
    let (mut with_sealed, mut with_compressed) = (0, 0);
    let (mut with_flat, mut with_virtual, mut with_unnamed) = (0, 0, 0);
    let (mut with_window, mut with_race) = (0, 0);
    for case in 0..cases {
        let input = rng.bytes(8 + (case * 37) % 512);
        let Ok(c) = CrashCase::arbitrary_take_rest(Unstructured::new(&input)) else {
            continue;
        };
        let (children, batches, n) = nesting(&c.program.ops);
        with_child += usize::from(children > 0);
        let (conditions, callbacks, waits) = external_ops(&c.program.ops);
        with_condition += usize::from(conditions > 0);
        with_callback += usize::from(callbacks > 0);
        with_wait += usize::from(waits > 0);
        with_batch += usize::from(batches > 0);
        branches += n;
        with_sealed += usize::from(steps_with(&c.program.ops, CodecKind::Sealed) > 0);
        with_compressed += usize::from(steps_with(&c.program.ops, CodecKind::Compressed) > 0);
        let (flat, virtual_children, unnamed) = shapes(&c.program.ops);
        with_flat += usize::from(flat > 0);
        with_virtual += usize::from(virtual_children > 0);
        with_unnamed += usize::from(unnamed > 0);
        with_window += usize::from(windowed_batches(&c.program.ops) > 0);
        with_race += usize::from(racing_batches(&c.program.ops) > 0);
    }
    eprintln!(
        "{cases} programs: {with_child} with child contexts, {with_batch} with batches, \
         {branches} branches in all"
    );
    assert!(
        with_child >= cases / 5,
        "{with_child} of {cases} nest a child context"
    );
    assert!(
        with_batch >= cases / 5,
        "{with_batch} of {cases} hold a batch"
    );
    assert!(branches >= cases, "{branches} branches in {cases} programs");
    eprintln!(
        "{with_condition} with wait-for-conditions, {with_callback} with callbacks, \
         {with_wait} with wait-for-callbacks"
    );
    assert!(
        with_condition >= cases / 5,
        "{with_condition} of {cases} poll a condition"
    );
    assert!(
        with_callback >= cases / 5,
        "{with_callback} of {cases} await a callback"
    );
    assert!(
        with_wait >= cases / 10,
        "{with_wait} of {cases} wait for a callback"
    );
    eprintln!("{with_sealed} with sealed steps, {with_compressed} with compressed steps");
    assert!(
        with_sealed >= cases / 10,
        "{with_sealed} of {cases} seal a step"
    );
    assert!(
        with_compressed >= cases / 10,
        "{with_compressed} of {cases} compress a step"
    );
    eprintln!(
        "{with_flat} with flat batches, {with_virtual} with virtual child contexts, \
         {with_unnamed} with unnamed operations"
    );
    assert!(
        with_flat >= cases / 10,
        "{with_flat} of {cases} hold a flat batch"
    );
    assert!(
        with_virtual >= cases / 10,
        "{with_virtual} of {cases} hold a virtual child context"
    );
    assert!(
        with_unnamed >= cases / 5,
        "{with_unnamed} of {cases} hold an unnamed operation"
    );
    eprintln!("{with_window} with a batch of more branches than its admission window");
    assert!(
        with_window >= cases / 50,
        "{with_window} of {cases} run a batch in windows"
    );
    eprintln!("{with_race} with a batch that may end while several branches run");
    assert!(
        with_race >= cases / 50,
        "{with_race} of {cases} hold a racing batch"
    );
}
