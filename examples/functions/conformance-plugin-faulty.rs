//! The `conformance-plugin-faulty` durable Lambda function (see `lib.rs`):
//! the `conformance` workflows with a plugin that fails in every hook
//! (`CONFPLUGIN-FAULTY`, requirement 10-4).

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
