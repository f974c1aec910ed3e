//! An order workflow on the embedded local runner.
//!
//! Run it with `cargo run --example order`. It prices an order (bincode),
//! charges the card for the priced total (MessagePack), waits out a
//! 30-minute cancellation window, ships (JSON), waits two days for the
//! delivery and sends a survey. The local runner plays the durable
//! execution service in process: every wait ends the invocation, the
//! virtual clock jumps ahead, and the next invocation replays the recorded
//! steps instead of running them again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use durable_yield::codecs::{Bincode, MsgPack};
use durable_yield::{LocalRunner, StepConfig, StepError, Workflow};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Item {
    sku: String,
    quantity: u32,
    unit_cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: String,
    customer: String,
    express: bool,
    items: Vec<Item>,
}

/// Checkpointed with bincode: small, fixed shape, ours to control.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Quote {
    subtotal_cents: u64,
    shipping_cents: u64,
    total_cents: u64,
}

/// Checkpointed with MessagePack: compact, and tolerant of added fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    amount_cents: u64,
}

/// Checkpointed with JSON (the default): readable in the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Shipment {
    carrier: String,
    tracking: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Confirmation {
    order: String,
    charge_id: String,
    tracking: String,
    total_cents: u64,
}

/// How often each step body really ran, across all invocations.
static BODY_RUNS: [AtomicU32; 4] = [const { AtomicU32::new(0) }; 4];

fn ran(step: usize) {
    BODY_RUNS[step].fetch_add(1, Ordering::Relaxed);
}

async fn order_workflow(mut wf: Workflow, order: Order) -> Result<Confirmation, StepError> {
    let items = order.items.clone();
    let express = order.express;
    let quote: Quote = wf
        .step_with(
            StepConfig::named("price").codec(Bincode),
            move |_ctx| async move {
                ran(0);
                let subtotal_cents = items
                    .iter()
                    .map(|i| u64::from(i.quantity) * i.unit_cents)
                    .sum();
                let shipping_cents = if express { 1500 } else { 500 };
                Ok(Quote {
                    subtotal_cents,
                    shipping_cents,
                    total_cents: subtotal_cents + shipping_cents,
                })
            },
        )
        .await?;

    // Depends on the previous step's result: the amount comes from the quote.
    let customer = order.customer.clone();
    let total = quote.total_cents;
    let receipt: Receipt = wf
        .step_with(
            StepConfig::named("charge").codec(MsgPack),
            move |ctx| async move {
                ran(1);
                // A real workflow calls the payment provider here, with
                // this key: unique to this execution and this step, the
                // same on every retry and replay, so the provider charges
                // once per order, never twice.
                let key = ctx.idempotency_key();
                Ok(Receipt {
                    charge_id: format!("ch_{customer}_{}", &key[..12]),
                    amount_cents: total,
                })
            },
        )
        .await?;

    // The customer may cancel within 30 minutes. No compute runs meanwhile.
    wf.wait("cancellation-window", Duration::from_secs(30 * 60))
        .await;

    let order_id = order.id.clone();
    let shipment: Shipment = wf
        .step("ship", move |_ctx| async move {
            ran(2);
            Ok(Shipment {
                carrier: if express { "express" } else { "ground" }.to_owned(),
                tracking: format!("TRK-{order_id}"),
            })
        })
        .await?;

    wf.wait("delivery", Duration::from_secs(2 * 24 * 3600))
        .await;

    let _survey_sent: bool = wf
        .step("send-survey", |_ctx| async {
            ran(3);
            Ok(true)
        })
        .await?;

    Ok(Confirmation {
        order: order.id,
        charge_id: receipt.charge_id,
        tracking: shipment.tracking,
        total_cents: receipt.amount_cents,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let order = Order {
        id: "A-1001".into(),
        customer: "ada".into(),
        express: true,
        items: vec![
            Item {
                sku: "book".into(),
                quantity: 2,
                unit_cents: 1999,
            },
            Item {
                sku: "lamp".into(),
                quantity: 1,
                unit_cents: 4500,
            },
        ],
    };

    let wall = Instant::now();
    let run = LocalRunner::new().run(&order_workflow, &order).await?;
    let wall = wall.elapsed();

    println!("timeline (virtual time since the execution started):");
    print!("{}", run.timeline);
    println!();
    println!("status:       {}", run.status);
    println!("invocations:  {}", run.invocations);
    println!(
        "virtual time: {} h {} min (wall time {:.1} ms)",
        run.elapsed.as_secs() / 3600,
        run.elapsed.as_secs() / 60 % 60,
        wall.as_secs_f64() * 1e3
    );
    let runs: Vec<u32> = BODY_RUNS
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    println!("step bodies ran (price, charge, ship, send-survey): {runs:?}");
    println!("execution:    {}", run.operations[0].id);
    match &run.result {
        Some(confirmation) => println!("result:       {confirmation:?}"),
        None => println!("error:        {:?}", run.error),
    }
    if runs != [1, 1, 1, 1] || run.result.is_none() {
        return Err("the order workflow did not complete as expected".into());
    }
    Ok(())
}
