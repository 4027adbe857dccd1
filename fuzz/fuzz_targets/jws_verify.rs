//! JWS verification, every algorithm. Two modes, by the selector byte:
//! - raw: the input is a compact token, verified against the key of every algorithm (HS*, RS*,
//!   PS*, ES*); no panic, and whatever is accepted obeys the rules below;
//! - signed: the input is `header JSON 0xFF payload JSON`, signed here with an HS key so that
//!   the verifier gets past the signature into the header and claim rules.
//!
//! Rules checked on every accepted token: the header `alg` is the key's (never `none`), the
//! token is within the size cap, `exp` is present and a non-negative whole number within range
//! and not past (with leeway), `nbf`/`iat` likewise typed and not in the future; a token signed
//! for one HS algorithm is refused by the others and by an RSA key (no algorithm confusion).
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use torii_fuzz::keys::{hmac_signing_key, verifying_key, ALGORITHMS};
use torii_fuzz::split_selector;
use torii_protocol::jws::{self, Validation, MAX_TIME_CLAIM, MAX_TOKEN_LEN};

const NOW: u64 = 1_700_000_000;

fn time_ok(claims: &Map<String, Value>, name: &str) -> Option<u64> {
    let v = claims.get(name)?;
    let n = v.as_f64().unwrap_or_else(|| panic!("{name} accepted as {v}"));
    assert!(v.is_number(), "{name} accepted as {v}");
    assert!(n >= 0.0 && n.fract() == 0.0 && n <= MAX_TIME_CLAIM as f64, "{name} = {v}");
    Some(n as u64)
}

fn check_accepted(token: &[u8], alg: &str, v: &jws::VerifiedToken, rules: &Validation) {
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert_eq!(v.header().alg.name(), alg, "header alg differs from the key's");
    let mut parts = token.split(|&b| b == b'.');
    let header = parts.next().and_then(|h| URL_SAFE_NO_PAD.decode(h).ok()).expect("header b64");
    let header: Map<String, Value> = serde_json::from_slice(&header).expect("header JSON");
    assert_eq!(header.get("alg").and_then(Value::as_str), Some(alg));
    let claims = v.claims();
    let exp = time_ok(claims, "exp").expect("exp is required by default");
    assert!(exp + rules.leeway >= NOW, "expired token accepted");
    if let Some(nbf) = time_ok(claims, "nbf") {
        assert!(nbf <= NOW + rules.leeway, "token not yet valid accepted");
    }
    if let Some(iat) = time_ok(claims, "iat") {
        assert!(iat <= NOW + rules.leeway, "token issued in the future accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    let (sel, rest) = split_selector(data);
    let rules = Validation::default();
    if sel & 1 == 0 {
        for alg in ALGORITHMS {
            let key = verifying_key(alg);
            if let Ok(v) = jws::verify(rest, &key, &rules, NOW) {
                check_accepted(rest, alg, &v, &rules);
            }
            let _ = jws::peek_kid(rest);
        }
        return;
    }
    let (header, payload) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], rest),
    };
    let alg = ALGORITHMS[usize::from(sel >> 1) % 3];
    let signer = hmac_signing_key(alg);
    let mut token = Vec::new();
    token.extend_from_slice(URL_SAFE_NO_PAD.encode(header).as_bytes());
    token.push(b'.');
    token.extend_from_slice(URL_SAFE_NO_PAD.encode(payload).as_bytes());
    let Ok(sig) = signer.sign(&token) else { return };
    token.push(b'.');
    token.extend_from_slice(URL_SAFE_NO_PAD.encode(sig.as_ref()).as_bytes());
    for other in ALGORITHMS {
        let result = jws::verify(&token, &verifying_key(other), &rules, NOW);
        match result {
            Ok(v) => {
                assert_eq!(other, alg, "token signed with {alg} accepted by a {other} key");
                check_accepted(&token, alg, &v, &rules);
            }
            Err(e) => {
                let _ = e.reason();
            }
        }
    }
});
