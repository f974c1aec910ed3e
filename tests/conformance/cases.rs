//! How each conformance requirement's workflow (`workflows/`) runs on
//! the local runner: which callbacks are answered and how, which functions
//! a chained invoke finds, which plugins listen, where the process dies.

use std::time::Duration;

use durable_yield::local::CallbackAnswer;
use durable_yield::model::ErrorObject;
use durable_yield::{LocalExecution, LocalRun, LocalRunner, Workflow};
use durable_yield_tests::drive;
use serde_json::Value;

use crate::workflows::{self, text};

/// One of a requirement's `CallbackActions`, its placeholders substituted:
/// what the external system sends to the callbacks of a name.
#[derive(Debug, Clone)]
pub struct Action {
    /// The callback's name, `*` (any) or `${/regex/}`.
    pub name: String,
    /// `success`, `failure` or `heartbeat`.
    pub operation: String,
    /// The value sent (JSON-encoded for a success; the error's fields for
    /// a failure).
    pub payload: Value,
    /// Seconds after the callback started (after the previous answer to
    /// the same callback, for a second one).
    pub delay: f64,
}

/// `value` as AWS's runner sends it (Python's `json.dumps`: `", "` and
/// `": "` between items, non-ASCII characters escaped): the writer of
/// AWS's file system envelopes.
pub use durable_yield::codecs::files::python_json;

/// The first action not `used` yet whose name matches the callback
/// `name` (`*`, `${/regex/}` or the name itself), as AWS's runner picks
/// them.
pub fn next_action<'a>(
    actions: &'a [Action],
    used: &[bool],
    name: &str,
) -> Option<(usize, &'a Action)> {
    actions.iter().enumerate().find(|(i, a)| {
        !used[*i]
            && match a
                .name
                .strip_prefix("${/")
                .and_then(|r| r.strip_suffix("/}"))
            {
                Some(p) => regex::Regex::new(p).is_ok_and(|re| re.is_match(name)),
                None => a.name == "*" || a.name == name,
            }
    })
}

/// A runner that answers callbacks as `actions` say, the way AWS's runner
/// picks them: each callback, in the order `callbacks` names them (the
/// callbacks the workflow creates), takes the first action not used yet
/// whose name matches; a heartbeat leaves the callback open for the next.
pub fn runner_for(actions: &[Action], callbacks: &[&str]) -> Result<LocalRunner, String> {
    let mut runner = LocalRunner::new();
    let mut used = vec![false; actions.len()];
    for &callback in callbacks {
        let mut after = 0.0;
        loop {
            let found = next_action(actions, &used, callback);
            let Some((i, action)) = found else { break };
            used[i] = true;
            after += action.delay;
            let answer = match action.operation.as_str() {
                "success" => match &action.payload {
                    Value::Null => CallbackAnswer::raw_success(""),
                    payload => CallbackAnswer::raw_success(python_json(payload)),
                },
                "failure" => {
                    let field = |k: &str| action.payload.get(k).and_then(Value::as_str);
                    let mut error = ErrorObject::new(
                        field("ErrorType").unwrap_or("Error"),
                        field("ErrorMessage").unwrap_or(""),
                    );
                    error.error_data = field("ErrorData").map(str::to_owned);
                    CallbackAnswer::failure(error)
                }
                "heartbeat" => CallbackAnswer::heartbeat(),
                other => return Err(format!("unknown callback operation {other:?}")),
            };
            runner = runner.answer_callback(callback, answer.after(Duration::from_secs_f64(after)));
            if action.operation != "heartbeat" {
                break;
            }
        }
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(format!("no callback takes the action {:?}", actions[i]));
    }
    Ok(runner)
}

/// Runs the workflow of requirement `id` on `input` to its end, answering
/// its callbacks as `actions` say.
pub async fn run(id: &str, input: Value, actions: &[Action]) -> Result<LocalRun<Value>, String> {
    let name = text(&input);
    let pair: Vec<String> = input
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let (a, b) = (
        pair.first().cloned().unwrap_or_default(),
        pair.get(1).cloned().unwrap_or_default(),
    );
    // The callback of a wait-for-callback named `n` is `n create callback id`.
    let wfc = |n: &str| runner_for(actions, &[format!("{n} create callback id").as_str()]);
    let owned = id.to_owned();
    let workflow = move |wf: Workflow, input: Value| {
        let id = owned.clone();
        async move { workflows::workflow(&id, wf, input).await }
    };
    let runner = match id {
        "1-17" | "1-18" | "3-12" => return crashing(input, workflow).await,
        _ if id.starts_with("10-") => plugin_runner(id),
        _ if id.starts_with("5-") => with_targets(LocalRunner::new()),
        "4-2" => runner_for(actions, &["approval"])?,
        "4-17" | "4-18" | "4-19" => runner_for(actions, &[a.as_str(), b.as_str()])?,
        _ if id.starts_with("4-") => runner_for(actions, &[name.as_str()])?,
        "7-2" => wfc("approval")?,
        "7-3" => runner_for(actions, &["create callback id"])?,
        "7-9" => runner_for(
            actions,
            &["first create callback id", "second create callback id"],
        )?,
        _ if id.starts_with("7-") => wfc(&name)?,
        _ => LocalRunner::new(),
    };
    runner
        .run(&workflow, &input)
        .await
        .map_err(|e| e.to_string())
}

/// 1-17, 1-18 and 3-12: the process dies where the body says
/// ([`workflows::DIE`], the mark the `conformance-crash` function honours
/// on the emulator), once the service has recorded the step's START (sent
/// before an at-most-once body, while another runs); the next invocations
/// go on from there.
async fn crashing<W>(input: Value, workflow: W) -> Result<LocalRun<Value>, String>
where
    W: durable_yield::WorkflowFn<Value, Value>,
{
    workflows::DIE.store(false, std::sync::atomic::Ordering::SeqCst);
    crash_then_run(input, workflow, |execution| {
        workflows::DIE.load(std::sync::atomic::Ordering::SeqCst)
            && execution.operations().iter().any(|o| {
                o.op_type == durable_yield::model::OperationType::Step
                    && o.status == durable_yield::model::OperationStatus::Started
            })
    })
    .await
}

/// Runs `workflow`'s first invocation until `crashed` says the process
/// dies (an error if it does not within 30 s), then the execution to its
/// end.
async fn crash_then_run<W>(
    input: Value,
    workflow: W,
    crashed: impl Fn(&LocalExecution) -> bool,
) -> Result<LocalRun<Value>, String>
where
    W: durable_yield::WorkflowFn<Value, Value>,
{
    let execution = LocalRunner::new()
        .start(&input)
        .map_err(|e| e.to_string())?;
    let watched = execution.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = reached.clone();
    let crash = std::future::poll_fn(move |cx| {
        if crashed(&watched) {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            return std::task::Poll::Ready(());
        }
        if std::time::Instant::now() >= deadline {
            return std::task::Poll::Ready(());
        }
        std::thread::sleep(Duration::from_millis(1));
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    });
    if execution.invoke_crashing(&workflow, crash).await.is_some() {
        return Err("the first invocation was not interrupted".into());
    }
    if !reached.load(std::sync::atomic::Ordering::SeqCst) {
        return Err("the body never reached the point where the process dies (30 s)".into());
    }
    drive(&execution, &workflow, 20).await?;
    execution.finish().map_err(|e| e.to_string())
}

// ---- plugins (10-x)

/// The runner of plugin requirement `id`, with its plugins.
fn plugin_runner(id: &str) -> LocalRunner {
    workflows::plugins_of(id)
        .into_iter()
        .fold(LocalRunner::new(), LocalRunner::plugin)
}

// ---- chained invokes (5-x)

/// The chained invoke targets, as local durable functions.
fn with_targets(runner: LocalRunner) -> LocalRunner {
    runner
        .register_workflow(workflows::ECHO, workflows::target_echo)
        .register_workflow(workflows::FAIL, workflows::target_fail)
        .register_workflow(workflows::SIZE, workflows::target_size)
}
