//! The V2 challenge-answer check (`V2Verifier::verify`). The selector byte picks a mode:
//! - raw: the input is the answer token, checked against the expected state;
//! - signed: the input is a claims payload signed here with the route's HS512 key, so the
//!   checks after the signature (audience, state, lifetime, freshness, times) are reached.
//!
//! Property on every accepted answer: `aud` contains `Otoroshi`, `state-resp` equals the state
//! sent, `exp` and `iat` are present whole numbers with `exp - iat <= ttl`, `iat` is fresh and
//! nothing is expired or in the future beyond the leeway; no object in the header or the claims
//! repeats a member name, and the header has no `crit`.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use torii_fuzz::json::has_duplicate_member;
use torii_fuzz::keys::{hmac_signing_key, verifying_key};
use torii_fuzz::split_selector;
use torii_protocol::challenge::V2Verifier;

const NOW: u64 = 1_700_000_000;
const TTL: u64 = 30;
const LEEWAY: u64 = 10;
const STATE: &[u8] = b"expected-state-0123456789";

fn num(claims: &Map<String, Value>, name: &str) -> u64 {
    let v = claims.get(name).unwrap_or_else(|| panic!("{name} missing in an accepted answer"));
    let f = v.as_f64().unwrap_or_else(|| panic!("{name} accepted as {v}"));
    assert!(f >= 0.0 && f.fract() == 0.0, "{name} accepted as {v}");
    f as u64
}

fn check_accepted(header: &[u8], payload: &[u8]) {
    assert!(!has_duplicate_member(header), "header with a repeated name accepted");
    assert!(!has_duplicate_member(payload), "claims with a repeated name accepted");
    let header: Map<String, Value> = serde_json::from_slice(header).expect("accepted header");
    assert!(!header.contains_key("crit"), "header with crit accepted");
    let claims: Map<String, Value> = serde_json::from_slice(payload).expect("accepted payload");
    let aud_ok = match claims.get("aud") {
        Some(Value::String(s)) => s == "Otoroshi",
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some("Otoroshi")),
        _ => false,
    };
    assert!(aud_ok, "answer without aud Otoroshi accepted");
    assert_eq!(
        claims.get("state-resp").and_then(Value::as_str).map(str::as_bytes),
        Some(STATE),
        "answer with another state accepted"
    );
    let (exp, iat) = (num(&claims, "exp"), num(&claims, "iat"));
    assert!(exp.saturating_sub(iat) <= TTL, "lifetime over ttl accepted");
    assert!(iat + TTL + LEEWAY >= NOW, "stale answer accepted");
    assert!(exp + LEEWAY >= NOW, "expired answer accepted");
    assert!(iat <= NOW + LEEWAY, "answer issued in the future accepted");
    if claims.contains_key("nbf") {
        assert!(num(&claims, "nbf") <= NOW + LEEWAY, "answer not yet valid accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    let (sel, rest) = split_selector(data);
    let verifier = V2Verifier::new(verifying_key("HS512"), TTL, LEEWAY);
    if sel & 1 == 0 {
        if verifier.verify(rest, STATE, NOW).is_ok() {
            let part = |i| rest.split(|&b| b == b'.').nth(i).unwrap_or_default();
            let decode = |i| URL_SAFE_NO_PAD.decode(part(i)).expect("segment b64");
            check_accepted(&decode(0), &decode(1));
        }
        let _ = verifier.verify_header(None, STATE, NOW);
        return;
    }
    let signer = hmac_signing_key("HS512");
    let mut token = Vec::new();
    token.extend_from_slice(signer.header_b64().as_bytes());
    token.push(b'.');
    token.extend_from_slice(URL_SAFE_NO_PAD.encode(rest).as_bytes());
    let Ok(sig) = signer.sign(&token) else { return };
    token.push(b'.');
    token.extend_from_slice(URL_SAFE_NO_PAD.encode(sig.as_ref()).as_bytes());
    match verifier.verify(&token, STATE, NOW) {
        Ok(()) => check_accepted(br#"{"typ":"JWT","alg":"HS512"}"#, rest),
        Err(e) => {
            let _ = e.reason();
        }
    }
    // The same answer checked against a different state never passes.
    assert!(verifier.verify(&token, b"another-state", NOW).is_err());
});
