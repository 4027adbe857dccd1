//! The gateway side of Otoroshi's exchange protocol (docs/compatibility.md §1 and §7):
//! the V1 echo check, the V2 request token issued per request, and the V2 answer check with
//! every failure a typed [`ChallengeFailure`]. Constant per-route parts are prepared once.

use serde_json::Value;
use subtle::{Choice, ConstantTimeEq};

use super::state::{JTI_LEN, STATE_LEN};
use crate::jws::{
    self, aligned_b64, audience_contains, b64_in_place, sign_tail, time_value, verify_signed,
    write_time_claims, JwtError, Part, SignError, SigningKey, Validation, VerifyingKey,
};
use crate::strict_json::{parse_members, JsonError, MemberSlots};

/// The issuer and expected audience Otoroshi uses (`otoroshi.headers.jwt.issuer`).
pub const ISSUER: &str = "Otoroshi";

/// Why a backend's challenge answer was refused. Each has a stable [`reason`](Self::reason)
/// used as the `reason` label of `torii_challenge_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeFailure {
    /// No `Otoroshi-State-Resp` (or configured) header in the response.
    #[error("no state in response header")]
    MissingHeader,
    /// V1 value or V2 `state-resp` differs from the state sent (or `state-resp` is absent).
    #[error("state from response does not match request one")]
    StateMismatch,
    /// The V2 token signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The V2 token `alg` is not the configured algorithm (including `none`).
    #[error("algorithm does not match the configured one")]
    AlgMismatch,
    /// The V2 token is not a well-formed JWS or has a malformed claim.
    #[error("malformed token")]
    Malformed,
    /// `exp` is past, beyond the leeway.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    /// `exp` or `iat` is missing.
    #[error("exp / iat is empty")]
    MissingExpIat,
    /// `exp - iat` exceeds the route ttl.
    #[error("response token ttl too big")]
    TtlTooLong,
    /// `iat` is older than `now - ttl - leeway` (Torii's freshness rule).
    #[error("response token is stale")]
    Stale,
    /// `aud` does not contain `Otoroshi`.
    #[error("wrong audience")]
    WrongAudience,
}

impl ChallengeFailure {
    /// Every failure reason, in a fixed order (metrics keep one counter per entry).
    pub const ALL: [ChallengeFailure; 11] = [
        ChallengeFailure::MissingHeader,
        ChallengeFailure::StateMismatch,
        ChallengeFailure::BadSignature,
        ChallengeFailure::AlgMismatch,
        ChallengeFailure::Malformed,
        ChallengeFailure::Expired,
        ChallengeFailure::NotYetValid,
        ChallengeFailure::MissingExpIat,
        ChallengeFailure::TtlTooLong,
        ChallengeFailure::Stale,
        ChallengeFailure::WrongAudience,
    ];

    /// Stable label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ChallengeFailure::MissingHeader => "missing_header",
            ChallengeFailure::StateMismatch => "state_mismatch",
            ChallengeFailure::BadSignature => "bad_signature",
            ChallengeFailure::AlgMismatch => "alg_mismatch",
            ChallengeFailure::Malformed => "malformed",
            ChallengeFailure::Expired => "expired",
            ChallengeFailure::NotYetValid => "not_yet_valid",
            ChallengeFailure::MissingExpIat => "missing_exp_iat",
            ChallengeFailure::TtlTooLong => "ttl_too_long",
            ChallengeFailure::Stale => "stale",
            ChallengeFailure::WrongAudience => "wrong_audience",
        }
    }

    fn from_jwt(e: JwtError) -> Self {
        match e {
            JwtError::AlgNone | JwtError::AlgMismatch | JwtError::MissingAlg => {
                ChallengeFailure::AlgMismatch
            }
            JwtError::BadSignature => ChallengeFailure::BadSignature,
            JwtError::Expired => ChallengeFailure::Expired,
            JwtError::NotYetValid | JwtError::IssuedInFuture => ChallengeFailure::NotYetValid,
            JwtError::WrongAudience => ChallengeFailure::WrongAudience,
            JwtError::MissingClaim(ref c) if c == "aud" => ChallengeFailure::WrongAudience,
            _ => ChallengeFailure::Malformed,
        }
    }
}

/// Constant-time equality of two byte strings whose lengths are public (as with subtle's
/// `[u8]::ct_eq`, different lengths return false at once). Compares 8 bytes per step with
/// subtle's `u64::ct_eq`: one optimisation barrier per word instead of one per byte, which was
/// a third of a V1 check.
fn ct_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word(bytes: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(bytes);
        u64::from_le_bytes(w)
    }
    if a.len() != b.len() {
        return false;
    }
    let mut equal = Choice::from(1);
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut a_words).zip(&mut b_words) {
        equal &= word(x).ct_eq(&word(y));
    }
    equal &= a_words.remainder().ct_eq(b_words.remainder());
    bool::from(equal)
}

/// Checks a V1 answer: the received header value must equal the sent state byte for byte
/// (constant time; no trimming, no case folding). Called once per proxied response.
pub fn verify_v1(sent_state: &[u8], received: Option<&[u8]>) -> Result<(), ChallengeFailure> {
    let received = received.ok_or(ChallengeFailure::MissingHeader)?;
    if ct_eq_bytes(sent_state, received) {
        Ok(())
    } else {
        Err(ChallengeFailure::StateMismatch)
    }
}

/// Why a V2 request token could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The state or jti contains bytes that are not printable ASCII JSON-safe characters.
    #[error("state or jti contains characters outside the allowed alphabet")]
    InvalidValue,
    /// The signature could not be computed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Appends `"<value>"` after checking that `value` needs no JSON escaping.
fn push_plain_string(out: &mut Vec<u8>, value: &[u8]) -> Result<(), IssueError> {
    if !value
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        return Err(IssueError::InvalidValue);
    }
    out.push(b'"');
    out.extend_from_slice(value);
    out.push(b'"');
    Ok(())
}

/// Issues V2 request tokens for one route. Built once per route at config load.
///
/// Payload: `{"iss":"Otoroshi","sub":"Otoroshi","aud":<route>,` (precomputed, space-padded to a
/// multiple of 3 bytes so its base64 is a fixed prefix) then, per request,
/// `"iat":…,"nbf":…,"exp":…,"jti":…,"state":…}`.
#[derive(Debug)]
pub struct V2Issuer {
    key: SigningKey,
    ttl_secs: u64,
    /// `b64(header).b64(constant payload prefix)`.
    prefix: Vec<u8>,
}

impl V2Issuer {
    /// Prepares the constant parts for `route_name`; `ttl_secs` is the token lifetime
    /// (Otoroshi's default 30).
    pub fn new(route_name: &str, ttl_secs: u64, key: SigningKey) -> Self {
        let mut json = Vec::with_capacity(64 + route_name.len());
        json.extend_from_slice(br#"{"iss":"Otoroshi","sub":"Otoroshi","aud":"#);
        jws::json_string_into(&mut json, route_name);
        json.push(b',');
        let mut prefix = key.header_b64().as_bytes().to_vec();
        prefix.push(b'.');
        prefix.extend_from_slice(&aligned_b64(json));
        V2Issuer {
            key,
            ttl_secs,
            prefix,
        }
    }

    /// The configured lifetime.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Appends the signed state token for `state` to `out`. Per request: ~250 bytes of JSON
    /// written and base64-encoded, one signature; no allocation when `out` has ~900 bytes free
    /// (HMAC) or more for RSA.
    pub fn issue_into(
        &self,
        state: &[u8; STATE_LEN],
        jti: &[u8; JTI_LEN],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), IssueError> {
        let start = out.len();
        out.extend_from_slice(&self.prefix);
        let tail = out.len();
        write_time_claims(out, now, self.ttl_secs);
        out.extend_from_slice(b",\"jti\":");
        let checked = push_plain_string(out, jti).and_then(|()| {
            out.extend_from_slice(b",\"state\":");
            push_plain_string(out, state)
        });
        if let Err(e) = checked {
            out.truncate(start);
            return Err(e);
        }
        out.push(b'}');
        b64_in_place(out, tail);
        sign_tail(&self.key, start, out).inspect_err(|_| out.truncate(start))?;
        Ok(())
    }
}

/// Checks V2 answers for one route. Built once per route at config load.
#[derive(Debug)]
pub struct V2Verifier {
    key: VerifyingKey,
    ttl_secs: u64,
    leeway_secs: u64,
    rules: Validation,
}

impl V2Verifier {
    /// `key` carries the expected algorithm; `ttl_secs` caps `exp - iat` and the token age;
    /// `leeway_secs` is the clock-skew allowance (Otoroshi's default 10).
    pub fn new(key: VerifyingKey, ttl_secs: u64, leeway_secs: u64) -> Self {
        let rules = Validation {
            leeway: leeway_secs,
            required_claims: Vec::new(),
            issuer: None,
            audience: Some(ISSUER.to_owned()),
            reject_future_iat: true,
            check_time: false,
        };
        V2Verifier {
            key,
            ttl_secs,
            leeway_secs,
            rules,
        }
    }

    /// Checks the answer header value, `None` when the header is absent.
    pub fn verify_header(
        &self,
        header: Option<&[u8]>,
        expected_state: &[u8],
        now: u64,
    ) -> Result<(), ChallengeFailure> {
        self.verify(
            header.ok_or(ChallengeFailure::MissingHeader)?,
            expected_state,
            now,
        )
    }

    /// Checks a V2 answer token against the state sent. Called once per proxied response.
    /// Order: alg, signature, aud, `state-resp` (constant time), `exp`/`iat` presence,
    /// `exp - iat <= ttl`, freshness `iat >= now - ttl - leeway`, then `exp`/`nbf`/`iat`
    /// against `now` with the leeway.
    ///
    /// Note: with `exp - iat <= ttl` holding, a stale `iat` implies `exp + leeway < now`, so the
    /// freshness rule mostly refines the *reason* (a replayed old answer reports `stale`, a
    /// short-lived answer that just ran out reports `expired`); it also guards against a
    /// future change of the lifetime rule.
    ///
    /// Cost: one signature check and one small JSON parse into the five claims it reads (the
    /// same checks as [`jws::verify`] with this verifier's rules, minus building a claim map).
    pub fn verify(
        &self,
        token: &[u8],
        expected_state: &[u8],
        now: u64,
    ) -> Result<(), ChallengeFailure> {
        let fail = ChallengeFailure::from_jwt;
        let (_header, payload) = verify_signed(token, &self.key).map_err(fail)?;
        let claims = AnswerClaims::parse(&payload).map_err(fail)?;
        // What `jws::verify` does with `self.rules` (no time comparison yet, no required
        // claims, no issuer, audience `Otoroshi`), in the same order.
        let exp = time_value(claims.exp.as_ref(), "exp").map_err(fail)?;
        let nbf = time_value(claims.nbf.as_ref(), "nbf").map_err(fail)?;
        let iat = time_value(claims.iat.as_ref(), "iat").map_err(fail)?;
        match &claims.aud {
            Some(aud) if audience_contains(aud, ISSUER) => {}
            _ => return Err(ChallengeFailure::WrongAudience),
        }
        let state_ok = matches!(&claims.state_resp, Some(Value::String(s))
            if ct_eq_bytes(s.as_bytes(), expected_state));
        if !state_ok {
            return Err(ChallengeFailure::StateMismatch);
        }
        let (Some(exp), Some(iat)) = (exp, iat) else {
            return Err(ChallengeFailure::MissingExpIat);
        };
        if exp.saturating_sub(iat) > self.ttl_secs {
            return Err(ChallengeFailure::TtlTooLong);
        }
        if iat
            .saturating_add(self.ttl_secs)
            .saturating_add(self.leeway_secs)
            < now
        {
            return Err(ChallengeFailure::Stale);
        }
        jws::check_times(Some(exp), nbf, Some(iat), &self.rules, now).map_err(fail)
    }
}

/// The claims a V2 answer check reads. Each is kept as the JSON value found (JSON `null`
/// included, as `Some(Value::Null)`) so that the type rules are exactly those of a claim map;
/// other claims are checked and dropped without being built.
#[derive(Default)]
struct AnswerClaims {
    state_resp: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    iat: Option<Value>,
    nbf: Option<Value>,
}

impl MemberSlots for AnswerClaims {
    fn slot(&mut self, name: &str) -> Option<&mut Option<Value>> {
        match name {
            "state-resp" => Some(&mut self.state_resp),
            "aud" => Some(&mut self.aud),
            "exp" => Some(&mut self.exp),
            "iat" => Some(&mut self.iat),
            "nbf" => Some(&mut self.nbf),
            _ => None,
        }
    }
}

impl AnswerClaims {
    /// Parses a payload under the acceptance rules of the claim map [`jws::verify`] builds:
    /// valid UTF-8 throughout (checked up front, so skipped claims are checked too), one JSON
    /// object, nothing but whitespace after it, and no member name twice in any object
    /// (RFC 7519 §4; `crate::strict_json`).
    fn parse(payload: &[u8]) -> Result<Self, JwtError> {
        let text = std::str::from_utf8(payload).map_err(|_| JwtError::BadJson(Part::Payload))?;
        let mut claims = AnswerClaims::default();
        parse_members(text, &mut claims).map_err(|e| match e {
            JsonError::DuplicateMember => JwtError::DuplicateMember(Part::Payload),
            JsonError::Invalid => JwtError::BadJson(Part::Payload),
        })?;
        Ok(claims)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::jws::{encode_into, Algorithm};

    const NOW: u64 = 1_700_000_000;
    const STATE: &[u8] = b"s-t-a-t-e";

    /// The answer check as it was written on top of `jws::verify` and a claim map: the
    /// reference the claim-struct parse must agree with.
    fn reference(v: &V2Verifier, token: &[u8], state: &[u8]) -> Result<(), ChallengeFailure> {
        let verified =
            jws::verify(token, &v.key, &v.rules, NOW).map_err(ChallengeFailure::from_jwt)?;
        if !verified
            .claim_str("state-resp")
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(state)))
        {
            return Err(ChallengeFailure::StateMismatch);
        }
        let (Some(exp), Some(iat)) = (verified.exp(), verified.iat()) else {
            return Err(ChallengeFailure::MissingExpIat);
        };
        if exp.saturating_sub(iat) > v.ttl_secs {
            return Err(ChallengeFailure::TtlTooLong);
        }
        if iat.saturating_add(v.ttl_secs).saturating_add(v.leeway_secs) < NOW {
            return Err(ChallengeFailure::Stale);
        }
        jws::check_times(Some(exp), verified.nbf(), Some(iat), &v.rules, NOW)
            .map_err(ChallengeFailure::from_jwt)
    }

    #[test]
    fn claim_struct_parse_agrees_with_the_claim_map() {
        let key = SigningKey::hmac(Algorithm::HS512, &[7; 32], false).unwrap();
        let v = V2Verifier::new(key.verifying_key(), 30, 10);
        let good = r#""state-resp":"s-t-a-t-e","aud":"Otoroshi","iat":1700000000,"exp":1700000010"#;
        let payloads: Vec<Vec<u8>> = [
            format!("{{{good}}}"),
            format!(" \n{{{good}}}\t "),
            format!("{{{good},\"nbf\":1700000000,\"x\":[1,{{\"y\":null}}],\"z\":\"\\u00e9\"}}"),
            format!("{{{good},\"nbf\":null}}"),
            format!("{{{good},\"nbf\":1700000100}}"),
            r#"{"state-resp":"s-t-a-t-e","aud":["x","Otoroshi"],"iat":1700000000,"exp":1700000010}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","aud":["x"],"iat":1700000000,"exp":1700000010}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","aud":null,"iat":1700000000,"exp":1700000010}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","iat":1700000000,"exp":1700000010}"#.into(),
            r#"{"state-resp":7,"aud":"Otoroshi","iat":1700000000,"exp":1700000010}"#.into(),
            r#"{"state-resp":null,"aud":"Otoroshi","iat":1700000000,"exp":1700000010}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","aud":"Otoroshi","iat":null,"exp":1700000010}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","aud":"Otoroshi","iat":1700000000,"exp":"1700000010"}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","aud":"Otoroshi","iat":1700000000.5,"exp":1700000010}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","aud":"Otoroshi","iat":-1,"exp":1700000010}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","aud":"Otoroshi","iat":1700000000}"#.into(),
            r#"{"state-resp":"s-t-a-t-e","aud":"Otoroshi","iat":1600000000,"exp":1600000010}"#.into(),
            r#"["s-t-a-t-e","Otoroshi",1700000000,1700000010,1700000000]"#.into(),
            format!("{{{good}}} x"),
            format!("{{{good}"),
            "null".into(),
            "".into(),
            format!("{}{{{good}}}{}", "[".repeat(20), "]".repeat(20)),
        ]
        .into_iter()
        .map(String::into_bytes)
        .chain([
            // Invalid UTF-8 inside a claim nobody reads.
            [&br#"{"x":""#[..], &[0xff, 0xfe], br#"","#, good.as_bytes(), b"}"].concat(),
        ])
        .collect();
        for payload in &payloads {
            let mut token = Vec::new();
            encode_into(&key, None, payload, &mut token).unwrap();
            let text = String::from_utf8_lossy(payload);
            assert_eq!(
                v.verify(&token, STATE, NOW),
                reference(&v, &token, STATE),
                "{text}"
            );
            // And with a header that takes the slow path (a kid), and the reversed plain one.
            let mut token = Vec::new();
            encode_into(&key, Some("k1"), payload, &mut token).unwrap();
            assert_eq!(v.verify(&token, STATE, NOW), reference(&v, &token, STATE));
        }
        assert_eq!(v.verify(&encoded(&key, &payloads[0]), STATE, NOW), Ok(()));
        // Duplicated claims, read or not, at any depth: both refuse them.
        for dup in [
            format!("{{{good},\"exp\":1700000010}}"),
            format!("{{{good},\"x\":1,\"x\":1}}"),
            format!("{{{good},\"x\":{{\"y\":[{{\"z\":1,\"z\":2}}]}}}}"),
            format!("{{\"state-resp\":\"forged\",{good}}}"),
        ] {
            let token = encoded(&key, dup.as_bytes());
            assert_eq!(
                v.verify(&token, STATE, NOW),
                Err(ChallengeFailure::Malformed)
            );
            assert_eq!(
                reference(&v, &token, STATE),
                Err(ChallengeFailure::Malformed)
            );
        }
    }

    fn encoded(key: &SigningKey, payload: &[u8]) -> Vec<u8> {
        let mut token = Vec::new();
        encode_into(key, None, payload, &mut token).unwrap();
        token
    }

    #[test]
    fn token_errors_map_to_their_challenge_reason() {
        use ChallengeFailure as F;
        for (e, want) in [
            (JwtError::AlgNone, F::AlgMismatch),
            (JwtError::MissingAlg, F::AlgMismatch),
            (JwtError::BadSignature, F::BadSignature),
            (JwtError::Expired, F::Expired),
            (JwtError::IssuedInFuture, F::NotYetValid),
            (JwtError::WrongAudience, F::WrongAudience),
            (JwtError::MissingClaim("aud".into()), F::WrongAudience),
            (JwtError::MissingClaim("exp".into()), F::Malformed),
            (JwtError::CritHeader, F::Malformed),
            (JwtError::DuplicateMember(Part::Payload), F::Malformed),
        ] {
            assert_eq!(F::from_jwt(e.clone()), want, "{e:?}");
        }
    }

    #[test]
    fn word_wise_comparison_is_equality() {
        let base: Vec<u8> = (0..=40u8).collect();
        for len in 0..=base.len() {
            let a = &base[..len];
            assert!(ct_eq_bytes(a, a));
            assert_eq!(ct_eq_bytes(a, &base[..len.saturating_sub(1)]), len == 0);
            for i in 0..len {
                let mut b = a.to_vec();
                b[i] ^= 0x80;
                assert!(!ct_eq_bytes(a, &b), "len {len} byte {i}");
            }
        }
    }

    #[test]
    fn both_plain_header_orders_take_the_fast_path_and_others_still_parse() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let key = SigningKey::hmac(Algorithm::HS512, &[7; 32], false).unwrap();
        let v = V2Verifier::new(key.verifying_key(), 30, 10);
        let payload =
            br#"{"state-resp":"s-t-a-t-e","aud":"Otoroshi","iat":1700000000,"exp":1700000010}"#;
        for header in [
            r#"{"typ":"JWT","alg":"HS512"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"HS512"}"#,
            r#"{ "alg" : "HS512" , "typ":"JWT" }"#,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            let mut input = URL_SAFE_NO_PAD.encode(header).into_bytes();
            input.push(b'.');
            input.extend_from_slice(URL_SAFE_NO_PAD.encode(payload).as_bytes());
            let sig = key.sign(&input).unwrap();
            input.push(b'.');
            input.extend_from_slice(URL_SAFE_NO_PAD.encode(sig).as_bytes());
            assert_eq!(
                v.verify(&input, STATE, NOW),
                reference(&v, &input, STATE),
                "{header}"
            );
        }
    }
}
