//! The request-path canonicaliser (routing and the upstream request line use its output).
//! Properties: no panic on any bytes; a path that passes is canonical — its own canonical form
//! (idempotent), absolute, without `.`/`..` segments or inner empty segments, without an
//! encoded unreserved byte, without lower-case hex in an escape, and never longer than the
//! input; and the fast path agrees with the full pass (a path it calls canonical comes back
//! unchanged).
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii_engine::http1::{canonicalize_path, is_plainly_canonical};

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let merge = data.first().is_some_and(|b| b & 1 == 0);
    let Ok(changed) = canonicalize_path(data, merge, &mut out) else {
        return;
    };
    if is_plainly_canonical(data) {
        assert!(!changed && out.is_empty());
    }
    let canonical: Vec<u8> = if changed { out } else { data.to_vec() };
    assert!(canonical.starts_with(b"/"));
    assert!(canonical.len() <= data.len());
    let mut again = Vec::new();
    assert_eq!(canonicalize_path(&canonical, merge, &mut again), Ok(false));
    let segments: Vec<&[u8]> = canonical[1..].split(|&b| b == b'/').collect();
    for (i, seg) in segments.iter().enumerate() {
        assert!(*seg != b"." && *seg != b"..");
        if merge {
            assert!(!seg.is_empty() || i + 1 == segments.len());
        }
    }
    for w in canonical.windows(3) {
        if w[0] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
            let (Some(hi), Some(lo)) = (hex(w[1]), hex(w[2])) else {
                panic!("invalid escape kept");
            };
            assert!(!is_unreserved(hi << 4 | lo), "unreserved byte left encoded");
            assert!(!w[1].is_ascii_lowercase() && !w[2].is_ascii_lowercase());
        }
    }
});
