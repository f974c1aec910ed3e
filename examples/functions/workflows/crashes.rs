//! Invocations that die inside a step, and a plugin that logs every hook.

use super::*;

/// Where the interop functions keep values in files: a directory the
/// emulator's functions and the interop test (on the same machine) share.
pub fn interop_files() -> std::path::PathBuf {
    std::env::temp_dir().join("durable-yield-interop-files")
}

/// Set by a step body to kill the invocation it runs in (see
/// [`serve_crashing`]).
pub(crate) static DIE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Debug, Deserialize)]
pub(crate) struct CrashInput {
    /// A file the first run of the body creates.
    marker: String,
}

/// A step "before", then a child context "ctx" holding the step "slow",
/// whose first run dies three seconds into its body (the process is
/// killed: an out-of-memory kill, a timeout); later runs return at once.
/// (Three seconds leave the START, sent 100 ms into the body, time to
/// reach an emulator busy with every other interop scenario.)
pub(crate) async fn crash_in_step(
    mut wf: Workflow,
    input: CrashInput,
) -> Result<String, StepError> {
    let marker = input.marker;
    let before: u64 = wf.step("before", |_| async { Ok(1u64) }).await?;
    let slow: String = wf
        .child("ctx", move |mut wf| async move {
            wf.step("slow", move |ctx| async move {
                if !std::path::Path::new(&marker).exists() {
                    std::fs::write(&marker, "died").map_err(StepFailure::from_error)?;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    DIE.store(true, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                Ok(format!("attempt {}", ctx.attempt()))
            })
            .await
        })
        .await?;
    Ok(format!("{before} {slow}"))
}

/// Serves `workflow`. When a body sets `die`, the invocation is dropped
/// `grace` later where it is and the handler fails, as if the sandbox had
/// died: nothing more of it reaches the service, which invokes again. (A
/// real `exit` would end `cargo lambda watch`'s function scheduler for
/// good.)
pub(crate) async fn serve_crashing<W, I, O>(
    workflow: W,
    die: &'static std::sync::atomic::AtomicBool,
    grace: Duration,
) -> Result<(), Error>
where
    I: serde::de::DeserializeOwned + Send + 'static,
    O: serde::Serialize + Send + 'static,
    W: durable_yield::WorkflowFn<I, O>,
{
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = AwsDurableService::from_conf(&config);
    let function = DurableFunction::new(workflow, service, CheckpointBatching::default());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<durable_yield::model::InvocationInput>| {
            let function = function.clone();
            async move {
                die.store(false, Ordering::SeqCst);
                let died = async {
                    while !die.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    tokio::time::sleep(grace).await;
                };
                // Boxed: rustdoc lays out the whole future otherwise, past
                // its query depth limit.
                let handled = Box::pin(async move { function.handle(event.payload).await });
                tokio::select! {
                    output = handled => Ok(output?),
                    () = died => Err(Error::from("the sandbox died in a step body")),
                }
            }
        },
    ))
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct HooksInput {
    /// A file the plugin appends its hook lines to.
    #[allow(dead_code)]
    log: String,
}

/// A child holding a step and a one-second wait, then a two-item map
/// whose second item fails (every failure tolerated).
pub(crate) async fn plugin_hooks(mut wf: Workflow, _input: HooksInput) -> Result<u32, StepError> {
    let a: u32 = wf
        .child("group", |mut wf| async move {
            let a: u32 = wf.step("inside", |_| async { Ok(1) }).await?;
            wf.wait("nap", Duration::from_secs(1)).await;
            Ok::<_, StepError>(a)
        })
        .await?;
    let r = wf
        .map_with(
            MapConfig::named("items")
                .max_concurrency(1)
                .completion(CompletionPolicy::all()),
            vec![1u32, 2],
            |_, x, _| async move {
                if x == 2 {
                    Err::<u32, _>("two is bad")
                } else {
                    Ok(x)
                }
            },
        )
        .await?;
    Ok(a + r.successes().sum::<u32>())
}

/// Writes each hook of AWS's newest plugin revision as a line to the file
/// named by the execution input's `log` field.
pub(crate) struct HookLog;

pub(crate) struct HookLines(Option<std::fs::File>);

impl HookLines {
    fn line(&mut self, line: String) -> durable_yield::plugin::HookResult {
        if let Some(file) = &mut self.0 {
            writeln!(file, "{line}")?;
        }
        Ok(())
    }
}

impl durable_yield::plugin::Plugin for HookLog {
    fn invocation(
        &self,
        start: &durable_yield::plugin::InvocationStart<'_>,
    ) -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> {
        let input = start
            .operations
            .iter()
            .find_map(|op| op.execution_details.as_ref()?.input_payload.clone());
        let log = input
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p.as_str()).ok())
            .and_then(|v| v["log"].as_str().map(str::to_owned));
        let file = match log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => None,
        };
        Ok(Box::new(HookLines(file)))
    }
}

pub(crate) fn function_line(hook: &str, e: &durable_yield::plugin::FunctionEvent<'_>) -> String {
    format!(
        "{hook} {} {}/{}{}{}{}",
        e.name.unwrap_or("-"),
        e.op_type,
        e.sub_type.unwrap_or("-"),
        e.attempt.map(|a| format!(" #{a}")).unwrap_or_default(),
        if e.replayed { " replayed" } else { "" },
        e.outcome
            .map(|o| format!(" {}", o.as_str()))
            .unwrap_or_default(),
    )
}

impl durable_yield::plugin::InvocationHooks for HookLines {
    fn on_operation_start(
        &mut self,
        e: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!(
            "op start {} {} replayed={}",
            e.name.unwrap_or("-"),
            e.status,
            e.replayed
        ))
    }
    fn on_operation_end(
        &mut self,
        e: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!(
            "op end {} {} replayed={}",
            e.name.unwrap_or("-"),
            e.status,
            e.replayed
        ))
    }
    fn on_attempt_start(
        &mut self,
        e: &durable_yield::plugin::AttemptEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!(
            "attempt start {} #{}",
            e.name.unwrap_or("-"),
            e.attempt
        ))
    }
    fn on_attempt_end(
        &mut self,
        e: &durable_yield::plugin::AttemptEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        let outcome = e.outcome.map(|o| o.as_str()).unwrap_or("-");
        self.line(format!(
            "attempt end {} #{} {outcome}",
            e.name.unwrap_or("-"),
            e.attempt
        ))
    }
    fn on_invocation_start(
        &mut self,
        start: &durable_yield::plugin::InvocationStart<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!("invocation start first={}", start.first_invocation))
    }
    fn on_function_start(
        &mut self,
        e: &durable_yield::plugin::FunctionEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(function_line("fn start", e))
    }
    fn on_function_end(
        &mut self,
        e: &durable_yield::plugin::FunctionEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(function_line("fn end", e))
    }
    fn on_operation_change(
        &mut self,
        change: &durable_yield::plugin::OperationChange<'_>,
    ) -> durable_yield::plugin::HookResult {
        let missing = change
            .updated
            .iter()
            .filter(|u| !change.operations.iter().any(|o| o.id == u.id))
            .count();
        let mut names: Vec<String> = change
            .updated
            .iter()
            .filter(|o| o.op_type != durable_yield::model::OperationType::Execution)
            .map(|o| format!("{}={}", o.name.as_deref().unwrap_or("-"), o.status))
            .collect();
        names.sort();
        self.line(format!("change {} missing={missing}", names.join(",")))
    }
    fn on_invocation_end(
        &mut self,
        e: &durable_yield::plugin::InvocationEnd<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!("invocation end {}", e.status))
    }
}
