//! The OAuth2 token and introspection body parsers (form and JSON, client authentication by
//! body or Basic). Input: `authorization 0xFF body` (no 0xFF: body only, no Authorization);
//! the selector byte picks the content type. Properties: no panic; bodies over the cap are
//! refused; an accepted request names a non-empty client; an accepted JSON body repeats no
//! member name and an accepted form no parameter name (RFC 6749 §3.2); and a token request
//! accepted from a form, serialised back into a canonical form, parses to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii_fuzz::json::has_duplicate_member;
use torii_fuzz::split_selector;
use torii_protocol::oauth::{
    parse_introspection_request, parse_token_request, ClientAuthMethod, MAX_BODY_LEN,
};

const CONTENT_TYPES: [&[u8]; 4] = [
    b"application/x-www-form-urlencoded",
    b"application/json",
    b"Application/JSON; charset=utf-8",
    b"text/plain",
];

/// Percent-encodes everything but unreserved characters.
fn form_encode(out: &mut Vec<u8>, v: &[u8]) {
    for &b in v {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// True when two `&`-separated pairs of a form have byte-identical names (whatever the
/// decoding rules, those are the same parameter).
fn raw_form_name_repeated(body: &[u8]) -> bool {
    let mut names: Vec<&[u8]> = body
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split(|&b| b == b'=').next().unwrap_or_default())
        .collect();
    let all = names.len();
    names.sort_unstable();
    names.dedup();
    names.len() != all
}

fuzz_target!(|data: &[u8]| {
    let (sel, rest) = split_selector(data);
    let (auth, body) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let ct = (sel & 4 == 0).then_some(CONTENT_TYPES[usize::from(sel & 3)]);
    let token = parse_token_request(ct, auth, body);
    let intro = parse_introspection_request(ct, auth, body);
    if body.len() > MAX_BODY_LEN {
        assert!(token.is_err() && intro.is_err(), "body over the cap accepted");
    }
    if let Ok(i) = &intro {
        assert!(!i.client.client_id.is_empty() && !i.token.is_empty());
    }
    if token.is_ok() || intro.is_ok() {
        match sel & 7 {
            1 | 2 => assert!(!has_duplicate_member(body), "JSON body with a repeated name"),
            0 => assert!(!raw_form_name_repeated(body), "form with a repeated name"),
            _ => {}
        }
    }
    let Ok(t) = token else { return };
    assert!(!t.client.client_id.is_empty(), "empty client id accepted");
    if t.client.method != ClientAuthMethod::Body {
        return;
    }
    let mut form = b"grant_type=client_credentials&client_id=".to_vec();
    form_encode(&mut form, t.client.client_id.as_bytes());
    form.extend_from_slice(b"&client_secret=");
    form_encode(&mut form, t.client.client_secret.expose());
    if let Some(scope) = &t.scope {
        form.extend_from_slice(b"&scope=");
        form_encode(&mut form, scope.as_bytes());
    }
    if form.len() > MAX_BODY_LEN {
        return;
    }
    let again = parse_token_request(Some(CONTENT_TYPES[0]), None, &form);
    assert_eq!(again.as_ref().ok(), Some(&t), "form round trip differs: {again:?}");
});
