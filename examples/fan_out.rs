//! A fan-out workflow on the embedded local runner: a map over orders.
//!
//! Run it with `cargo run --example fan_out`. Each order is an item of a
//! map, processed in its own child context: reserve the stock, charge the
//! card, wait out a packing window, ship. Up to three orders run at once;
//! one order in five may fail (an out-of-stock order does) without failing
//! the batch. Step bodies of different orders run concurrently, and an
//! order that waits does not hold the others back. The timeline shows each
//! order's operations indented under it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use durable_yield::retry::NoRetry;
use durable_yield::{
    BatchItemStatus, CompletionPolicy, LocalRunner, MapConfig, StepConfig, StepError, StepFailure,
    Workflow,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: String,
    sku: String,
    cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shipped {
    order: String,
    charge: String,
    tracking: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Summary {
    shipped: Vec<Shipped>,
    failed: Vec<String>,
    completion: String,
}

/// How often each step body really ran, across all invocations.
static BODY_RUNS: AtomicU32 = AtomicU32::new(0);

async fn fulfil(mut wf: Workflow, order: Order) -> Result<Shipped, StepError> {
    let sku = order.sku.clone();
    let no_retry = StepConfig::named("reserve").retry(NoRetry);
    let _reservation: String = wf
        .step_with(no_retry, move |_| async move {
            BODY_RUNS.fetch_add(1, Ordering::Relaxed);
            if sku == "unobtainium" {
                return Err(StepFailure::new("OutOfStock", format!("no {sku} left")));
            }
            Ok(format!("reserved {sku}"))
        })
        .await?;
    let cents = order.cents;
    let charge: String = wf
        .step("charge", move |ctx| async move {
            BODY_RUNS.fetch_add(1, Ordering::Relaxed);
            // The provider de-duplicates on this key: one charge per order.
            Ok(format!("ch_{cents}_{}", &ctx.idempotency_key()[..8]))
        })
        .await?;
    // Packing takes an hour; no compute runs meanwhile.
    wf.wait("packing", Duration::from_secs(3600)).await;
    let id = order.id.clone();
    let tracking: String = wf
        .step("ship", move |_| async move {
            BODY_RUNS.fetch_add(1, Ordering::Relaxed);
            Ok(format!("TRK-{id}"))
        })
        .await?;
    Ok(Shipped {
        order: order.id,
        charge,
        tracking,
    })
}

async fn fan_out(mut wf: Workflow, orders: Vec<Order>) -> Result<Summary, StepError> {
    let config = MapConfig::named("orders")
        .max_concurrency(3)
        .completion(CompletionPolicy::all().tolerated_failure_percentage(20.0))
        .item_namer(|order: &Order, _| format!("order-{}", order.id));
    let batch = wf
        .map_with(config, orders, |mut wf, order, _index| async move {
            // One child context per order inside its item: the steps of
            // fulfilment are grouped (and replayed) as one unit.
            let name = format!("fulfil-{}", order.id);
            wf.child(name, move |wf| fulfil(wf, order)).await
        })
        .await?;
    let failed = batch
        .items()
        .iter()
        .filter(|i| i.status == BatchItemStatus::Failed)
        .map(|i| {
            let e = i.error.as_ref();
            format!(
                "#{}: {}",
                i.index,
                e.and_then(|e| e.error_message.as_deref()).unwrap_or("?")
            )
        })
        .collect();
    let completion = batch.completion_reason().to_string();
    let shipped = batch.successes().cloned().collect();
    let summary = Summary {
        shipped,
        failed,
        completion,
    };
    // Recorded once, so that the notice goes out once.
    let notice = format!(
        "{} shipped, {} failed",
        summary.shipped.len(),
        summary.failed.len()
    );
    let _: String = wf
        .step("notify-ops", move |_| async move { Ok(notice) })
        .await?;
    Ok(summary)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let order = |id: &str, sku: &str, cents| Order {
        id: id.into(),
        sku: sku.into(),
        cents,
    };
    let orders = vec![
        order("A-1", "book", 1999),
        order("A-2", "lamp", 4500),
        order("A-3", "unobtainium", 99_900),
        order("A-4", "pen", 250),
        order("A-5", "mug", 1200),
        order("A-6", "desk", 35_000),
    ];

    let wall = Instant::now();
    let run = LocalRunner::new().run(&fan_out, &orders).await?;
    let wall = wall.elapsed();

    println!("timeline (virtual time since the execution started):");
    print!("{}", run.timeline);
    println!();
    println!("status:       {}", run.status);
    println!("invocations:  {}", run.invocations);
    println!(
        "virtual time: {} h (wall time {:.1} ms)",
        run.elapsed.as_secs() / 3600,
        wall.as_secs_f64() * 1e3
    );
    let runs = BODY_RUNS.load(Ordering::Relaxed);
    println!(
        "order step bodies ran: {runs} (5 orders x 3 steps + 1 failed reservation; none twice)"
    );
    match &run.result {
        Some(summary) => {
            println!("completion:   {}", summary.completion);
            for s in &summary.shipped {
                println!("shipped:      {} {} {}", s.order, s.charge, s.tracking);
            }
            for f in &summary.failed {
                println!("failed:       {f}");
            }
        }
        None => println!("error:        {:?}", run.error),
    }
    let ok = run
        .result
        .as_ref()
        .is_some_and(|s| s.shipped.len() == 5 && s.failed.len() == 1);
    if !ok || runs != 16 {
        return Err("the fan-out workflow did not complete as expected".into());
    }
    Ok(())
}
