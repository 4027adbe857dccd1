//! JWS verification, every algorithm and every algorithm-confusion attempt. Two modes, by the
//! low bit of the selector byte:
//! - raw: the input is a compact token, verified against the key of every algorithm (HS*, RS*,
//!   PS*, ES*) and by the multi-algorithm external verifiers; no panic, and whatever is
//!   accepted obeys the rules below;
//! - signed: the input is `header JSON 0xFF payload JSON [0xFF signature bytes]`, signed here by
//!   the signer the rest of the selector picks: a genuine key of any of the 11 algorithms (so the
//!   RSA, PSS and ECDSA paths get past the signature into the header and claim rules), an HS
//!   algorithm keyed with an RSA or EC public key PEM (the classic key-confusion forgery), or
//!   nobody (`none`: the signature is the input's last part, raw). Without `0xFF` the header is
//!   `{"alg":<the signer's algorithm>,"typ":"JWT"}`; the input's header may name any other
//!   algorithm (a mismatched `alg`).
//!
//! Rules checked on every accepted token: it was signed by the genuine key of the verifier's
//! algorithm (never by a confusion signer, never unsigned, never by another algorithm's key);
//! the header `alg` is the key's; the header has no `crit`; no object in the header or the
//! claims repeats a member name; the token is within the size cap; `exp` is present and a
//! non-negative whole number within range and not past (with leeway); `nbf`/`iat` likewise
//! typed and not in the future.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use torii_fuzz::json::has_duplicate_member;
use torii_fuzz::keys::{signers, verifying_key, Signer, ALGORITHMS, HMAC_SECRET};
use torii_fuzz::split_selector;
use torii_protocol::jws::{self, Algorithm, Validation, VerifiedToken, VerifyingKey};
use torii_protocol::jws::{MAX_TIME_CLAIM, MAX_TOKEN_LEN};
use torii_protocol::jwt_verifier::{ExternalRules, JwtVerifier};

const NOW: u64 = 1_700_000_000;
const RSA_PUB: &str = include_str!("../../protocol/tests/keys/rsa2048.pub.pem");
const EC256_PUB: &str = include_str!("../../protocol/tests/keys/ec256.pub.pem");

struct Fixtures {
    keys: Vec<(&'static str, VerifyingKey)>,
    signers: Vec<Signer>,
    /// External verifiers that hold several algorithms at once (the `AlgMismatch` → next key
    /// loop), each with the algorithms it allows.
    external: Vec<(JwtVerifier, Vec<&'static str>)>,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let rules = ExternalRules {
            leeway: Validation::default().leeway,
            ..ExternalRules::default()
        };
        let algs = |names: &[&'static str]| -> Vec<Algorithm> {
            names.iter().map(|n| n.parse().expect("algorithm")).collect()
        };
        let rsa = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
        let hs = ["HS256", "HS384", "HS512"];
        let external = vec![
            (
                JwtVerifier::from_public_pem(&algs(&rsa), RSA_PUB, &rules).expect("rsa"),
                rsa.to_vec(),
            ),
            (
                JwtVerifier::from_public_pem(&algs(&["ES256"]), EC256_PUB, &rules).expect("ec"),
                vec!["ES256"],
            ),
            (
                JwtVerifier::from_secret(&algs(&hs), HMAC_SECRET, false, &rules).expect("hs"),
                hs.to_vec(),
            ),
        ];
        Fixtures {
            keys: ALGORITHMS.iter().map(|&a| (a, verifying_key(a))).collect(),
            signers: signers(),
            external,
        }
    })
}

fn time_ok(claims: &Map<String, Value>, name: &str) -> Option<u64> {
    let v = claims.get(name)?;
    let n = v.as_f64().unwrap_or_else(|| panic!("{name} accepted as {v}"));
    assert!(v.is_number(), "{name} accepted as {v}");
    assert!(n >= 0.0 && n.fract() == 0.0 && n <= MAX_TIME_CLAIM as f64, "{name} = {v}");
    Some(n as u64)
}

fn segment(token: &[u8], i: usize) -> Vec<u8> {
    let part = token.split(|&b| b == b'.').nth(i).expect("segment");
    URL_SAFE_NO_PAD.decode(part).expect("segment base64")
}

fn check_accepted(token: &[u8], alg: &str, v: &VerifiedToken) {
    let leeway = Validation::default().leeway;
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert_eq!(v.header().alg.name(), alg, "header alg differs from the key's");
    let header_json = segment(token, 0);
    let payload_json = segment(token, 1);
    assert!(!has_duplicate_member(&header_json), "header with a repeated name accepted");
    assert!(!has_duplicate_member(&payload_json), "claims with a repeated name accepted");
    let header: Map<String, Value> = serde_json::from_slice(&header_json).expect("header JSON");
    assert_eq!(header.get("alg").and_then(Value::as_str), Some(alg));
    assert!(!header.contains_key("crit"), "header with crit accepted");
    let claims = v.claims();
    let exp = time_ok(claims, "exp").expect("exp is required by default");
    assert!(exp + leeway >= NOW, "expired token accepted");
    if let Some(nbf) = time_ok(claims, "nbf") {
        assert!(nbf <= NOW + leeway, "token not yet valid accepted");
    }
    if let Some(iat) = time_ok(claims, "iat") {
        assert!(iat <= NOW + leeway, "token issued in the future accepted");
    }
}

/// Verifies `token` with every key and every external verifier. `genuine` is the algorithm
/// whose genuine key signed it (`None` when unknown: raw mode), `label` says who signed it.
fn verify_everywhere(token: &[u8], genuine: Option<&str>, label: &str, known_signer: bool) {
    let fx = fixtures();
    let rules = Validation::default();
    for (alg, key) in &fx.keys {
        match jws::verify(token, key, &rules, NOW) {
            Ok(v) => {
                if known_signer {
                    assert_eq!(genuine, Some(*alg), "token signed by {label} accepted by {alg}");
                }
                check_accepted(token, alg, &v);
            }
            Err(e) => {
                let _ = e.reason();
            }
        }
    }
    for (verifier, allowed) in &fx.external {
        if let Ok(v) = verifier.verify(token, NOW) {
            let alg = v.header().alg.name();
            assert!(allowed.contains(&alg), "{alg} accepted by a verifier for {allowed:?}");
            if known_signer {
                assert_eq!(genuine, Some(alg), "token signed by {label} accepted as {alg}");
            }
            check_accepted(token, alg, &v);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (sel, rest) = split_selector(data);
    if sel & 1 == 0 {
        verify_everywhere(rest, None, "the input", false);
        let _ = jws::peek_kid(rest);
        return;
    }
    let fx = fixtures();
    let mut parts = rest.splitn(3, |&b| b == 0xff);
    let first = parts.next().unwrap_or_default();
    let (header, payload) = match parts.next() {
        Some(payload) => (Some(first), payload),
        None => (None, first),
    };
    let raw_signature = parts.next().unwrap_or_default();
    // One more index than signers: "nobody signs".
    let pick = usize::from(sel >> 1) % (fx.signers.len() + 1);
    let signer = fx.signers.get(pick);
    let default_header = match signer {
        Some(s) => format!(r#"{{"alg":"{}","typ":"JWT"}}"#, s.key.algorithm().name()),
        None => r#"{"alg":"none","typ":"JWT"}"#.to_owned(),
    };
    let header = header.unwrap_or(default_header.as_bytes());
    let mut token = Vec::new();
    token.extend_from_slice(URL_SAFE_NO_PAD.encode(header).as_bytes());
    token.push(b'.');
    token.extend_from_slice(URL_SAFE_NO_PAD.encode(payload).as_bytes());
    let signature = match signer {
        Some(s) => match s.key.sign(&token) {
            Ok(sig) => sig.as_ref().to_vec(),
            Err(_) => return,
        },
        None => raw_signature.to_vec(),
    };
    token.push(b'.');
    token.extend_from_slice(URL_SAFE_NO_PAD.encode(&signature).as_bytes());
    match signer {
        Some(s) => verify_everywhere(&token, s.genuine, &s.label, true),
        None => verify_everywhere(&token, None, "nobody", true),
    }
});
