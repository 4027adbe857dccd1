//! The chunked body decoder. Properties: no panic; the verdict, the bytes consumed and the
//! payload do not depend on how the input is split into reads; nothing past the end of the
//! message is consumed; and the canonical re-chunked stream of a complete body decodes to the
//! same payload, consuming exactly itself (parse → serialise → parse is stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii_engine::http1::{ChunkedDecoder, ChunkedError, ChunkedOutput};
use torii_fuzz::split_selector;

/// The outcome of decoding `input` fed in pieces of the sizes `steps` cycles through.
#[derive(Debug, PartialEq)]
struct Outcome {
    consumed: usize,
    done: bool,
    error: Option<ChunkedError>,
    out: Vec<u8>,
}

fn decode(input: &[u8], steps: &[usize], mode: ChunkedOutput) -> Outcome {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pos: usize = 0;
    let mut step = steps.iter().cycle();
    loop {
        let n = (*step.next().unwrap_or(&usize::MAX)).max(1);
        let end = pos.saturating_add(n).min(input.len());
        let given = end - pos;
        match dec.decode(&input[pos..end], &mut out, mode) {
            Err(e) => {
                assert_eq!(dec.decode(b"0\r\n\r\n", &mut Vec::new(), mode), Err(e), "not sticky");
                return Outcome { consumed: pos, done: false, error: Some(e), out: Vec::new() };
            }
            Ok(p) => {
                assert!(p.consumed <= given);
                pos += p.consumed;
                if p.done {
                    assert!(dec.is_done());
                    return Outcome { consumed: pos, done: true, error: None, out };
                }
                assert_eq!(p.consumed, given, "stopped early without being done");
                if end == input.len() {
                    return Outcome { consumed: pos, done: false, error: None, out };
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (sel, input) = split_selector(data);
    let whole = decode(input, &[usize::MAX], ChunkedOutput::Payload);
    let steps = [1 + usize::from(sel & 7), 1, 3 + usize::from(sel >> 3)];
    let split = decode(input, &steps, ChunkedOutput::Payload);
    // An error may be found at a different offset when reads are split (the consumed count of
    // a failed decode is not reported), but the verdict and the payload may not differ.
    assert_eq!(whole.error, split.error, "verdict depends on the read boundaries");
    if whole.error.is_none() {
        assert_eq!(whole, split, "result depends on the read boundaries");
    }
    if whole.done {
        let rechunked = decode(input, &[usize::MAX], ChunkedOutput::Rechunk);
        assert!(rechunked.done);
        let again = decode(&rechunked.out, &steps, ChunkedOutput::Payload);
        assert!(again.done, "canonical stream not complete");
        assert_eq!(again.consumed, rechunked.out.len());
        assert_eq!(again.out, whole.out, "canonical stream decodes to another payload");
        let twice = decode(&rechunked.out, &[usize::MAX], ChunkedOutput::Rechunk);
        assert_eq!(twice.out, rechunked.out, "re-chunking is not stable");
    }
});
