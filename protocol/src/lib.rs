//! `torii-protocol`: the pure logic of Otoroshi's security protocols (tokens, the exchange
//! protocol, the info token, API keys, OAuth2) and of the WebSocket handshake a gateway checks.
//! No IO, no clock reads, no async runtime: time and randomness are parameters, so a gateway
//! and a backend written in Rust can both use it.
#![forbid(unsafe_code)]

pub mod apikey;
pub mod balance;
pub mod challenge;
pub mod info_token;
pub mod jws;
pub mod jwt_verifier;
pub mod oauth;
pub mod quota;
pub mod secret;
pub mod strict_json;
pub mod websocket;

pub use apikey::{ApiKey, ApiKeyError, ApiKeyStore, Credentials};
pub use challenge::{verify_v1, ChallengeFailure, StateGenerator, V2Issuer, V2Verifier};
pub use info_token::{InfoTokenSigner, Layout, PreparedApiKey};
pub use jws::{Algorithm, JwtError, SigningKey, Validation, VerifiedToken, VerifyingKey};
pub use jwt_verifier::{ExternalJwtError, ExternalRules, JwtVerifier};
pub use oauth::{ClientCredentials, KeyPair, KeyPairs, OAuthError};
