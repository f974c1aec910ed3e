//! AWS's emulator stack for interop tests: `dex-local-runner` (the durable
//! execution service) and `cargo lambda watch` (a Lambda Invoke endpoint
//! running the functions of `examples/functions/` as real `lambda_runtime` binaries),
//! on free ports of 127.0.0.1.
//!
//! The tools are looked up in `$DURABLE_YIELD_EMULATOR_BIN`, else in the
//! workspace's `.venv/bin` (which `.ci/run` creates).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Where the emulator's tools are, if installed.
pub fn tools() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("DURABLE_YIELD_EMULATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin"));
    let dex = dir.join("dex-local-runner");
    let cargo_lambda = dir.join("cargo-lambda");
    (dex.is_file() && cargo_lambda.is_file()).then_some((dex, cargo_lambda))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The running stack. Dropping it stops both processes (and their children).
pub struct Stack {
    emulator: Child,
    watch: Child,
    /// The emulator's base URL.
    pub endpoint: String,
    /// The emulator's port.
    pub port: u16,
    /// Where the processes' output goes.
    pub logs: PathBuf,
}

/// The dummy credentials both sides sign with.
const ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "durable-yield-test"),
    ("AWS_SECRET_ACCESS_KEY", "durable-yield-test"),
    ("AWS_REGION", "us-west-2"),
];

/// Whether a variable is one cargo sets for the test being run. Builds
/// started from the test must not see them: a build script that reads one
/// (ring's reads `CARGO_MANIFEST_DIR`) would make the nested build and the
/// next `cargo test` rebuild each other's dependencies.
fn set_by_cargo_for_this_test(name: &str) -> bool {
    name == "CARGO_MANIFEST_DIR"
        || name == "CARGO_MANIFEST_PATH"
        || name == "CARGO_CRATE_NAME"
        || name == "CARGO_PRIMARY_PACKAGE"
        || name == "CARGO_TARGET_TMPDIR"
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_")
}

fn spawn(cmd: &mut Command, log: &Path) -> Result<Child, String> {
    let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_this_test) {
            cmd.env_remove(name);
        }
    }
    cmd.envs(ENV)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, so that stopping it stops its children.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

impl Stack {
    /// Builds the function binaries of `examples/functions/` (failing fast on a
    /// compile error), then starts the emulator and the Invoke endpoint.
    /// `skip_time` makes the emulator skip timer waits.
    pub fn start(dex: &Path, cargo_lambda: &Path, skip_time: bool) -> Result<Stack, String> {
        Stack::start_with(dex, cargo_lambda, skip_time, &[])
    }

    /// [`Stack::start`], with environment variables for the functions
    /// (`cargo lambda watch --env-var`).
    pub fn start_with(
        dex: &Path,
        cargo_lambda: &Path,
        skip_time: bool,
        env: &[(&str, String)],
    ) -> Result<Stack, String> {
        let logs = workspace().join("target/interop-logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .args([
                "build",
                "--quiet",
                "-p",
                "durable-yield-functions",
                "--bins",
            ])
            .current_dir(workspace());
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(set_by_cargo_for_this_test) {
                build.env_remove(name);
            }
        }
        let built = build
            .status()
            .map_err(|e| format!("cannot run cargo build: {e}"))?;
        if !built.success() {
            return Err("the function binaries of examples/functions/ do not build".into());
        }
        let (invoke_port, port) = (
            free_port().map_err(|e| e.to_string())?,
            free_port().map_err(|e| e.to_string())?,
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut watch = Command::new(cargo_lambda);
        watch
            .args(["lambda", "watch", "--quiet", "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(invoke_port.to_string())
            .arg("--env-var")
            .arg(format!("AWS_ENDPOINT_URL_LAMBDA={endpoint}"))
            .env("AWS_ENDPOINT_URL_LAMBDA", &endpoint)
            .current_dir(workspace().join("examples").join("functions"));
        for (name, value) in env {
            watch.arg("--env-var").arg(format!("{name}={value}"));
        }
        let watch = spawn(&mut watch, &logs.join("cargo-lambda-watch.log"))?;
        let mut emulator_cmd = Command::new(dex);
        emulator_cmd
            .args(["start-server", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--lambda-endpoint")
            .arg(format!("http://127.0.0.1:{invoke_port}"))
            .args(["--local-runner-region", "us-west-2"])
            // Durable targets of the chained-invoke scenarios and of the
            // conformance requirements' invokes.
            .arg("--function-configs")
            .arg(
                r#"{"multiple-steps":{"DurableConfig":{"ExecutionTimeout":60}},"step-fails":{"DurableConfig":{"ExecutionTimeout":60}},"conformance-echo":{"DurableConfig":{"ExecutionTimeout":60}},"conformance-fail":{"DurableConfig":{"ExecutionTimeout":60}},"conformance-size":{"DurableConfig":{"ExecutionTimeout":60}}}"#,
            )
            .arg(if skip_time {
                "--skip-time"
            } else {
                "--no-skip-time"
            });
        let emulator = spawn(&mut emulator_cmd, &logs.join("dex-local-runner.log"))?;
        let stack = Stack {
            emulator,
            watch,
            endpoint,
            port,
            logs,
        };
        if !wait_for_port(invoke_port, Duration::from_secs(60)) {
            return Err(format!(
                "cargo lambda watch did not listen on {invoke_port}: {}",
                stack.log_tail()
            ));
        }
        if !wait_for_port(port, Duration::from_secs(60)) {
            return Err(format!(
                "dex-local-runner did not listen on {port}: {}",
                stack.log_tail()
            ));
        }
        Ok(stack)
    }

    /// The last lines of both logs, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["cargo-lambda-watch.log", "dex-local-runner.log"] {
            let text = std::fs::read_to_string(self.logs.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(25);
            out.push_str(&format!("\n--- {name}\n{}", lines[from..].join("\n")));
        }
        out
    }

    /// `POST /start-durable-execution`; returns the execution's ARN. The
    /// execution times out after 120 s.
    pub fn start_execution(
        &self,
        function: &str,
        name: &str,
        input: &Value,
    ) -> Result<String, String> {
        self.start_execution_timing_out(function, name, input, 120)
    }

    /// [`Stack::start_execution`] with an execution timeout of
    /// `timeout_seconds`.
    pub fn start_execution_timing_out(
        &self,
        function: &str,
        name: &str,
        input: &Value,
        timeout_seconds: u32,
    ) -> Result<String, String> {
        let body = serde_json::json!({
            "AccountId": "123456789012",
            "FunctionName": function,
            "FunctionQualifier": "$LATEST",
            "ExecutionName": name,
            "ExecutionTimeoutSeconds": timeout_seconds,
            "ExecutionRetentionPeriodDays": 1,
            "Input": input.to_string(),
        });
        let (status, response) = http(self.port, "POST", "/start-durable-execution", Some(&body))?;
        if status != 201 && status != 200 {
            return Err(format!(
                "start-durable-execution answered {status}: {response}"
            ));
        }
        response["ExecutionArn"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no ExecutionArn in {response}"))
    }

    /// `GetDurableExecution` with the execution data.
    pub fn execution(&self, arn: &str) -> Result<Value, String> {
        let path = format!(
            "/2025-12-01/durable-executions/{}?IncludeExecutionData=true",
            encode(arn)
        );
        match http(self.port, "GET", &path, None)? {
            (200, v) => Ok(v),
            (status, v) => Err(format!("GetDurableExecution answered {status}: {v}")),
        }
    }

    /// Polls [`Stack::execution`] until the execution is no longer RUNNING.
    pub fn wait_until_done(&self, arn: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let execution = self.execution(arn)?;
            if execution["Status"] != "RUNNING" {
                return Ok(execution);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "still RUNNING after {timeout:?}: {execution}{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GetDurableExecutionHistory` with the execution data, every page.
    pub fn history(&self, arn: &str) -> Result<Vec<Value>, String> {
        let mut events = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut path = format!(
                "/2025-12-01/durable-executions/{}/history?IncludeExecutionData=true&MaxItems=1000",
                encode(arn)
            );
            if let Some(m) = &marker {
                path.push_str(&format!("&Marker={}", encode(m)));
            }
            let (status, page) = http(self.port, "GET", &path, None)?;
            if status != 200 {
                return Err(format!(
                    "GetDurableExecutionHistory answered {status}: {page}"
                ));
            }
            events.extend(page["Events"].as_array().cloned().unwrap_or_default());
            marker = page["NextMarker"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(str::to_owned);
            if marker.is_none() {
                return Ok(events);
            }
        }
    }
}

impl Stack {
    /// Polls the history of `arn` until the callback named `name` started;
    /// returns its id.
    pub fn callback_id(&self, arn: &str, name: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.history(arn)?;
            let id = events
                .iter()
                .find(|e| e["EventType"] == "CallbackStarted" && e["Name"] == name)
                .and_then(|e| e["CallbackStartedDetails"]["CallbackId"].as_str());
            if let Some(id) = id {
                return Ok(id.to_owned());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "callback {name:?} did not start within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an invocation has ended after callback `name` started
    /// (the function suspended on it), so that an answer sent now reaches a
    /// suspended execution, not the invocation that created the callback:
    /// answered while that invocation still runs, the answer can come back
    /// in one of its checkpoint responses and the function goes on without
    /// suspending (one invocation fewer; both are correct).
    pub fn suspended_on_callback(
        &self,
        arn: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.history(arn)?;
            let started = events
                .iter()
                .position(|e| e["EventType"] == "CallbackStarted" && e["Name"] == name);
            let suspended = started.is_some_and(|at| {
                events[at..]
                    .iter()
                    .any(|e| e["EventType"] == "InvocationCompleted")
            });
            if suspended {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no invocation ended after callback {name:?} started within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn callback_call(&self, id: &str, what: &str, body: &str) -> Result<(), String> {
        let path = format!(
            "/2025-12-01/durable-execution-callbacks/{}/{what}",
            encode(id)
        );
        match http_text(self.port, "POST", &path, body)? {
            (200..=299, _) => Ok(()),
            (status, v) => Err(format!("callback {what} answered {status}: {v}")),
        }
    }

    /// `SendDurableExecutionCallbackSuccess` with this raw body.
    pub fn callback_success(&self, id: &str, body: &str) -> Result<(), String> {
        self.callback_call(id, "succeed", body)
    }

    /// `SendDurableExecutionCallbackFailure` with this error object.
    pub fn callback_failure(&self, id: &str, error: &Value) -> Result<(), String> {
        self.callback_call(id, "fail", &error.to_string())
    }

    /// `SendDurableExecutionCallbackHeartbeat`.
    pub fn callback_heartbeat(&self, id: &str) -> Result<(), String> {
        self.callback_call(id, "heartbeat", "")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for child in [&mut self.watch, &mut self.emulator] {
            // The negative pid names the process group.
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", child.id())])
                .status();
        }
        std::thread::sleep(Duration::from_millis(300));
        for child in [&mut self.watch, &mut self.emulator] {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}

/// Percent-encodes a path label fully (`:` and `/` too), as AWS clients do.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A minimal HTTP/1.1 client for the emulator on 127.0.0.1.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    http_text(
        port,
        method,
        path,
        &body.map(Value::to_string).unwrap_or_default(),
    )
}

/// [`http`] with a body sent as it is.
fn http_text(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, Value), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect {port}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed response to {method} {path}: {text}"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let payload = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    let value = if payload.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))?
    };
    Ok((status, value))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_fully_encoded() {
        assert_eq!(encode("a:b/c d"), "a%3Ab%2Fc%20d");
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n"), "{\"a\":1}");
    }
}
