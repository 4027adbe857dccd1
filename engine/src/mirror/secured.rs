//! The mirror as a secured backend: it answers Otoroshi's exchange protocol with
//! `torii_protocol`'s backend side, verifies an incoming `Otoroshi-Claim`, and can misbehave on
//! purpose (no answer, wrong state, wrong key, expired answer) for tests and demos.
//!
//! Owns the per-worker keys of a secured mirror (built once per worker thread from the
//! command-line secret) and the per-request answer: the `Otoroshi-State-Resp` header line and
//! the decoded claim for the JSON description.

use torii_protocol::challenge::BackendResponder;
use torii_protocol::jws::{
    self, encode_into, json_string_into, Algorithm, SigningKey, Validation, VerifyingKey,
};

/// Which exchange-protocol version the mirror answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChallengeMode {
    /// Echo the state.
    V1,
    /// Answer with a signed token carrying `state-resp`.
    V2,
}

/// Ways to fail the exchange protocol on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Misbehave {
    /// Answer correctly.
    None,
    /// Send no `Otoroshi-State-Resp`.
    NoAnswer,
    /// Answer with another state.
    WrongState,
    /// Sign the V2 answer with a key the gateway does not know.
    WrongKey,
    /// Send a V2 answer that expired a minute ago.
    Expired,
}

/// The security options of a mirror, as given on the command line.
#[derive(Debug, Clone)]
pub struct MirrorSecurity {
    /// Answer the exchange protocol with this version (`None`: do not answer).
    pub challenge: Option<ChallengeMode>,
    /// HS512 secret for the V2 state token and answer.
    pub secret: Vec<u8>,
    /// HS512 secret to verify `Otoroshi-Claim` with (`None`: not verified).
    pub claim_secret: Option<Vec<u8>>,
    /// Misbehaviour for tests and demos.
    pub misbehave: Misbehave,
}

/// Lifetime of the mirror's V2 answers (as Otoroshi's demo backend).
const ANSWER_TTL: u64 = 10;

/// Keys of a secured mirror, built once per worker.
pub struct SecuredMirror {
    opts: MirrorSecurity,
    responder: BackendResponder,
    state_key: Option<VerifyingKey>,
    sign: Option<SigningKey>,
    wrong_key: Option<SigningKey>,
    claim_key: Option<VerifyingKey>,
}

impl std::fmt::Debug for SecuredMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecuredMirror")
            .field("challenge", &self.opts.challenge)
            .finish_non_exhaustive()
    }
}

/// What the mirror adds to a response for the exchange protocol and the claim.
#[derive(Debug, Default)]
pub struct SecurityOutcome {
    /// `otoroshi-state-resp: ...\r\n` (empty when no answer is sent).
    pub answer_line: Vec<u8>,
    /// `V1` or `V2` when a challenge was answered.
    pub version: Option<&'static str>,
    /// The decoded claim as JSON, when one was received and verified.
    pub claim_json: Option<Vec<u8>>,
    /// Why the request is refused (bad state token or bad claim): answered 401.
    pub refusal: Option<String>,
}

impl SecuredMirror {
    /// Builds the keys. Short secrets are accepted (a test tool talks to Otoroshi's default
    /// `secret`), with a warning.
    pub fn new(opts: MirrorSecurity) -> Result<Self, String> {
        let alg = Algorithm::HS512;
        let key_err = |e: jws::KeyError| e.to_string();
        let (responder, state_key, sign, wrong_key) = match opts.challenge {
            Some(ChallengeMode::V2) => {
                let verify = VerifyingKey::hmac(alg, &opts.secret, true).map_err(key_err)?;
                let sign = SigningKey::hmac(alg, &opts.secret, true).map_err(key_err)?;
                let wrong =
                    SigningKey::hmac(alg, b"a-key-the-gateway-has-never-seen-0123456789", true)
                        .map_err(key_err)?;
                // Keys are not `Clone`: the responder gets its own pair.
                let responder = BackendResponder::v2(
                    VerifyingKey::hmac(alg, &opts.secret, true).map_err(key_err)?,
                    SigningKey::hmac(alg, &opts.secret, true).map_err(key_err)?,
                    ANSWER_TTL,
                );
                (responder, Some(verify), Some(sign), Some(wrong))
            }
            _ => (BackendResponder::v1(), None, None, None),
        };
        let claim_key = match &opts.claim_secret {
            Some(s) => Some(VerifyingKey::hmac(alg, s, true).map_err(key_err)?),
            None => None,
        };
        Ok(Self {
            opts,
            responder,
            state_key,
            sign,
            wrong_key,
            claim_key,
        })
    }

    /// Computes the answer to the request's `Otoroshi-State` (`state`) and checks its
    /// `Otoroshi-Claim` (`claim`), at Unix time `now`.
    pub fn answer(&self, state: Option<&[u8]>, claim: Option<&[u8]>, now: u64) -> SecurityOutcome {
        let mut out = SecurityOutcome::default();
        if let Some(mode) = self.opts.challenge {
            out.version = Some(match mode {
                ChallengeMode::V1 => "V1",
                ChallengeMode::V2 => "V2",
            });
            if let Err(refusal) = self.answer_state(mode, state, now, &mut out.answer_line) {
                out.refusal = Some(refusal);
                return out;
            }
        }
        if let (Some(key), Some(token)) = (&self.claim_key, claim) {
            let rules = Validation {
                issuer: Some("Otoroshi".to_owned()),
                ..Validation::default()
            };
            match jws::verify(token, key, &rules, now) {
                Ok(verified) => out.claim_json = serde_json::to_vec(verified.claims()).ok(),
                Err(e) => out.refusal = Some(format!("bad Otoroshi-Claim: {}", e.reason())),
            }
        }
        out
    }

    fn answer_state(
        &self,
        mode: ChallengeMode,
        state: Option<&[u8]>,
        now: u64,
        line: &mut Vec<u8>,
    ) -> Result<(), String> {
        let Some(state) = state else {
            return Ok(()); // Nothing to answer: the gateway will refuse the response.
        };
        if self.opts.misbehave == Misbehave::NoAnswer {
            return Ok(());
        }
        line.extend_from_slice(b"otoroshi-state-resp: ");
        let start = line.len();
        match (mode, self.opts.misbehave) {
            (_, Misbehave::None) => self
                .responder
                .respond(Some(state), now, line)
                .map_err(|e| format!("cannot answer the challenge: {e}"))?,
            (ChallengeMode::V1, _) => {
                line.extend_from_slice(state);
                if let Some(last) = line.last_mut() {
                    *last = if *last == b'A' { b'B' } else { b'A' };
                }
            }
            (ChallengeMode::V2, bad) => {
                let (Some(verify), Some(sign), Some(wrong)) =
                    (&self.state_key, &self.sign, &self.wrong_key)
                else {
                    return Err("V2 keys missing".to_owned());
                };
                let token = jws::verify(state, verify, &Validation::default(), now)
                    .map_err(|e| format!("bad state token: {}", e.reason()))?;
                let sent = token.claim_str("state").unwrap_or_default().to_owned();
                let (state_resp, iat, key) = match bad {
                    Misbehave::WrongState => (format!("x{sent}"), now, sign),
                    Misbehave::WrongKey => (sent, now, wrong),
                    _ => (sent, now.saturating_sub(120), sign),
                };
                let mut payload = Vec::with_capacity(256);
                payload.extend_from_slice(b"{\"state-resp\":");
                json_string_into(&mut payload, &state_resp);
                payload.extend_from_slice(
                    format!(
                        ",\"aud\":\"Otoroshi\",\"iat\":{iat},\"nbf\":{iat},\"exp\":{}}}",
                        iat + ANSWER_TTL
                    )
                    .as_bytes(),
                );
                encode_into(key, None, &payload, line)
                    .map_err(|_| "cannot sign the answer".to_owned())?;
            }
        }
        if line.len() == start {
            line.clear();
        } else {
            line.extend_from_slice(b"\r\n");
        }
        Ok(())
    }
}
