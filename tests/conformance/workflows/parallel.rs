//! The workflows of the parallel (8-x) requirements.

use super::*;

pub(super) fn sequential() -> ParallelConfig {
    ParallelConfig::named("parallel").max_concurrency(1)
}

/// A branch returning `value` directly.
pub(super) fn constant(value: Value) -> Branch<Value> {
    Branch::new(move |_| async move { Ok::<_, StepError>(value) })
}

/// A branch that fails.
pub(super) fn failing() -> Branch<Value> {
    Branch::new(|_| async { Err::<Value, _>(StepFailure::new("Error", "the branch fails")) })
}

/// A branch running one step that returns `value`.
pub(super) fn stepping(value: &'static str) -> Branch<Value> {
    Branch::new(move |mut wf| async move {
        Ok::<_, StepError>(json!(echo(&mut wf, "task", value.to_owned()).await?))
    })
}

pub(super) async fn parallel_steps(mut wf: Workflow, _: Value) -> Outcome {
    values(
        wf.parallel_with(sequential(), vec![stepping("task-1"), stepping("task-2")])
            .await?,
    )
}

pub(super) async fn parallel_unnamed(mut wf: Workflow, _: Value) -> Outcome {
    let config = ParallelConfig::new().max_concurrency(1);
    values(
        wf.parallel_with(
            config,
            vec![constant(json!("alpha")), constant(json!("beta"))],
        )
        .await?,
    )
}

pub(super) async fn parallel_named_branches(mut wf: Workflow, _: Value) -> Outcome {
    let branches = vec![
        Branch::named("first", |_| async { Ok::<_, StepError>(json!("one")) }),
        Branch::named("second", |_| async { Ok::<_, StepError>(json!("two")) }),
    ];
    values(wf.parallel_with(sequential(), branches).await?)
}

pub(super) async fn parallel_mixed_types(mut wf: Workflow, _: Value) -> Outcome {
    let branches = vec![
        constant(json!("hello")),
        constant(json!(42)),
        constant(json!({"k": "v"})),
    ];
    values(wf.parallel_with(sequential(), branches).await?)
}

pub(super) async fn parallel_empty(mut wf: Workflow, _: Value) -> Outcome {
    values(
        wf.parallel_with(sequential(), Vec::<Branch<Value>>::new())
            .await?,
    )
}

pub(super) fn policy(policy: CompletionPolicy) -> ParallelConfig {
    sequential().completion(policy)
}

pub(super) async fn parallel_fail_fast(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(0));
    let branches = vec![constant(json!("ok")), failing(), constant(json!("ok"))];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

pub(super) async fn parallel_rethrows(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(0));
    values(
        wf.parallel_with(config, vec![failing(), constant(json!("ok"))])
            .await?,
    )
}

pub(super) async fn parallel_min_successful(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().min_successful(2));
    let branches = (0..4).map(|i| constant(json!(format!("b{i}")))).collect();
    let p = projection(&wf.parallel_with(config, branches).await?);
    Ok(json!({
        "completionReason": p["completionReason"],
        "successCount": p["successCount"],
        "totalCount": p["totalCount"],
    }))
}

pub(super) async fn parallel_one_failure_tolerated(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(1));
    let branches = vec![constant(json!("ok")), failing(), constant(json!("ok"))];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

pub(super) async fn parallel_failures_exceed_count(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(1));
    let branches = vec![failing(), failing(), constant(json!("ok"))];
    Ok(without_status(projection(
        &wf.parallel_with(config, branches).await?,
    )))
}

pub(super) async fn parallel_concurrent(mut wf: Workflow, _: Value) -> Outcome {
    let config = ParallelConfig::named("parallel").max_concurrency(2);
    let branches = (0..3).map(|i| constant(json!(format!("r{i}")))).collect();
    values(wf.parallel_with(config, branches).await?)
}

pub(super) async fn parallel_flat(mut wf: Workflow, _: Value) -> Outcome {
    let config = sequential().nesting(Nesting::Flat);
    values(
        wf.parallel_with(config, vec![stepping("fa"), stepping("fb")])
            .await?,
    )
}

pub(super) async fn parallel_failures_exceed_percentage(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_percentage(25.0));
    let branches = vec![
        failing(),
        failing(),
        constant(json!("ok")),
        constant(json!("ok")),
    ];
    Ok(without_status(projection(
        &wf.parallel_with(config, branches).await?,
    )))
}

pub(super) async fn parallel_wait_in_branch(mut wf: Workflow, _: Value) -> Outcome {
    let waiting = Branch::new(|mut wf| async move {
        wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
        Ok::<_, StepError>(json!("b1"))
    });
    values(
        wf.parallel_with(sequential(), vec![stepping("b0"), waiting])
            .await?,
    )
}

pub(super) async fn parallel_item_codec(mut wf: Workflow, _: Value) -> Outcome {
    let config = sequential().item_codec(ENVELOPED);
    values(
        wf.parallel_with(config, vec![constant(json!("x")), constant(json!("y"))])
            .await?,
    )
}

pub(super) async fn parallel_all_fail_tolerated(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(3));
    let branches = vec![failing(), failing(), failing()];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

pub(super) async fn parallel_min_successful_missed(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().min_successful(3));
    let branches = vec![constant(json!("ok")), failing(), constant(json!("ok"))];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

pub(super) async fn parallel_tolerance_first(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(
        CompletionPolicy::default()
            .min_successful(3)
            .tolerated_failure_count(1),
    );
    let branches = vec![
        failing(),
        failing(),
        constant(json!("ok")),
        constant(json!("ok")),
    ];
    Ok(without_status(projection(
        &wf.parallel_with(config, branches).await?,
    )))
}

pub(super) async fn parallel_zero_concurrency(mut wf: Workflow, _: Value) -> Outcome {
    let config = ParallelConfig::named("parallel").max_concurrency(0);
    values(
        wf.parallel_with(config, vec![constant(json!(1)), constant(json!(2))])
            .await?,
    )
}

pub(super) async fn parallel_accessors(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(1));
    let branches = vec![constant(json!("ok")), failing(), constant(json!("ok"))];
    let result = wf.parallel_with(config, branches).await?;
    Ok(json!({
        "hasFailure": result.has_failures(),
        "successCount": result.successes().count(),
        "failureCount": result.failure_count(),
        "errorCount": result.errors().count(),
    }))
}

pub(super) async fn parallel_nested(mut wf: Workflow, _: Value) -> Outcome {
    let outer = Branch::new(|mut wf| async move {
        let inner = wf
            .parallel_with(sequential(), vec![stepping("i1"), stepping("i2")])
            .await?;
        Ok::<_, durable_yield::BoxError>(json!(inner.into_values()?))
    });
    values(wf.parallel_with(sequential(), vec![outer]).await?)
}

pub(super) async fn parallel_percentage_at_limit(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_percentage(25.0));
    let branches = vec![
        failing(),
        constant(json!("ok")),
        constant(json!("ok")),
        constant(json!("ok")),
    ];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}
