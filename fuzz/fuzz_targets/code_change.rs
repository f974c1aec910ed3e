//! Fuzz target `code_change`: see `fuzz/README.md` and `durable_yield_tests::fuzzing::check_code_change`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = durable_yield_tests::fuzzing::check_code_change(data) {
        panic!("property violated: {violation}");
    }
});
