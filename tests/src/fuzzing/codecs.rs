//! Codec round trips on generated values.

use super::*;

/// A struct for codec round trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub struct Sample {
    a: u64,
    b: String,
    c: Vec<i32>,
    d: Option<bool>,
    e: Shape,
    f: BTreeMap<String, u8>,
    g: (u8, i128),
}

/// An enum for codec round trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Arbitrary)]
pub enum Shape {
    /// A unit variant.
    Dot,
    /// A tuple variant.
    Line(u32),
    /// A struct variant.
    Box {
        /// Width.
        w: u16,
        /// Height.
        h: u16,
    },
}

pub(super) fn decode_all<C: Codec>(codec: &C, text: &str, bytes: &[u8]) {
    let _ = from_payload::<_, u64>(codec, text, &PayloadContext::DETACHED);
    let _ = from_payload::<_, String>(codec, text, &PayloadContext::DETACHED);
    let _ = from_payload::<_, Vec<u32>>(codec, text, &PayloadContext::DETACHED);
    let _ = from_payload::<_, Sample>(codec, text, &PayloadContext::DETACHED);
    let _ = codec.decode::<Sample>(bytes, &PayloadContext::DETACHED);
    let _ = codec.decode::<Vec<String>>(bytes, &PayloadContext::DETACHED);
    let _ = codec.decode::<Option<Shape>>(bytes, &PayloadContext::DETACHED);
}

/// A [`Sample`] with sealed fields, for `SealedFields` round trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedSample {
    plain: u64,
    secret: Sealed<String>,
    nested: Option<Sealed<Sample>>,
}

impl<'a> Arbitrary<'a> for SealedSample {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(SealedSample {
            plain: u.arbitrary()?,
            secret: Sealed::new(u.arbitrary()?),
            nested: Option::<Sample>::arbitrary(u)?.map(Sealed::new),
        })
    }
}

pub(super) fn fuzz_keys() -> StaticKeyring {
    StaticKeyring::new("k2", [2; 32]).with_retired("k1", [1; 32])
}

pub(super) const FUZZ_ARN: &str =
    "arn:aws:lambda:us-east-1:1:function:f:1/durable-execution/n/exec";

/// Decoding arbitrary bytes with each codec (and the encrypting and
/// compressing wrappers) is an error, never a panic; encoding then
/// decoding a generated value gives it back; a sealed payload with any
/// one byte changed, or read for another operation, never decodes.
pub fn check_codecs(data: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(data);
    let cx = PayloadContext::new(FUZZ_ARN, "op-1");
    decode_all(&Json, &text, data);
    decode_all(&Bincode, &text, data);
    decode_all(&MsgPack, &text, data);
    let _ = from_payload::<_, serde_json::Value>(&Json, &text, &PayloadContext::DETACHED);
    let _ = from_payload::<_, serde_json::Value>(&MsgPack, &text, &PayloadContext::DETACHED);
    for tagged in ["bincode:", "msgpack:"] {
        let payload = format!("{tagged}{text}");
        decode_all(&Bincode, &payload, data);
        decode_all(&MsgPack, &payload, data);
    }
    // The sealed and compressed formats, tagged and as raw bytes.
    let keys = fuzz_keys();
    let sealed_json = Encrypted::new(Json, keys.clone());
    let sealed_packed = Encrypted::new(Compressed::new(MsgPack), keys.clone());
    let fields = SealedFields::new(Json, keys.clone());
    let packed = Compressed::new(Json);
    let packed_bincode = Compressed::new(Bincode);
    let _ = referenced_key_ids(&text);
    for prefix in [
        "",
        "sealed.json:",
        "sealed.zstd.msgpack:",
        "zstd.json:",
        "zstd.bincode:",
    ] {
        let payload = format!("{prefix}{text}");
        let _ = referenced_key_ids(&payload);
        let _ = from_payload::<_, Sample>(&sealed_json, &payload, &cx);
        let _ = from_payload::<_, Sample>(&sealed_packed, &payload, &cx);
        let _ = from_payload::<_, SealedSample>(&fields, &payload, &cx);
        let _ = from_payload::<_, Sample>(&packed, &payload, &cx);
        let _ = from_payload::<_, Vec<String>>(&packed_bincode, &payload, &cx);
    }
    // File system envelopes: the text as an envelope, as an inline value
    // and as a path (the fuzz base holds no file; nothing outside it is
    // read).
    let files = FileSystem::new(std::env::temp_dir().join("durable-yield-fuzz-files"));
    let _ = from_payload::<_, Sample>(&files, &text, &cx);
    let _ = files.decode::<serde_json::Value>(data, &cx);
    for envelope in [
        serde_json::json!({ "data": text }),
        serde_json::json!({ "file": text }),
        serde_json::json!({ "file": files.base().join(&*text) }),
    ] {
        let _ = from_payload::<_, serde_json::Value>(&files, &envelope.to_string(), &cx);
    }
    let _ = sealed_json.decode::<Sample>(data, &cx);
    let _ = sealed_packed.decode::<serde_json::Value>(data, &cx);
    let _ = packed.decode::<Sample>(data, &cx);
    let _ = packed_bincode.decode::<Sample>(data, &cx);
    // A sealed field holding arbitrary text.
    let field = serde_json::json!({"plain": 1, "secret": format!("sealed:{text}"), "nested": null});
    let _ = from_payload::<_, SealedSample>(&fields, &field.to_string(), &cx);

    let mut u = Unstructured::new(data);
    let Ok(sample) = Sample::arbitrary(&mut u) else {
        return Ok(());
    };
    fn round_trip<C: Codec, T>(
        codec: &C,
        sample: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<String, String>
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let payload = to_payload(codec, sample, cx).map_err(|e| format!("encode: {e}"))?;
        let back: T = from_payload(codec, &payload, cx).map_err(|e| format!("decode: {e}"))?;
        if &back != sample {
            return Err(format!("{} changed {sample:?} into {back:?}", codec.id()));
        }
        Ok(payload)
    }
    let detached = PayloadContext::DETACHED;
    let json = round_trip(&Json, &sample, &detached)?;
    // The SDK writes JSON results into a reused buffer: the same text.
    let reused = durable_yield::codecs::with_payload(&Json, &sample, &detached, str::to_owned)
        .map_err(|e| format!("with_payload: {e}"))?;
    if reused != json {
        return Err(format!(
            "with_payload wrote {reused:?}, to_payload {json:?}"
        ));
    }
    round_trip(&Bincode, &sample, &detached)?;
    round_trip(&MsgPack, &sample, &detached)?;
    round_trip(&packed.clone().threshold(0), &sample, &cx)?;
    round_trip(&packed_bincode, &sample, &cx)?;
    // Inline (a sample is far below the threshold): no file is written.
    round_trip(&files.clone().mode(StorageMode::Overflow), &sample, &cx)?;
    let sealed = round_trip(&sealed_packed, &sample, &cx)?;
    round_trip(
        &Encrypted::new(Compressed::new(Bincode).threshold(0), keys.clone()),
        &sample,
        &cx,
    )?;
    if let Ok(with_fields) = SealedSample::arbitrary(&mut u) {
        round_trip(&fields, &with_fields, &cx)?;
        round_trip(&Encrypted::new(MsgPack, keys), &with_fields, &cx)?;
    }
    // Tampering: one changed character of the payload, or another operation.
    let elsewhere = PayloadContext::new(FUZZ_ARN, "op-2");
    if from_payload::<_, Sample>(&sealed_packed, &sealed, &elsewhere).is_ok() {
        return Err("a sealed payload opened for another operation".into());
    }
    if let (Ok(at), Ok(with)) = (u.int_in_range(0..=sealed.len() - 1), u.arbitrary::<u8>()) {
        let mut changed = sealed.clone().into_bytes();
        let replacement = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            [usize::from(with) % 64];
        if changed[at] != replacement {
            changed[at] = replacement;
            let changed = String::from_utf8_lossy(&changed);
            if let Ok(back) = from_payload::<_, Sample>(&sealed_packed, &changed, &cx) {
                // Base64 padding bits can change without changing the bytes.
                let same_bytes = changed
                    .split_once(':')
                    .zip(sealed.split_once(':'))
                    .is_some_and(|((_, a), (_, b))| {
                        use base64::Engine as _;
                        let engine = base64::engine::general_purpose::STANDARD;
                        engine.decode(a).ok() == engine.decode(b).ok()
                    });
                if !same_bytes {
                    return Err(format!("a changed sealed payload decoded: {back:?}"));
                }
            }
        }
    }
    Ok(())
}
