//! `durable-yield`: tools for durable executions.
//!
//! ```text
//! durable-yield timeline (--file HISTORY.json | --arn EXECUTION_ARN) [--html PAGE.html] [--json HISTORY.json]
//! ```
//!
//! `timeline` prints an execution's operations as a table (nested under
//! their contexts, with start, duration, status, attempts, errors) and,
//! with `--html`, writes a self-contained page with a Gantt view of them
//! across invocations. The history comes from a JSON file in the shape
//! `GetDurableExecutionHistory` returns (`{"Events": [...]}`: what
//! `LocalRun::history().to_json()` writes, or `aws lambda
//! get-durable-execution-history --include-execution-data` prints), or from
//! the service itself by ARN (credentials, region and endpoint from the
//! usual AWS environment: `AWS_ENDPOINT_URL_LAMBDA` points it at an
//! emulator).

use std::process::ExitCode;

use durable_yield::history::{ExecutionHistory, Gantt};

const USAGE: &str = "usage: durable-yield timeline (--file HISTORY.json | --arn EXECUTION_ARN) \
[--html PAGE.html] [--json HISTORY.json]

  --file PATH   read the history from a JSON file ({\"Events\": [...]}, as
                GetDurableExecutionHistory returns it or LocalRun::history writes it)
  --arn ARN     read it from the service (GetDurableExecutionHistory; credentials,
                region and AWS_ENDPOINT_URL_LAMBDA from the environment)
  --html PATH   also write the timeline as a self-contained HTML page
  --json PATH   also save the history as JSON";

struct Args {
    file: Option<String>,
    arn: Option<String>,
    html: Option<String>,
    json: Option<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    match args.next().as_deref() {
        Some("timeline") => {}
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown command {other:?}")),
    }
    let mut parsed = Args {
        file: None,
        arn: None,
        html: None,
        json: None,
    };
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--file" => &mut parsed.file,
            "--arn" => &mut parsed.arn,
            "--html" => &mut parsed.html,
            "--json" => &mut parsed.json,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        };
        *slot = Some(args.next().ok_or_else(|| format!("{flag} needs a value"))?);
    }
    match (&parsed.file, &parsed.arn) {
        (Some(_), Some(_)) => Err("give --file or --arn, not both".into()),
        (None, None) => Err("give --file or --arn".into()),
        _ => Ok(parsed),
    }
}

async fn history(args: &Args) -> Result<ExecutionHistory, String> {
    if let Some(path) = &args.file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        return ExecutionHistory::from_json(&text).map_err(|e| format!("{path}: {e}"));
    }
    let arn = args.arn.as_deref().unwrap_or_default();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_lambda::Client::new(&config);
    durable_yield::lambda::fetch_history(&client, arn)
        .await
        .map_err(|e| format!("GetDurableExecutionHistory for {arn} failed: {e}"))
}

fn write(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

async fn run(args: Args) -> Result<(), String> {
    let history = history(&args).await?;
    let gantt = Gantt::new(&history);
    print!("{}", gantt.to_text());
    if let Some(path) = &args.html {
        write(path, &gantt.to_html())?;
        eprintln!("wrote {path}");
    }
    if let Some(path) = &args.json {
        write(path, &history.to_json())?;
        eprintln!("wrote {path}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) if problem.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("durable-yield: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("durable-yield: cannot start an async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("durable-yield: {problem}");
            ExitCode::FAILURE
        }
    }
}
