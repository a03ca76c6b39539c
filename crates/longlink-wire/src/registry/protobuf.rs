//! leaf's protobuf payload: `| id: u16 | protobuf body |`, the id big-endian unless the
//! registry is told the id is little-endian (independent of the TCP length's byte order).

use super::error::DecodeError;

/// Reads the id off the front of a payload; the body is what follows (maybe nothing: an
/// empty body is a valid, default message).
pub(crate) fn split_id(payload: &[u8], little_endian: bool) -> Result<(u16, &[u8]), DecodeError> {
    if payload.len() < 2 {
        return Err(DecodeError::TooShort(payload.len()));
    }
    let b = [payload[0], payload[1]];
    let id = if little_endian {
        u16::from_le_bytes(b)
    } else {
        u16::from_be_bytes(b)
    };
    Ok((id, &payload[2..]))
}

/// Appends the id, then the body.
pub(crate) fn encode<T: prost::Message>(id: u16, little_endian: bool, msg: &T, out: &mut Vec<u8>) {
    let id = if little_endian {
        id.to_le_bytes()
    } else {
        id.to_be_bytes()
    };
    out.reserve(2 + msg.encoded_len());
    out.extend_from_slice(&id);
    msg.encode_raw(out);
}

/// Decodes a body into the registered type (merged into its default, like `UnmarshalMerge`).
pub(crate) fn decode_body<T: prost::Message + Default>(
    name: &str,
    body: &[u8],
) -> Result<T, DecodeError> {
    T::decode(body).map_err(|e| DecodeError::BadBody {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct Int32Value {
        #[prost(int32, tag = "1")]
        value: i32,
    }

    #[test]
    fn golden_int32_value_150_as_id_1() {
        let mut out = Vec::new();
        encode(1, false, &Int32Value { value: 150 }, &mut out);
        assert_eq!(out, [0x00, 0x01, 0x08, 0x96, 0x01]);
        out.clear();
        encode(1, true, &Int32Value { value: 150 }, &mut out);
        assert_eq!(out, [0x01, 0x00, 0x08, 0x96, 0x01]);
    }

    #[test]
    fn encode_appends() {
        let mut out = vec![0xaa];
        encode(0x0102, false, &Int32Value { value: 0 }, &mut out);
        assert_eq!(out, [0xaa, 0x01, 0x02]);
    }

    #[test]
    fn split_and_decode() {
        let (id, body) = split_id(&[0x00, 0x01, 0x08, 0x96, 0x01], false).unwrap();
        assert_eq!(id, 1);
        let v: Int32Value = decode_body("Int32Value", body).unwrap();
        assert_eq!(v.value, 150);
        assert_eq!(split_id(&[0x01, 0x02], true).unwrap().0, 0x0201);
        assert_eq!(
            split_id(&[0x00], false).unwrap_err(),
            DecodeError::TooShort(1)
        );
        assert_eq!(split_id(&[], false).unwrap_err(), DecodeError::TooShort(0));
        // An empty body is a default message.
        let (_, body) = split_id(&[0x00, 0x01], false).unwrap();
        assert_eq!(decode_body::<Int32Value>("x", body).unwrap().value, 0);
        assert!(matches!(
            decode_body::<Int32Value>("x", &[0xff, 0xff]),
            Err(DecodeError::BadBody { name, .. }) if name == "x"
        ));
    }
}
