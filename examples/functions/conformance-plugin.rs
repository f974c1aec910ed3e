//! The `conformance-plugin` durable Lambda function (see `lib.rs`): the
//! `conformance` workflows with AWS's instrumentation plugin of the plugin
//! requirements registered (`CONFPLUGIN`).

fn main() -> Result<(), durable_yield::lambda::Error> {
    durable_yield_functions::main(env!("CARGO_BIN_NAME"))
}
