//! The `otel-invocation` durable Lambda function (see `lib.rs`): OpenTelemetry
//! spans in the per-invocation view, exported over OTLP.

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
