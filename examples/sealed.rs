//! Encrypted checkpoints on the embedded local runner.
//!
//! Run it with `cargo run --example sealed`. A customer record is loaded in
//! one step and checkpointed with `SealedFields<Json>`: the record stays
//! JSON, its plain fields readable in the console and in the history, its
//! `Sealed` fields (e-mail, card number) ciphertext. The charge receipt is
//! checkpointed whole with `Encrypted<Json>`. Then the recorded history is
//! printed as the service would show it, and a sealed payload copied into
//! another operation is refused.
//!
//! The keys come from `DURABLE_YIELD_KEYS` (`id:base64-key,...`, the first
//! one current) or, for this demo only, a fixed key.

use std::time::Duration;

use durable_yield::codecs::seal::{Encrypted, Sealed, SealedFields, StaticKeyring};
use durable_yield::codecs::{Json, PayloadContext, from_payload};
use durable_yield::{LocalRunner, StepConfig, StepError, Workflow};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Customer {
    id: u64,
    name: String,
    tier: String,
    email: Sealed<String>,
    card: Sealed<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Receipt {
    charge_id: String,
    card_last4: String,
    cents: u64,
}

fn keyring() -> StaticKeyring {
    match std::env::var("DURABLE_YIELD_KEYS") {
        Ok(text) => StaticKeyring::parse(&text).expect("DURABLE_YIELD_KEYS: id:base64,..."),
        // A demo key: in a deployment, load keys from a secret store (or
        // use the KMS keyring, feature `kms`).
        Err(_) => StaticKeyring::new("demo-2026-11", [42; 32]),
    }
}

fn workflow(
    keys: StaticKeyring,
) -> impl Fn(Workflow, u64) -> std::pin::Pin<Box<dyn Future<Output = Result<String, StepError>> + Send>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, customer_id: u64| {
        let fields = SealedFields::new(Json, keys.clone());
        let whole = Encrypted::new(Json, keys.clone());
        Box::pin(async move {
            let customer: Customer = wf
                .step_with(
                    StepConfig::named("load customer").codec(fields),
                    move |_| async move {
                        Ok(Customer {
                            id: customer_id,
                            name: "Ada Lovelace".into(),
                            tier: "gold".into(),
                            email: Sealed::new("ada@example.com".into()),
                            card: Sealed::new("4111 1111 1111 1111".into()),
                        })
                    },
                )
                .await?;
            // The workflow works with the plain values (`Deref`).
            let last4 = customer.card[customer.card.len() - 4..].to_owned();
            let receipt: Receipt = wf
                .step_with(
                    StepConfig::named("charge").codec(whole),
                    move |ctx| async move {
                        Ok(Receipt {
                            charge_id: format!("ch_{}", &ctx.idempotency_key()[..8]),
                            card_last4: last4,
                            cents: 12_500,
                        })
                    },
                )
                .await?;
            wf.wait("settle", Duration::from_secs(3600)).await;
            Ok(format!(
                "charged {} cents to {}'s card ending {} ({})",
                receipt.cents, customer.name, receipt.card_last4, receipt.charge_id
            ))
        })
    }
}

#[tokio::main]
async fn main() {
    let keys = keyring();
    let run = LocalRunner::new()
        .run(&workflow(keys.clone()), &7u64)
        .await
        .expect("the local runner");
    println!("result: {}", run.result.as_deref().unwrap_or("(failed)"));
    if let Some(error) = &run.error {
        println!("error: {error:?}");
    }

    println!("\nThe recorded history, as the service stores it:");
    for op in &run.operations {
        let Some(result) = op.step_details.as_ref().and_then(|d| d.result.as_ref()) else {
            continue;
        };
        println!("  {}:", op.name.as_deref().unwrap_or("?"));
        println!("    {}", result.as_str());
    }
    let recorded = |name: &str| {
        let op = run.operation(name).expect("the step");
        (
            op.id,
            op.step_details
                .as_ref()
                .and_then(|d| d.result.as_ref())
                .expect("a result")
                .as_str()
                .to_owned(),
        )
    };
    let (load_id, customer) = recorded("load customer");
    let (charge_id, receipt) = recorded("charge");
    assert!(customer.contains("\"name\":\"Ada Lovelace\""));
    assert!(!customer.contains("ada@example.com") && !customer.contains("4111"));
    assert!(receipt.starts_with("sealed.json:"));

    // Replays open the payloads for their own execution and operation only.
    let whole = Encrypted::new(Json, keys);
    let own = PayloadContext::new(&run.arn, charge_id.as_str());
    let opened: Receipt = from_payload(&whole, &receipt, &own).expect("its own operation");
    println!("\nOpened for its own operation: {opened:?}");
    let elsewhere = PayloadContext::new(&run.arn, load_id.as_str());
    match from_payload::<_, Receipt>(&whole, &receipt, &elsewhere) {
        Ok(_) => panic!("a payload copied into another operation must not open"),
        Err(error) => println!("Copied into another operation: {error}"),
    }
}
