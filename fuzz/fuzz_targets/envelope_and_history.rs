//! Fuzz target `envelope_and_history`: see `fuzz/README.md` and `durable_yield_tests::fuzzing::check_envelope_and_history`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = durable_yield_tests::fuzzing::check_envelope_and_history(data) {
        panic!("property violated: {violation}");
    }
});
