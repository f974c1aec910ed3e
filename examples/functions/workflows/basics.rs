//! Steps, waits, retries and codecs.

use super::*;

#[derive(Debug, Deserialize)]
pub(crate) struct Named {
    name: String,
}

/// Step, wait one second, step.
pub(crate) async fn step_wait_step(mut wf: Workflow, input: Named) -> Result<String, StepError> {
    let name = input.name;
    // Written once per execution (not again when the second invocation
    // replays), with the execution ARN as a top-level JSON field.
    tracing::info!(%name, "greeting");
    let greeting: String = wf
        .step("greet", move |_| async move {
            tracing::info!("composing the greeting");
            Ok(format!("hello {name}"))
        })
        .await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    wf.step("shout", move |_| async move { Ok(greeting.to_uppercase()) })
        .await
}

/// `count` steps, each adding its index.
pub(crate) async fn multiple_steps(mut wf: Workflow, count: u32) -> Result<u32, StepError> {
    let mut total = 0;
    for i in 0..count {
        total = wf
            .step(format!("add-{i}"), move |_| async move { Ok(total + i) })
            .await?;
    }
    Ok(total)
}

/// Only a wait of `seconds`.
pub(crate) async fn wait_only(mut wf: Workflow, seconds: u64) -> Result<String, StepError> {
    wf.wait("only", Duration::from_secs(seconds)).await;
    Ok(format!("waited {seconds} s"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Effects {
    /// A file every run of the step body appends a line to.
    log: String,
}

/// A step with an observable side effect, then two waits.
pub(crate) async fn replay_determinism(mut wf: Workflow, input: Effects) -> Result<u32, StepError> {
    let log = input.log;
    let value: u32 = wf
        .step("side-effect", move |ctx| async move {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?;
            writeln!(file, "ran {}", ctx.operation_id())?;
            Ok(42)
        })
        .await?;
    wf.wait("first", Duration::from_secs(1)).await;
    wf.wait("second", Duration::from_secs(1)).await;
    Ok(value)
}

/// An error type of the user's, recorded as the step's `ErrorType`.
#[derive(Debug)]
pub(crate) struct CardDeclined;

impl std::fmt::Display for CardDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for CardDeclined {}

/// A step that fails, without retries, which fails the execution.
pub(crate) async fn step_fails(mut wf: Workflow, _: serde_json::Value) -> Result<u32, StepError> {
    let _: u32 = wf.step("validate", |_| async { Ok(1) }).await?;
    wf.step_with(StepConfig::named("charge").retry(NoRetry), |_| async {
        Err(CardDeclined.into())
    })
    .await
}

/// A flaky step: its first `failures` attempts fail, then it succeeds.
/// Retried every second, 5 attempts at most.
pub(crate) async fn retry_succeeds(mut wf: Workflow, failures: u32) -> Result<String, StepError> {
    let config = StepConfig::named("flaky").retry(FixedDelay::new(Duration::from_secs(1), 5));
    wf.step_with(config, move |ctx| async move {
        if ctx.attempt() <= failures {
            Err(StepFailure::new(
                "Unavailable",
                format!("attempt {} failed", ctx.attempt()),
            ))
        } else {
            Ok(format!("succeeded on attempt {}", ctx.attempt()))
        }
    })
    .await
}

/// A step that always fails: 3 attempts, 1 second apart, then the
/// execution fails with the last error.
pub(crate) async fn retry_exhausted(
    mut wf: Workflow,
    _: serde_json::Value,
) -> Result<String, StepError> {
    let config = StepConfig::named("doomed").retry(FixedDelay::new(Duration::from_secs(1), 3));
    wf.step_with(config, |ctx| async move {
        Err::<String, _>(StepFailure::new(
            "Unavailable",
            format!("attempt {} failed", ctx.attempt()),
        ))
    })
    .await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Parcel {
    id: u64,
    label: String,
    items: Vec<u32>,
}

/// A parcel whose label is sealed (field-level encryption).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SealedParcel {
    id: u64,
    label: Sealed<String>,
}

/// Steps checkpointed with bincode and MessagePack, with sealed fields, and
/// compressed then encrypted, read back after a wait (the second
/// invocation opens what the service stored).
pub(crate) async fn binary_codecs(mut wf: Workflow, id: u64) -> Result<String, StepError> {
    let parcel = Parcel {
        id,
        label: "fragile".into(),
        items: vec![1, 2, 3],
    };
    let p = parcel.clone();
    let a: Parcel = wf
        .step_with(
            StepConfig::named("bincode").codec(Bincode),
            move |_| async move { Ok(p) },
        )
        .await?;
    let b: Parcel = wf
        .step_with(
            StepConfig::named("msgpack").codec(MsgPack),
            move |_| async move { Ok(parcel) },
        )
        .await?;
    let keys = StaticKeyring::new("interop-1", [7; 32]);
    let sealed: SealedParcel = wf
        .step_with(
            StepConfig::named("sealed-fields").codec(SealedFields::new(Json, keys.clone())),
            move |_| async move {
                Ok(SealedParcel {
                    id,
                    label: Sealed::new("fragile".into()),
                })
            },
        )
        .await?;
    let lines: Vec<String> = wf
        .step_with(
            StepConfig::named("compressed-encrypted")
                .codec(Encrypted::new(Compressed::new(Json), keys)),
            |_| async { Ok((0..20_000).map(|i| format!("line-{}", i % 50)).collect()) },
        )
        .await?;
    // Past the 1 MiB an operation may checkpoint: kept in a file (under
    // `interop_files()`), the record holding its path.
    let kept: String = wf
        .step_with(
            StepConfig::named("file-system").codec(FileSystem::new(interop_files())),
            |_| async { Ok("z".repeat(1_500_000)) },
        )
        .await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    Ok(format!(
        "{} {} {} sealed:{} lines:{} file:{}",
        a.id,
        b.label,
        a == b,
        *sealed.label,
        lines.len(),
        kept.len()
    ))
}

/// One step whose body takes `secs` seconds: for an execution that times
/// out while the body runs (its own function, so that no other scenario
/// waits behind it).
pub(crate) async fn slow_step(mut wf: Workflow, secs: u64) -> Result<String, StepError> {
    let n: u32 = wf
        .step("slow", move |_| async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            Ok(1)
        })
        .await?;
    Ok(format!("slept {n}"))
}
