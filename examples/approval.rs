//! An approval workflow on the embedded local runner.
//!
//! Run it with `cargo run --example approval`. An expense report is
//! checked (a step), a manager approves it through a callback (answered
//! here through the runner's API, as the manager's click would), a
//! notifier function is invoked (a chained invoke of a plain function the
//! runner knows), and the payment is polled until it has cleared (a
//! wait-for-condition). The timeline shows every suspension: nothing runs
//! while the manager thinks or the bank clears.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use durable_yield::retry::{ExponentialBackoff, Jitter};
use durable_yield::{CallbackConfig, Condition, ConditionConfig, LocalRunner, StepError, Workflow};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Expense {
    id: String,
    employee: String,
    cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Decision {
    approved: bool,
    by: String,
}

/// How often the bank was asked (the check runs once per poll).
static POLLS: AtomicU32 = AtomicU32::new(0);

async fn approval(mut wf: Workflow, expense: Expense) -> Result<String, StepError> {
    let cents = expense.cents;
    let within_policy: bool = wf
        .step("check-policy", move |_| async move { Ok(cents <= 50_000) })
        .await?;
    if !within_policy {
        return Ok(format!("{} rejected by policy", expense.id));
    }

    // The manager answers within three days, or the expense is escalated.
    let config = CallbackConfig::named("manager-approval").timeout(Duration::from_secs(3 * 86_400));
    let decision = wf.create_callback::<Decision>(config).await;
    let link = format!("https://expenses.example/approve/{}", decision.id());
    let _: () = wf
        .step("email-manager", move |_| async move {
            println!("  (email) please approve: {link}");
            Ok(())
        })
        .await?;
    let decision = match wf.callback_result(&decision).await {
        Ok(decision) => decision,
        Err(e) if e.is_timeout() => return Ok(format!("{} escalated", expense.id)),
        Err(e) => return Err(e.into()),
    };
    if !decision.approved {
        return Ok(format!("{} declined by {}", expense.id, decision.by));
    }

    // Tell the employee, through the notifier function.
    let note = serde_json::json!({ "to": expense.employee, "text": "approved" });
    let receipt: String = wf.invoke("notifier", &note).await?;

    // The bank clears the payment after a while: poll it, 1 min, then 2, 4...
    let strategy = ExponentialBackoff::new()
        .initial_delay(Duration::from_secs(60))
        .backoff_rate(2.0)
        .max_delay(Duration::from_secs(3600))
        .max_attempts(10)
        .jitter(Jitter::None);
    let polls = wf
        .wait_for_condition_with(
            ConditionConfig::named("payment-cleared").strategy(strategy),
            0u32,
            |_ctx, polls| async move {
                POLLS.fetch_add(1, Ordering::Relaxed);
                let cleared = polls >= 3; // ask the bank here
                Ok(if cleared {
                    Condition::Met(polls + 1)
                } else {
                    Condition::NotMet(polls + 1)
                })
            },
        )
        .await?;
    Ok(format!(
        "{} approved by {}, {receipt}, paid after {polls} polls",
        expense.id, decision.by
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let expense = Expense {
        id: "EXP-7".into(),
        employee: "ada".into(),
        cents: 12_900,
    };
    let runner = LocalRunner::new().register_function("notifier", |note| {
        Ok(serde_json::json!(format!(
            "notified {}",
            note["to"].as_str().unwrap_or("?")
        )))
    });
    let execution = runner.start(&expense)?;

    // First invocation: the policy check, the callback, the email; then it
    // suspends until the manager answers.
    execution.invoke(&approval).await;
    let id = execution
        .callback_id("manager-approval")
        .ok_or("the workflow did not ask for an approval")?;
    // The manager clicks "approve" five hours later.
    execution.advance_clock(Duration::from_secs(5 * 3600));
    let answer = serde_json::json!({ "approved": true, "by": "grace" });
    execution.send_callback_success(&id, &answer.to_string())?;
    // The rest runs to the end on the virtual clock.
    while execution.status() == durable_yield::ExecutionStatus::Running {
        execution.advance_time();
        execution.invoke(&approval).await;
    }
    let run = execution.finish::<String>()?;

    println!("timeline (virtual time since the execution started):");
    print!("{}", run.timeline);
    println!();
    println!("status:       {}", run.status);
    println!("invocations:  {}", run.invocations);
    println!("virtual time: {} min", run.elapsed.as_secs() / 60);
    println!("bank polls:   {}", POLLS.load(Ordering::Relaxed));
    match &run.result {
        Some(result) => println!("result:       {result}"),
        None => println!("error:        {:?}", run.error),
    }
    let expected = "EXP-7 approved by grace, notified ada, paid after 4 polls";
    if run.result.as_deref() != Some(expected) || POLLS.load(Ordering::Relaxed) != 4 {
        return Err("the approval workflow did not complete as expected".into());
    }
    Ok(())
}
