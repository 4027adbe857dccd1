//! The per-API-key and per-request-extra parts of the info token, serialised once at config
//! time into base64 chunks that the signer concatenates per request. Each chunk is JSON padded
//! with spaces to a multiple of 3 bytes, so chunks can be joined as base64 without re-encoding.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::InfoTokenError;
use crate::jws::{aligned_b64, json_string_into};

/// Claim names the envelope owns: never written by metadata or extra claims.
pub(crate) const ENVELOPE: [&str; 7] = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"];
/// Claim names the layouts write for an API key.
const LAYOUT_OWNED: [&str; 6] = [
    "access_type",
    "apikey",
    "name",
    "user_id",
    "metadata",
    "tags",
];

fn is_reserved(name: &str) -> bool {
    ENVELOPE.contains(&name) || LAYOUT_OWNED.contains(&name)
}

/// One chunk: `"name":<json string>,` appended to `json`.
fn push_string_claim(json: &mut Vec<u8>, name: &str, value: &str) {
    json_string_into(json, name);
    json.push(b':');
    json_string_into(json, value);
    json.push(b',');
}

/// An API key as the info token shows it, with both layouts' JSON prepared once.
///
/// Built at config load (one per key); the request path only copies its base64 chunks.
#[derive(Debug, Clone)]
pub struct PreparedApiKey {
    client_id: String,
    client_name: String,
    pub(crate) latest_sub: Vec<u8>,
    pub(crate) latest_body: Vec<u8>,
    pub(crate) legacy_sub: Vec<u8>,
    pub(crate) legacy_body: Vec<u8>,
}

impl PreparedApiKey {
    /// Prepares the key's claims for both layouts (Latest: `sub`, `access_type`, `apikey`
    /// object; Legacy: `sub`, `name`, `user_id`, metadata merged at the root — skipping any key
    /// that names an envelope or layout claim —, stringified `metadata`, `tags`, `apikey`).
    pub fn new(
        client_id: &str,
        client_name: &str,
        metadata: &BTreeMap<String, String>,
        tags: &[String],
    ) -> Self {
        // Light view, as Otoroshi writes it: {clientId, clientName, metadata, tags}.
        let mut meta_json = Vec::new();
        meta_json.push(b'{');
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                meta_json.push(b',');
            }
            json_string_into(&mut meta_json, k);
            meta_json.push(b':');
            json_string_into(&mut meta_json, v);
        }
        meta_json.push(b'}');
        let mut tags_json = vec![b'['];
        for (i, t) in tags.iter().enumerate() {
            if i > 0 {
                tags_json.push(b',');
            }
            json_string_into(&mut tags_json, t);
        }
        tags_json.push(b']');
        let mut light = Vec::new();
        light.extend_from_slice(b"{\"clientId\":");
        json_string_into(&mut light, client_id);
        light.extend_from_slice(b",\"clientName\":");
        json_string_into(&mut light, client_name);
        light.extend_from_slice(b",\"metadata\":");
        light.extend_from_slice(&meta_json);
        light.extend_from_slice(b",\"tags\":");
        light.extend_from_slice(&tags_json);
        light.push(b'}');

        let mut latest_sub = Vec::new();
        push_string_claim(&mut latest_sub, "sub", client_name);
        let mut latest_body = b"\"access_type\":\"apikey\",\"apikey\":".to_vec();
        latest_body.extend_from_slice(&light);
        latest_body.push(b',');

        let mut legacy_sub = Vec::new();
        push_string_claim(&mut legacy_sub, "sub", &format!("apikey:{client_id}"));
        let mut legacy_body = Vec::new();
        if !client_name.is_empty() {
            push_string_claim(&mut legacy_body, "name", client_name);
        }
        if !client_id.is_empty() {
            push_string_claim(&mut legacy_body, "user_id", client_id);
        }
        for (k, v) in metadata {
            if !v.is_empty() && !is_reserved(k) {
                push_string_claim(&mut legacy_body, k, v);
            }
        }
        // The stringified forms are valid UTF-8: built only from &str pieces and ASCII.
        let as_str = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        if !metadata.is_empty() {
            push_string_claim(&mut legacy_body, "metadata", &as_str(&meta_json));
        }
        if !tags.is_empty() {
            push_string_claim(&mut legacy_body, "tags", &as_str(&tags_json));
        }
        push_string_claim(&mut legacy_body, "apikey", &as_str(&light));

        PreparedApiKey {
            client_id: client_id.to_owned(),
            client_name: client_name.to_owned(),
            latest_sub: aligned_b64(latest_sub),
            latest_body: aligned_b64(latest_body),
            legacy_sub: aligned_b64(legacy_sub),
            legacy_body: aligned_b64(legacy_body),
        }
    }

    /// The key's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The key's display name.
    pub fn client_name(&self) -> &str {
        &self.client_name
    }
}

/// Extra claims added to every token they are passed with (for example the external `sub`,
/// `scope` and `iss` of a JWT-exchange feature), prepared once.
///
/// `sub` and `iss` (strings) replace the layout's values. `aud`, `exp`, `iat`, `nbf`, `jti` and
/// the layout's own claims (`access_type`, `apikey`, `name`, `user_id`, `metadata`, `tags`) are
/// refused. Other names are appended after the key's claims; in the Legacy layout a metadata key
/// of the same name would then appear twice, and common parsers keep the last (the extra).
#[derive(Debug, Clone, Default)]
pub struct ExtraClaims {
    pub(crate) sub: Option<Vec<u8>>,
    pub(crate) iss: Option<Vec<u8>>,
    pub(crate) body: Vec<u8>,
}

impl ExtraClaims {
    /// Prepares `claims`. Called when the feature's configuration or its per-request input is
    /// built (cost: one serialisation of the values).
    pub fn new(claims: &Map<String, Value>) -> Result<Self, InfoTokenError> {
        let mut extra = ExtraClaims::default();
        let mut body = Vec::new();
        for (name, value) in claims {
            match name.as_str() {
                "sub" | "iss" => {
                    let Value::String(s) = value else {
                        return Err(InfoTokenError::ReservedClaim(name.clone()));
                    };
                    let mut chunk = Vec::new();
                    push_string_claim(&mut chunk, name, s);
                    let chunk = aligned_b64(chunk);
                    if name == "sub" {
                        extra.sub = Some(chunk);
                    } else {
                        extra.iss = Some(chunk);
                    }
                }
                n if is_reserved(n) => return Err(InfoTokenError::ReservedClaim(name.clone())),
                _ => {
                    json_string_into(&mut body, name);
                    body.push(b':');
                    let json = serde_json::to_vec(value)
                        .map_err(|_| InfoTokenError::ReservedClaim(name.clone()))?;
                    body.extend_from_slice(&json);
                    body.push(b',');
                }
            }
        }
        extra.body = aligned_b64(body);
        Ok(extra)
    }
}
