//! Unit tests of [`ChunkedDecoder`]: payload and re-chunked output, every split point, and one
//! test per refusal rule (chunk sizes: empty, prefixed or overflowing; extensions over the cap;
//! a line not ending in CRLF; trailers).

use super::*;

const MSG: &[u8] = b"5;name=value;q=\"x y\"\r\nhello\r\n1A\r\n abcdefghijklmnopqrstuvwxy\r\n0\r\nExpires: never\r\nX-T: 1\r\n\r\nNEXT";
const PAYLOAD: &[u8] = b"hello abcdefghijklmnopqrstuvwxy";

/// Feeds `parts` one after the other (re-feeding unconsumed bytes like a real caller would)
/// and returns the output and the offset where the message ended.
fn feed(parts: &[&[u8]], mode: ChunkedOutput) -> Result<(Vec<u8>, Option<usize>), ChunkedError> {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut offset = 0;
    for part in parts {
        pending.extend_from_slice(part);
        let p = d.decode(&pending, &mut out, mode)?;
        offset += p.consumed;
        pending.drain(..p.consumed);
        if p.done {
            return Ok((out, Some(offset)));
        }
    }
    Ok((out, None))
}

fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Option<usize>), ChunkedError> {
    feed(&[input], ChunkedOutput::Payload)
}

fn err(input: &[u8]) -> ChunkedError {
    match decode_all(input) {
        Err(e) => e,
        Ok(r) => panic!("accepted {:?}: {r:?}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn decodes_payload_and_stops_at_message_end() {
    let (out, end) = decode_all(MSG).unwrap();
    assert_eq!(out, PAYLOAD);
    assert_eq!(end, Some(MSG.len() - 4));
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let p = d.decode(MSG, &mut out, ChunkedOutput::Payload).unwrap();
    assert_eq!(
        p,
        DecodeProgress {
            consumed: MSG.len() - 4,
            done: true
        }
    );
    assert!(d.is_done());
    // once done, nothing more is consumed
    let p = d.decode(b"more", &mut out, ChunkedOutput::Payload).unwrap();
    assert_eq!(
        p,
        DecodeProgress {
            consumed: 0,
            done: true
        }
    );
}

#[test]
fn rechunk_is_canonical() {
    let (out, _) = feed(&[MSG], ChunkedOutput::Rechunk).unwrap();
    assert_eq!(
        out,
        b"5\r\nhello\r\n1a\r\n abcdefghijklmnopqrstuvwxy\r\n0\r\n\r\n".to_vec()
    );
    let (out, _) = feed(&[b"0\r\n\r\n"], ChunkedOutput::Rechunk).unwrap();
    assert_eq!(out, b"0\r\n\r\n");
}

#[test]
fn every_split_point_gives_the_same_result() {
    for mode in [ChunkedOutput::Payload, ChunkedOutput::Rechunk] {
        for a in 0..=MSG.len() {
            for b in a..=MSG.len() {
                let (out, end) = feed(&[&MSG[..a], &MSG[a..b], &MSG[b..]], mode).unwrap();
                assert_eq!(end, Some(MSG.len() - 4), "split {a} {b}");
                let payload = if mode == ChunkedOutput::Rechunk {
                    // the re-chunked stream decodes back to the payload
                    let (p, e) = decode_all(&out).unwrap();
                    assert_eq!(e, Some(out.len()));
                    p
                } else {
                    out
                };
                assert_eq!(payload, PAYLOAD, "split {a} {b}");
            }
        }
    }
}

#[test]
fn byte_at_a_time() {
    let parts: Vec<&[u8]> = MSG.chunks(1).collect();
    let (out, end) = feed(&parts, ChunkedOutput::Payload).unwrap();
    assert_eq!(out, PAYLOAD);
    assert_eq!(end, Some(MSG.len() - 4));
}

#[test]
fn incomplete_is_not_an_error() {
    for i in 0..MSG.len() - 4 {
        let (_, end) = decode_all(&MSG[..i]).unwrap();
        assert_eq!(end, None, "prefix {i}");
    }
}

#[test]
fn rejects_empty_or_prefixed_sizes() {
    for bad in [
        &b"\r\n"[..],
        b";ext\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"+5\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"g\r\n",
        b"5g\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n\r\n",
    ] {
        assert_eq!(err(bad), ChunkedError::InvalidSize, "{bad:?}");
    }
    // blanks before an extension are allowed (BWS)
    assert_eq!(
        decode_all(b"5 \t;a\r\nhello\r\n0\r\n\r\n").unwrap().0,
        b"hello"
    );
}

#[test]
fn rejects_overflowing_sizes() {
    assert_eq!(err(b"fffffffffffffffff\r\n"), ChunkedError::SizeOverflow);
    assert_eq!(err(b"20000000000001\r\n"), ChunkedError::SizeOverflow);
    assert_eq!(err(b"00000000000000001\r\n"), ChunkedError::SizeOverflow);
    // at the cap: accepted (and incomplete)
    assert_eq!(
        decode_all(b"20000000000000\r\nab").unwrap(),
        (b"ab".to_vec(), None)
    );
    assert_eq!(decode_all(b"000000000000000A\r\n").unwrap().1, None);
}

#[test]
fn rejects_long_or_bad_extensions() {
    let ok_ext = format!(
        "1;{}\r\na\r\n0\r\n\r\n",
        "x".repeat(MAX_EXTENSION_BYTES - 1)
    );
    assert_eq!(decode_all(ok_ext.as_bytes()).unwrap().0, b"a");
    let long = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_EXTENSION_BYTES));
    assert_eq!(err(long.as_bytes()), ChunkedError::ExtensionTooLong);
    let long_blank = format!(
        "1{};x\r\na\r\n0\r\n\r\n",
        " ".repeat(MAX_EXTENSION_BYTES + 1)
    );
    assert_eq!(err(long_blank.as_bytes()), ChunkedError::ExtensionTooLong);
    assert_eq!(
        err(b"1;a\0b\r\na\r\n0\r\n\r\n"),
        ChunkedError::InvalidExtension
    );
    assert_eq!(
        err(b"1;a\rb\r\na\r\n0\r\n\r\n"),
        ChunkedError::BadLineEnding
    );
}

#[test]
fn rejects_lines_not_ending_in_crlf() {
    for bad in [
        &b"5\nhello\r\n0\r\n\r\n"[..],
        b"5;e\nhello\r\n0\r\n\r\n",
        b"5\rhello\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"5\r\nhello\rX0\r\n\r\n",
        b"5\r\nhello\r\n0\n\r\n",
        b"5\r\nhello\r\n0\r\n\n",
        b"5\r\nhello\r\n0\r\n\rX",
        b"0\r\nX: y\n\r\n",
        b"0\r\nX: y\rZ\r\n",
    ] {
        assert_eq!(err(bad), ChunkedError::BadLineEnding, "{bad:?}");
    }
}

#[test]
fn rejects_large_or_malformed_trailers() {
    let mut big = b"0\r\n".to_vec();
    while big.len() < MAX_TRAILER_BYTES + 10 {
        big.extend_from_slice(b"X-Trailer: 0123456789\r\n");
    }
    big.extend_from_slice(b"\r\n");
    assert_eq!(err(&big), ChunkedError::TrailerTooLarge);
    for bad in [
        &b"0\r\n folded: x\r\n\r\n"[..],
        b"0\r\nX: a\r\n\tcontinued\r\n\r\n",
        b"0\r\nNoColon\r\n\r\n",
        b"0\r\n: empty\r\n\r\n",
        b"0\r\nX : a\r\n\r\n",
        b"0\r\nX: a\0b\r\n\r\n",
    ] {
        assert_eq!(err(bad), ChunkedError::InvalidTrailer, "{bad:?}");
    }
    let (out, end) = decode_all(b"0\r\nX:\r\nY: \xff ok\r\n\r\n").unwrap();
    assert!(out.is_empty());
    assert!(end.is_some());
}

#[test]
fn errors_are_sticky() {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    assert_eq!(
        d.decode(b"z", &mut out, ChunkedOutput::Payload),
        Err(ChunkedError::InvalidSize)
    );
    assert_eq!(
        d.decode(b"0\r\n\r\n", &mut out, ChunkedOutput::Payload),
        Err(ChunkedError::InvalidSize)
    );
    assert_eq!(
        d.decode(b"", &mut out, ChunkedOutput::Payload),
        Err(ChunkedError::InvalidSize)
    );
    assert_eq!(
        ChunkedError::SizeOverflow.to_string(),
        "chunk size too large"
    );
}

#[test]
fn never_panics_on_mutations() {
    let mut buf = MSG.to_vec();
    for i in 0..MSG.len() {
        for b in [0u8, b'\r', b'\n', b' ', b';', b':', b'0', b'f', b'x', 0xff] {
            buf.copy_from_slice(MSG);
            buf[i] = b;
            for mode in [ChunkedOutput::Payload, ChunkedOutput::Rechunk] {
                let _ = feed(&[&buf[..i], &buf[i..]], mode);
            }
        }
    }
}

#[test]
fn hex_line_formatting() {
    let mut out = Vec::new();
    push_hex_line(&mut out, 0);
    push_hex_line(&mut out, 0xabc);
    push_hex_line(&mut out, u64::MAX);
    assert_eq!(out, b"0\r\nabc\r\nffffffffffffffff\r\n");
}

#[test]
fn committed_bytes_counts_an_announced_chunk_before_its_data() {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    assert_eq!(d.committed_bytes(), 0);
    // The size line alone already commits the client to 0xfffff bytes.
    d.decode(b"ff", &mut out, ChunkedOutput::Payload).unwrap();
    assert_eq!(d.committed_bytes(), 0xff);
    d.decode(b"fff\r\n", &mut out, ChunkedOutput::Payload)
        .unwrap();
    assert_eq!(d.committed_bytes(), 0xfffff);
    d.decode(b"abc", &mut out, ChunkedOutput::Payload).unwrap();
    assert_eq!(d.payload_bytes(), 3);
    assert_eq!(d.committed_bytes(), 0xfffff);
    let mut d = ChunkedDecoder::new();
    d.decode(b"3\r\nabc\r\n", &mut out, ChunkedOutput::Payload)
        .unwrap();
    assert_eq!(d.committed_bytes(), 3);
    d.decode(b"0\r\n\r\n", &mut out, ChunkedOutput::Payload)
        .unwrap();
    assert!(d.is_done());
    assert_eq!(d.committed_bytes(), 3);
}
