//! The `conformance-echo` durable Lambda function (see `lib.rs`): a chained
//! invoke target of AWS's conformance requirements.

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
