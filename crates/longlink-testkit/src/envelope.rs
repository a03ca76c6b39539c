//! leaf's payload envelopes, written from the spec: JSON `{"Name":{...}}` (one key, the
//! message name) and protobuf `| id: u16 big-endian | body |`.

use serde_json::Value;

/// `{"<name>": body}` as bytes.
pub fn json(name: &str, body: Value) -> Vec<u8> {
    let mut envelope = serde_json::Map::new();
    envelope.insert(name.to_owned(), body);
    serde_json::to_vec(&Value::Object(envelope)).expect("JSON to bytes")
}

/// `| id BE | body |`.
pub fn protobuf(id: u16, body: &[u8]) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// The name and the body of a JSON envelope; `Err` (saying why) unless `payload` is a JSON
/// object with exactly one key.
pub fn open_json(payload: &[u8]) -> Result<(String, Value), String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        format!(
            "reply is not JSON ({e}): {:?}",
            String::from_utf8_lossy(payload)
        )
    })?;
    let Value::Object(map) = value else {
        return Err(format!("reply is not a JSON object: {value}"));
    };
    if map.len() != 1 {
        return Err(format!("reply envelope has {} keys: {map:?}", map.len()));
    }
    Ok(map.into_iter().next().expect("one key"))
}

/// The id and the body of a protobuf envelope; `Err` if `payload` is shorter than the id.
pub fn open_protobuf(payload: &[u8]) -> Result<(u16, &[u8]), String> {
    match payload {
        [hi, lo, body @ ..] => Ok((u16::from_be_bytes([*hi, *lo]), body)),
        _ => Err(format!("protobuf reply shorter than its id: {payload:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_refusals() {
        let bytes = json("Echo", serde_json::json!({ "text": "hi" }));
        assert_eq!(bytes, br#"{"Echo":{"text":"hi"}}"#);
        let (name, body) = open_json(&bytes).unwrap();
        assert_eq!((name.as_str(), &body["text"]), ("Echo", &Value::from("hi")));
        assert!(open_json(b"not json").is_err());
        assert!(open_json(b"[1]").is_err());
        assert!(open_json(br#"{"A":{},"B":{}}"#).is_err());
    }

    #[test]
    fn protobuf_round_trip_and_refusals() {
        // Int32Value{150} with id 1 (leaf's example).
        let bytes = protobuf(1, &[0x08, 0x96, 0x01]);
        assert_eq!(bytes, [0x00, 0x01, 0x08, 0x96, 0x01]);
        assert_eq!(open_protobuf(&bytes), Ok((1, &[0x08, 0x96, 0x01][..])));
        assert_eq!(open_protobuf(&[0x00, 0x07]), Ok((7, &[][..])));
        assert!(open_protobuf(&[0x00]).is_err());
    }
}
