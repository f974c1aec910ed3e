//! The `otel-execution` durable Lambda function (see `lib.rs`): OpenTelemetry
//! spans in the per-execution view, exported over OTLP.

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
