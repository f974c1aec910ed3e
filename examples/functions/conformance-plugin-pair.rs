//! The `conformance-plugin-pair` durable Lambda function (see `lib.rs`):
//! the `conformance` workflows with two plugins registered
//! (`CONFPLUGIN-A` and `CONFPLUGIN-B`, requirement 10-5).

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
