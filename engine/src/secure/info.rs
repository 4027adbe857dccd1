//! The info token (`Otoroshi-Claim`) of one route (reference §2, decisions.md "Info token").
//!
//! Owns a route's compiled signer (layout, audience, ttl, key; constant payload parts prepared
//! by `torii_protocol` at build time) and the rendering of the header line per request.

use torii_protocol::challenge::JTI_LEN;
use torii_protocol::info_token::{
    ExtraClaims, InfoTokenError, InfoTokenSigner, Layout, PreparedApiKey,
};

use crate::config::{InfoTokenSpec, InfoTokenVersion};
use crate::secure::keys::signing_key;

/// A route's compiled info token.
#[derive(Debug)]
pub struct RouteInfoToken {
    signer: InfoTokenSigner,
    /// `<header>: `, written before the token.
    prefix: Vec<u8>,
    /// Lower-case header name (incoming copies are dropped).
    pub header: Vec<u8>,
}

impl RouteInfoToken {
    /// Builds the info token of route `route_name`. Errors are messages for the key path
    /// `routes[i].info_token`.
    pub fn build(route_name: &str, spec: &InfoTokenSpec, allow_weak: bool) -> Result<Self, String> {
        let layout = match spec.version {
            InfoTokenVersion::Latest => Layout::Latest,
            InfoTokenVersion::Legacy => Layout::Legacy,
        };
        let key = signing_key(&spec.algo, allow_weak)?;
        let mut prefix = spec.header.as_bytes().to_vec();
        prefix.extend_from_slice(b": ");
        Ok(Self {
            signer: InfoTokenSigner::new(layout, route_name, spec.ttl.as_secs().max(1), key),
            prefix,
            header: spec.header.to_ascii_lowercase().into_bytes(),
        })
    }

    /// Appends `<header>: <token>\r\n` to `out`, describing the caller (`api_key`, or the
    /// public access type when `None`).
    pub fn render_header(
        &self,
        api_key: Option<&PreparedApiKey>,
        jti: &[u8; JTI_LEN],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), InfoTokenError> {
        self.render_with(api_key, None, jti, now, out)
    }

    /// Like [`RouteInfoToken::render_header`], adding `extra` claims (the external `sub`,
    /// `scope` and `iss` of a token exchanged by `[routes.jwt] forward = "exchange"`).
    pub fn render_with(
        &self,
        api_key: Option<&PreparedApiKey>,
        extra: Option<&ExtraClaims>,
        jti: &[u8; JTI_LEN],
        now: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), InfoTokenError> {
        let start = out.len();
        out.extend_from_slice(&self.prefix);
        if let Err(e) = self.signer.write_into(api_key, extra, now, jti, out) {
            out.truncate(start);
            return Err(e);
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}
