//! The `conformance-crash` durable Lambda function (see `lib.rs`): the
//! `conformance` workflows whose process dies inside a step body (1-17,
//! 1-18, 3-12), the invocation dropped where the body dies.

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
