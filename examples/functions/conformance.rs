//! The `conformance` durable Lambda function (see `lib.rs`): runs
//! the workflow of one of AWS's conformance requirements, named by its
//! input `{"id": "<requirement id>", "input": <its input>}`.

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
