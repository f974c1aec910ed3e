//! The `slow-step` durable Lambda function (see `lib.rs`).

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
