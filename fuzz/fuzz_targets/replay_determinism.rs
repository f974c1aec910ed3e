//! Fuzz target `replay_determinism`: see `fuzz/README.md` and `durable_yield_tests::fuzzing::check_replay_determinism`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = durable_yield_tests::fuzzing::check_replay_determinism(data) {
        panic!("property violated: {violation}");
    }
});
