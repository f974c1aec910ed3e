//! Registration: exclusive groups, and plugins named in
//! `DURABLE_EXECUTION_PLUGINS` built from a catalog.

use super::*;

/// A [`Recorder`] in exclusive groups.
pub(super) struct Grouped {
    inner: Recorder,
    groups: &'static [&'static str],
}

impl Plugin for Grouped {
    fn invocation(
        &self,
        start: &InvocationStart<'_>,
    ) -> Result<Box<dyn InvocationHooks>, BoxError> {
        self.inner.invocation(start)
    }
    fn name(&self) -> &str {
        self.inner.tag
    }
    fn exclusive_groups(&self) -> &[&str] {
        self.groups
    }
}

/// Another plugin type in a group (for the "mutually exclusive" message).
pub(super) struct OtherGrouped(Grouped);

impl Plugin for OtherGrouped {
    fn invocation(
        &self,
        start: &InvocationStart<'_>,
    ) -> Result<Box<dyn InvocationHooks>, BoxError> {
        self.0.invocation(start)
    }
    fn name(&self) -> &str {
        self.0.name()
    }
    fn exclusive_groups(&self) -> &[&str] {
        self.0.groups
    }
}

pub(super) fn grouped(tag: &'static str, groups: &'static [&'static str]) -> (Grouped, Log) {
    let (inner, log) = recorder(tag);
    (Grouped { inner, groups }, log)
}

/// As AWS's SDKs refuse a second plugin of one `exclusive_group` at cold
/// start: the second is refused at registration, with a message that names
/// both and the group, and the runner stays as it was: the refused plugin
/// never hears of an invocation, the accepted ones (other groups, none)
/// do.
#[tokio::test]
async fn a_second_plugin_of_an_exclusive_group_is_refused_at_registration() {
    let (first, first_log) = grouped("first:", &["view", "metrics"]);
    let (plain, plain_log) = recorder("plain:");
    let (audit, audit_log) = grouped("audit:", &["audit", "audit"]);
    let mut runner = LocalRunner::new();
    runner
        .try_plugin(first)
        .expect("the first of its groups")
        .try_plugin(plain)
        .expect("a plugin in no group")
        .try_plugin(audit)
        .expect("a group named twice by one plugin is one membership");

    // Another type in the second of the first plugin's groups.
    let (rival, rival_log) = grouped("rival:", &["metrics"]);
    let Err(refused) = runner.try_plugin(OtherGrouped(rival)) else {
        panic!("a second plugin of group metrics is refused");
    };
    assert_eq!(refused.group(), "metrics");
    assert_eq!(refused.registered(), "first:");
    assert_eq!(refused.refused(), "rival:");
    assert_eq!(
        refused.to_string(),
        "plugins first: and rival: are mutually exclusive (exclusive group 'metrics'): \
         register only one plugin of this group"
    );
    // The same plugin again (by its name): "more than once".
    let (again, again_log) = grouped("audit:", &["audit"]);
    let Err(refused) = runner.try_plugin(again) else {
        panic!("a second Grouped of group audit is refused");
    };
    assert_eq!(
        refused.to_string(),
        "plugin audit: is registered more than once in exclusive group 'audit': \
         register it only once"
    );

    // The runner runs with the three it accepted, in order.
    let run = runner.run(&flow, &()).await.expect("the execution runs");
    assert_eq!(run.result, Some(1 + 2 + 6 + 8));
    for (log, who) in [(&rival_log, "rival"), (&again_log, "again")] {
        assert!(
            log.lock().unwrap().is_empty(),
            "the refused {who} heard of an invocation"
        );
    }
    let first = first_log.lock().unwrap().clone();
    assert!(first.len() > 10, "{first:?}");
    for (log, tag) in [(&plain_log, "plain:"), (&audit_log, "audit:")] {
        let lines: Vec<String> = log.lock().unwrap().clone();
        let theirs: Vec<String> = first.iter().map(|l| l.replacen("first:", tag, 1)).collect();
        assert_eq!(lines, theirs, "{tag} heard what first: heard");
    }

    // `plugin` panics with the message of the conflict.
    let (third, _) = grouped("first:", &["view"]);
    let runner = LocalRunner::new().plugin(grouped("first:", &["view"]).0);
    let Err(panic) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.plugin(third)))
    else {
        panic!("plugin() panics on a conflict");
    };
    assert_eq!(
        panic.downcast_ref::<String>().map(String::as_str),
        Some(
            "plugin first: is registered more than once in exclusive group 'view': \
             register it only once"
        )
    );
}

/// As AWS's SDKs read `DURABLE_EXECUTION_PLUGINS` at cold start: the named
/// plugins come from the function's catalog, after those registered in
/// code and in the order named, and hear every invocation; a malformed
/// value, a repeated or unknown name, or two plugins of one exclusive
/// group are refused with a message that says what to change.
#[tokio::test]
async fn plugins_named_as_in_durable_execution_plugins_come_from_the_catalog() {
    use durable_yield::plugin::{PluginCatalog, PluginLoadError};
    let log = Log::default();
    let tagged = |tag: &'static str| {
        let log = log.clone();
        move || Recorder {
            tag,
            log: log.clone(),
        }
    };
    let catalog = PluginCatalog::new()
        .add("b", tagged("b:"))
        .add("unused", tagged("unused:"))
        .add("c", tagged("c:"))
        .add("view-1", || Grouped {
            inner: recorder("view-1:").0,
            groups: &["view"],
        })
        .add("view-2", || Grouped {
            inner: recorder("view-2:").0,
            groups: &["view"],
        });
    assert_eq!(
        catalog.names().collect::<Vec<_>>(),
        ["b", "unused", "c", "view-1", "view-2"]
    );
    let runner = LocalRunner::new()
        .plugin(tagged("code:")())
        .plugins_named(&catalog, " c , b")
        .expect("both are in the catalog");
    let run = runner.run(&flow, &()).await.expect("the execution runs");
    assert_eq!(run.result, Some(1 + 2 + 6 + 8));
    let lines = log.lock().unwrap().clone();
    let starts: Vec<&str> = lines
        .iter()
        .filter(|l| l.ends_with("invocation start first=true updated=0"))
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(starts, ["code", "c", "b"], "in code first, then as named");
    let of = |tag: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(tag).map(str::to_owned))
            .collect()
    };
    assert!(of("code:").len() > 10, "{lines:?}");
    assert_eq!(of("c:"), of("code:"), "c heard what code heard");
    assert_eq!(of("b:"), of("code:"), "b heard what code heard");
    assert!(of("unused:").is_empty(), "a plugin not named is not built");

    let refused = |names: &str| -> PluginLoadError {
        let Err(e) = LocalRunner::new().plugins_named(&catalog, names) else {
            panic!("{names:?} is refused");
        };
        e
    };
    assert_eq!(
        refused("b,,c").to_string(),
        "DURABLE_EXECUTION_PLUGINS must hold non-empty, comma-separated plugin names, not \
         \"b,,c\""
    );
    assert_eq!(
        refused("b, c, b").to_string(),
        "DURABLE_EXECUTION_PLUGINS names plugin 'b' more than once: name it once"
    );
    assert_eq!(
        refused("b, metrics").to_string(),
        "DURABLE_EXECUTION_PLUGINS names plugin 'metrics', which this function was not built \
         with (its catalog has: b, unused, c, view-1, view-2): add it to the PluginCatalog, \
         or remove it from DURABLE_EXECUTION_PLUGINS"
    );
    let conflict = refused("view-1,view-2");
    assert_eq!(
        conflict.to_string(),
        "plugins view-1: and view-2: are mutually exclusive (exclusive group 'view'): register \
         only one plugin of this group (registered in code or named in \
         DURABLE_EXECUTION_PLUGINS)"
    );
    assert!(matches!(conflict, PluginLoadError::Conflict(c) if c.group() == "view"));
    // A `DurableFunction` (a handler over another service) reads them too.
    let function = durable_yield::lambda::DurableFunction::new(
        flow,
        durable_yield_tests::AcceptingService,
        durable_yield::CheckpointBatching::default(),
    );
    let unknown = function.plugins_named(&catalog, "view-1, nope");
    assert!(
        matches!(&unknown, Err(PluginLoadError::Unknown { name, .. }) if name == "nope"),
        "{:?}",
        unknown.err()
    );
    // Blank: none.
    let runner = LocalRunner::new()
        .plugins_named(&catalog, "  ")
        .expect("none");
    let run = runner.run(&flow, &()).await.expect("the execution runs");
    assert_eq!(run.result, Some(17));
}

/// `DurableHandler::plugins_from_env` reads `DURABLE_EXECUTION_PLUGINS` (in
/// a child process, which the variable is set for).
#[test]
fn the_lambda_handler_reads_durable_execution_plugins() {
    use durable_yield::lambda::DurableHandler;
    use durable_yield::plugin::PluginCatalog;
    match std::env::var("DURABLE_YIELD_PLUGINS_CHILD").as_deref() {
        Ok("read") => {
            let catalog = PluginCatalog::new().add("b", || recorder("b:").0);
            let read = DurableHandler::new(flow).plugins_from_env(&catalog);
            println!("read: {:?}", read.err().map(|e| e.to_string()));
            return;
        }
        Ok(_) => {
            // A handler that does not read the variable warns at cold start.
            let subscriber = tracing_subscriber::fmt()
                .with_writer(std::io::stdout)
                .with_ansi(false)
                .finish();
            let _guard = tracing::subscriber::set_default(subscriber);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(DurableHandler::new(flow).into_service());
            println!("read: built");
            return;
        }
        Err(_) => {}
    }
    let run_child = |mode: &str, value: Option<&str>| -> String {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "registration::the_lambda_handler_reads_durable_execution_plugins",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("DURABLE_YIELD_PLUGINS_CHILD", mode)
            .env("AWS_REGION", "us-west-2")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("DURABLE_EXECUTION_PLUGINS");
        if let Some(value) = value {
            command.env("DURABLE_EXECUTION_PLUGINS", value);
        }
        let out = command.output().expect("the test binary runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let child = |value: Option<&str>| -> String {
        let stdout = run_child("read", value);
        // After the test harness's "test ... " on the same line.
        let line = stdout
            .lines()
            .find_map(|l| l.find("read: ").map(|at| l[at..].to_owned()));
        line.unwrap_or_else(|| panic!("no answer from the child: {stdout}"))
    };
    assert_eq!(child(None), "read: None");
    assert_eq!(child(Some("b")), "read: None");
    assert_eq!(
        child(Some("b, nope")),
        "read: Some(\"DURABLE_EXECUTION_PLUGINS names plugin 'nope', which this function was \
         not built with (its catalog has: b): add it to the PluginCatalog, or remove it from \
         DURABLE_EXECUTION_PLUGINS\")"
    );
    let warning = "DURABLE_EXECUTION_PLUGINS names plugins, but this function does not read \
                   it: no plugin is turned on by it; build the handler with \
                   DurableHandler::plugins_from_env and a PluginCatalog";
    let unread = run_child("warn", Some("otel"));
    assert!(
        unread.contains("read: built") && unread.contains(warning),
        "{unread}"
    );
    let unset = run_child("warn", None);
    assert!(
        unset.contains("read: built") && !unset.contains("DURABLE_EXECUTION_PLUGINS"),
        "{unset}"
    );
}

/// A plugin registered in code and named in `DURABLE_EXECUTION_PLUGINS`
/// as the very same object (`plugin_shared`, `PluginCatalog::add_shared`)
/// is registered once, with a warning, as AWS's Python SDK skips a factory
/// registered both ways; a new one of the same kind is still refused by
/// its exclusive group.
#[tokio::test]
async fn the_same_plugin_registered_in_code_and_named_is_registered_once() {
    use durable_yield::plugin::{PluginCatalog, PluginLoadError};
    use std::sync::Arc;
    let (shared, log) = grouped("view:", &["view"]);
    let shared = Arc::new(shared);
    let catalog = PluginCatalog::new()
        .add_shared("view", shared.clone())
        .add("fresh-view", || grouped("fresh:", &["view"]).0);
    let logs = durable_yield_tests::LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let runner = {
        let _guard = tracing::subscriber::set_default(subscriber);
        LocalRunner::new()
            .plugin_shared(shared.clone())
            .plugins_named(&catalog, "view")
            .expect("the same plugin is skipped, not refused")
    };
    assert!(
        logs.text()
            .contains("skipping plugin 'view' named in DURABLE_EXECUTION_PLUGINS: the same plugin is already registered"),
        "{}",
        logs.text()
    );
    let run = runner.run(&flow, &()).await.unwrap();
    assert!(run.result.is_some(), "{:?}", run.error);
    let starts = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("view:invocation start"))
        .count();
    assert_eq!(starts as u32, run.invocations, "one registration, not two");
    // A new plugin of the same group is another plugin: refused.
    let refused = LocalRunner::new()
        .plugin_shared(shared)
        .plugins_named(&catalog, "fresh-view")
        .unwrap_err();
    assert!(matches!(refused, PluginLoadError::Conflict(_)), "{refused}");
}
