//! Property tests: the OAuth2 body parsers, the Basic decoder, the query/cookie helpers and the
//! extractors never panic, whatever bytes they are given, and refuse oversized bodies.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use torii_protocol::apikey::{
    cookie, extract, percent_decode, query_param, BasicCredentials, Extractors, SimpleRequest,
};
use torii_protocol::oauth::{parse_introspection_request, parse_token_request, MAX_BODY_LEN};

fn content_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        Just(Some(b"application/x-www-form-urlencoded".to_vec())),
        Just(Some(b"application/json; charset=utf-8".to_vec())),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Some),
    ]
}

fn authorization() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..60).prop_map(|b| {
            let mut v = b"Basic ".to_vec();
            v.extend(b);
            Some(v)
        }),
        "[A-Za-z0-9+/=_:-]{0,40}".prop_map(|s| Some(format!("Basic {s}").into_bytes())),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[a-z_%&=+0-9A-F]{0,200}".prop_map(String::into_bytes),
        "[{}\\[\\]\",:a-z0-9 ]{0,200}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn token_parsers_never_panic(ct in content_type(), auth in authorization(), body in body()) {
        let _ = parse_token_request(ct.as_deref(), auth.as_deref(), &body);
        let _ = parse_introspection_request(ct.as_deref(), auth.as_deref(), &body);
    }

    #[test]
    fn form_bodies_round_trip_or_fail_cleanly(id in "[ -~]{1,20}", secret in "[ -~]{1,20}") {
        let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            enc(&id), enc(&secret)
        );
        let req = parse_token_request(
            Some(b"application/x-www-form-urlencoded"), None, body.as_bytes()
        );
        match req {
            Ok(r) => {
                prop_assert_eq!(r.client.client_id, id);
                prop_assert_eq!(r.client.client_secret.expose(), secret.as_bytes());
            }
            // Any printable id and secret survives percent-encoding.
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    #[test]
    fn helpers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), name in "[a-z_-]{0,10}") {
        let _ = BasicCredentials::decode(&bytes);
        let _ = percent_decode(&bytes, true);
        let _ = query_param(&bytes, &name);
        let _ = cookie([bytes.as_slice()], &name);
        let req = SimpleRequest::new()
            .with_header("Authorization", bytes.clone())
            .with_header("Otoroshi-Authorization", bytes.clone())
            .with_header("Cookie", bytes.clone())
            .with_query(&String::from_utf8_lossy(&bytes));
        let ex = Extractors::default();
        let _ = extract(&req, &ex);
    }
}

#[test]
fn oversized_bodies_are_refused() {
    let body = vec![b'a'; MAX_BODY_LEN + 1];
    let err = parse_token_request(Some(b"application/json"), None, &body).unwrap_err();
    assert_eq!(err.status(), 413);
}
