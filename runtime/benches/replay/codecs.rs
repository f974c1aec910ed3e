//! The codec tables: values, every codec on them, AEADs and compressors.

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Small {
    pub(crate) id: u64,
    pub(crate) customer: String,
    pub(crate) amount_cents: i64,
    pub(crate) express: bool,
    pub(crate) items: Vec<u32>,
}

pub(crate) fn small() -> Small {
    Small {
        id: 4711,
        customer: "ada lovelace".into(),
        amount_cents: 1999,
        express: true,
        items: vec![1, 2, 3],
    }
}

/// `Small` with its customer sealed (for `SealedFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SmallSealed {
    pub(crate) id: u64,
    pub(crate) customer: Sealed<String>,
    pub(crate) amount_cents: i64,
    pub(crate) express: bool,
    pub(crate) items: Vec<u32>,
}

pub(crate) fn small_sealed() -> SmallSealed {
    let s = small();
    SmallSealed {
        id: s.id,
        customer: Sealed::new(s.customer),
        amount_cents: s.amount_cents,
        express: s.express,
        items: s.items,
    }
}

/// One line of an order: about 100 KiB of JSON for [`LARGE_LINES`] lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Line {
    pub(crate) sku: String,
    pub(crate) quantity: u32,
    pub(crate) unit_cents: i64,
    pub(crate) customer: String,
    pub(crate) email: String,
    pub(crate) note: String,
    pub(crate) gift: bool,
}

pub(crate) const LARGE_LINES: u64 = 780;

pub(crate) fn large() -> Vec<Line> {
    (0..LARGE_LINES)
        .map(|i| Line {
            sku: format!("SKU-{:05}", i * 13 % 4000),
            quantity: (i % 7 + 1) as u32,
            unit_cents: (i as i64 * 1237) % 100_000,
            customer: format!("customer-{}", i % 97),
            email: format!("user{}@example.com", i * 31 % 1000),
            note: if i % 3 == 0 {
                "gift wrap please".into()
            } else {
                String::new()
            },
            gift: i % 3 == 0,
        })
        .collect()
}

/// The large order with each line's e-mail sealed (for `SealedFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LineSealed {
    pub(crate) sku: String,
    pub(crate) quantity: u32,
    pub(crate) unit_cents: i64,
    pub(crate) customer: String,
    pub(crate) email: Sealed<String>,
    pub(crate) note: String,
    pub(crate) gift: bool,
}

pub(crate) fn large_sealed() -> Vec<LineSealed> {
    large()
        .into_iter()
        .map(|l| LineSealed {
            sku: l.sku,
            quantity: l.quantity,
            unit_cents: l.unit_cents,
            customer: l.customer,
            email: Sealed::new(l.email),
            note: l.note,
            gift: l.gift,
        })
        .collect()
}

pub(crate) struct CodecRow {
    pub(crate) label: &'static str,
    pub(crate) raw: usize,
    pub(crate) wire: usize,
    pub(crate) encode: Duration,
    pub(crate) decode: Duration,
}

pub(crate) fn bench_codec<C: Codec>(label: &'static str, codec: C) -> CodecRow {
    bench_value(label, codec, &small(), 100_000)
}

/// Encodes and decodes `value` `n` times (median of 5 rounds), for a
/// bound context as a step's result is.
pub(crate) fn bench_value<C, T>(label: &'static str, codec: C, value: &T, n: u32) -> CodecRow
where
    C: Codec,
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let cx = PayloadContext::new(
        "arn:aws:lambda:us-east-1:111122223333:function:orders:1/durable-execution/run/7f3c",
        "c4ca4238a0b923820dcc509a6f75849b8ff2b3e1e4ae3a6dd12e1cfa6b5f1a7e",
    );
    let payload = to_payload(&codec, value, &cx).expect("encode");
    let back: T = from_payload(&codec, &payload, &cx).expect("decode");
    assert_eq!(&back, value);
    let mut enc = Vec::new();
    let mut dec = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..n {
            black_box(to_payload(&codec, black_box(value), &cx).expect("encode"));
        }
        enc.push(start.elapsed() / n);
        let start = Instant::now();
        for _ in 0..n {
            black_box(from_payload::<_, T>(&codec, black_box(&payload), &cx).expect("decode"));
        }
        dec.push(start.elapsed() / n);
    }
    CodecRow {
        label,
        raw: codec.encode(value, &cx).expect("encode").len(),
        wire: payload.len(),
        encode: median(enc),
        decode: median(dec),
    }
}

/// Every codec and wrapper combination over one value.
pub(crate) fn codec_table<T, S>(value: &T, sealed: &S, n: u32) -> Vec<CodecRow>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    S: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let keys = StaticKeyring::new("bench-key", [9; 32]);
    vec![
        bench_value("JSON", Json, value, n),
        bench_value("bincode", Bincode, value, n),
        bench_value("MessagePack", MsgPack, value, n),
        bench_value("zstd(JSON)", Compressed::new(Json), value, n),
        bench_value("zstd(bincode)", Compressed::new(Bincode), value, n),
        bench_value("zstd(MessagePack)", Compressed::new(MsgPack), value, n),
        bench_value("sealed(JSON)", Encrypted::new(Json, keys.clone()), value, n),
        bench_value(
            "sealed(bincode)",
            Encrypted::new(Bincode, keys.clone()),
            value,
            n,
        ),
        bench_value(
            "sealed(MessagePack)",
            Encrypted::new(MsgPack, keys.clone()),
            value,
            n,
        ),
        bench_value(
            "sealed(zstd(JSON))",
            Encrypted::new(Compressed::new(Json), keys.clone()),
            value,
            n,
        ),
        bench_value(
            "sealed(zstd(MessagePack))",
            Encrypted::new(Compressed::new(MsgPack), keys.clone()),
            value,
            n,
        ),
        bench_value(
            "SealedFields(JSON), one field per record sealed",
            SealedFields::new(Json, keys.clone()),
            sealed,
            n,
        ),
        bench_value(
            "SealedFields(MessagePack), one field per record sealed",
            SealedFields::new(MsgPack, keys),
            sealed,
            n,
        ),
    ]
}

pub(crate) fn print_rows(rows: &[CodecRow]) {
    println!(
        "| codec | encoded bytes | wire payload bytes | encode (to payload) | decode (from payload) |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.label,
            r.raw,
            r.wire,
            us(r.encode),
            us(r.decode)
        );
    }
}

/// The AEADs AES-256-GCM-SIV was picked against: one seal of 140 bytes
/// (a small payload) and of 100 KiB, key set up once, nonce given.
pub(crate) fn aead_table() {
    use aes_gcm_siv::aead::{Aead, KeyInit};
    println!("\n## AEADs (seal only, key set up once)\n");
    println!("| AEAD | nonce | 140 bytes | 100 KiB |");
    println!("|---|---|---|---|");
    let small = [5u8; 140];
    let large = vec![3u8; 100 * 1024];
    let time = |n: u32, f: &dyn Fn() -> usize| {
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            rounds.push(start.elapsed() / n);
        }
        median(rounds)
    };
    let siv = aes_gcm_siv::Aes256GcmSiv::new(&[7u8; 32].into());
    let gcm = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    let xchacha = chacha20poly1305::XChaCha20Poly1305::new(&[7u8; 32].into());
    let rows: Vec<(&str, &str, Duration, Duration)> = vec![
        (
            "AES-256-GCM-SIV (picked)",
            "96-bit random, misuse resistant",
            time(50_000, &|| {
                siv.encrypt(&[1u8; 12].into(), &small[..])
                    .expect("seal")
                    .len()
            }),
            time(200, &|| {
                siv.encrypt(&[1u8; 12].into(), &large[..])
                    .expect("seal")
                    .len()
            }),
        ),
        (
            "AES-256-GCM",
            "96-bit random: at most 2^32 payloads per key",
            time(50_000, &|| {
                gcm.encrypt(&[1u8; 12].into(), &small[..])
                    .expect("seal")
                    .len()
            }),
            time(200, &|| {
                gcm.encrypt(&[1u8; 12].into(), &large[..])
                    .expect("seal")
                    .len()
            }),
        ),
        (
            "XChaCha20-Poly1305",
            "192-bit random",
            time(50_000, &|| {
                xchacha
                    .encrypt(&[1u8; 24].into(), &small[..])
                    .expect("seal")
                    .len()
            }),
            time(200, &|| {
                xchacha
                    .encrypt(&[1u8; 24].into(), &large[..])
                    .expect("seal")
                    .len()
            }),
        ),
    ];
    for (label, nonce, s, l) in rows {
        println!("| {label} | {nonce} | {} | {} |", us(s), us(l));
    }
}

/// The compressors zstd was picked against, on the 100 KiB JSON.
pub(crate) fn compressor_table() {
    let json = serde_json::to_vec(&large()).expect("json");
    println!(
        "\n## Compressors on the 100 KiB order ({} bytes of JSON)\n",
        json.len()
    );
    println!("| compressor | compressed bytes | ratio | compress | decompress |");
    println!("|---|---|---|---|---|");
    type Pack = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let rows: Vec<(&str, Pack, Pack)> = vec![
        (
            "zstd level 1 (picked)",
            Box::new(|d| zstd::bulk::compress(d, 1).expect("zstd")),
            Box::new(|c| zstd::bulk::decompress(c, 1 << 24).expect("zstd")),
        ),
        (
            "zstd level 3",
            Box::new(|d| zstd::bulk::compress(d, 3).expect("zstd")),
            Box::new(|c| zstd::bulk::decompress(c, 1 << 24).expect("zstd")),
        ),
        (
            "lz4 (lz4_flex)",
            Box::new(lz4_flex::compress_prepend_size),
            Box::new(|c| lz4_flex::decompress_size_prepended(c).expect("lz4")),
        ),
        (
            "deflate level 1 (miniz_oxide)",
            Box::new(|d| miniz_oxide::deflate::compress_to_vec(d, 1)),
            Box::new(|c| miniz_oxide::inflate::decompress_to_vec(c).expect("inflate")),
        ),
        (
            "deflate level 6 (miniz_oxide)",
            Box::new(|d| miniz_oxide::deflate::compress_to_vec(d, 6)),
            Box::new(|c| miniz_oxide::inflate::decompress_to_vec(c).expect("inflate")),
        ),
    ];
    for (label, pack, unpack) in rows {
        let packed = pack(&json);
        assert_eq!(unpack(&packed), json);
        let time = |f: &dyn Fn() -> usize| {
            let mut rounds = Vec::new();
            for _ in 0..5 {
                let start = Instant::now();
                for _ in 0..50 {
                    black_box(f());
                }
                rounds.push(start.elapsed() / 50);
            }
            median(rounds)
        };
        let c = time(&|| pack(black_box(&json)).len());
        let d = time(&|| unpack(black_box(&packed)).len());
        println!(
            "| {label} | {} | {:.1}x | {} | {} |",
            packed.len(),
            json.len() as f64 / packed.len() as f64,
            us(c),
            us(d)
        );
    }
}
