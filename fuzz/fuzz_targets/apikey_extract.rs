//! API-key extraction and the credential wipe, through the request path's own code: the input
//! is parsed by the engine's head parser, the extractors run over the engine's `HeadView`, the
//! engine's `auth::check` admits or refuses it against a fixed key store, and an admitted
//! request is rendered as the proxy renders it, with the engine's wipe functions
//! (`auth::wipe::drops_header`, `rewrite_request_line`, `write_cookie_lines`) — nothing here
//! re-implements the wipe. Properties:
//! * no panic; every carrier the extraction names is really in the request; a credential found
//!   comes from a carrier and from an enabled extractor;
//! * an admitted request's forwarded head parses, with the same method and path;
//! * running the extractors over it finds no credential and no carrier (what
//!   `wipe_credentials` promises);
//! * the wipe removes nothing else: every header line the unwiped rendering keeps, other than
//!   a header carrier or a `Cookie` line, is kept, in order; the query's pairs are a
//!   subsequence of the original's; every forwarded cookie was sent, and none is a carrier.
//!
//! The first input byte selects the extractors (bits: client id, headers, bearer, basic,
//! custom). Keys: `id1` (client id alone allowed), `id`/`secret`, `c`/`d`, all on route `r`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii_engine::auth::check::{check, HeadView, Wipe};
use torii_engine::auth::{wipe, AuthState, RouteApiKeys};
use torii_engine::http1::{
    copy_request_head, parse_request_head, BodyFraming, HeadLimits, HeaderField, HeaderKind,
    RequestHead,
};
use torii_fuzz::split_selector;
use torii_protocol::jwt_verifier::RequiredClaims;
use torii_protocol::apikey::{
    extract, ApiKey, ApiKeyStore, Carrier, ExtractorKind, Extractors, RequestView,
};

fn store() -> AuthState {
    let key = |id: &str, secret: &str, id_only: bool| {
        let mut k = ApiKey::new(id, secret, id);
        k.routes = vec!["r".into()];
        k.allow_client_id_only = id_only;
        k
    };
    AuthState {
        store: ApiKeyStore::new(vec![
            key("id1", "id1-secret", true),
            key("id", "secret", false),
            key("c", "d", false),
        ])
        .unwrap_or_default(),
        ..AuthState::default()
    }
}

fn carried(view: &HeadView<'_>, c: &Carrier<'_>) -> bool {
    match c {
        Carrier::Header(n) => view.header(n.as_bytes()).is_present(),
        Carrier::Query(n) => view.query_param(n).is_present(),
        Carrier::Cookie(n) => view.cookie(n).is_present(),
    }
}

/// Renders the upstream head as the proxy does (client lines minus `Host`/`Expect` and what
/// `wipe` drops, the query and cookies rewritten), with its own `Host` and framing lines.
fn render(buf: &[u8], head: &RequestHead, headers: &[HeaderField], w: &Wipe<'_>) -> Vec<u8> {
    let mut up = Vec::new();
    let path = head.path.get(buf);
    copy_request_head(buf, head, path, headers, false, &mut up, |f| {
        matches!(f.kind, HeaderKind::Host | HeaderKind::Expect)
            || wipe::drops_header(w, f.name.get(buf))
    });
    if !w.is_empty() {
        wipe::rewrite_request_line(w, buf, head, path.len(), &mut up, &mut Vec::new());
        if w.touches_cookies() {
            wipe::write_cookie_lines(w, buf, headers, &mut up);
        }
    }
    up.extend_from_slice(b"host: upstream.test\r\n");
    if matches!(head.body, BodyFraming::Chunked) {
        up.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    up.extend_from_slice(b"\r\n");
    up
}

/// The header lines of a rendered head (after the request line), without the final CRLF.
fn lines(rendered: &[u8]) -> Vec<&[u8]> {
    let body = rendered.strip_suffix(b"\r\n\r\n").unwrap_or(rendered);
    body.split(|&b| b == b'\n').skip(1).collect()
}

fn name_of(line: &[u8]) -> &[u8] {
    line.split(|&b| b == b':').next().unwrap_or_default()
}

/// Trimmed `name=value` cookies of every Cookie line of a rendered head.
fn cookies(rendered: &[u8]) -> Vec<Vec<u8>> {
    lines(rendered)
        .into_iter()
        .filter(|l| name_of(l).eq_ignore_ascii_case(b"cookie"))
        .flat_map(|l| {
            let value = &l[l.iter().position(|&b| b == b':').unwrap_or(0) + 1..];
            value
                .split(|&b| b == b';')
                .map(|c| c.trim_ascii().to_vec())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn query_pairs(q: &[u8]) -> Vec<&[u8]> {
    q.split(|&b| b == b'&').filter(|p| !p.is_empty()).collect()
}

/// True when `small` is a subsequence of `big`.
fn subsequence<T: PartialEq>(small: &[T], big: &[T]) -> bool {
    let mut it = big.iter();
    small.iter().all(|x| it.any(|y| y == x))
}

fuzz_target!(|data: &[u8]| {
    let (sel, buf) = split_selector(data);
    let mut headers = Vec::new();
    let Ok(Some(head)) = parse_request_head(buf, &HeadLimits::default(), &mut headers) else {
        return;
    };
    let ex = Extractors {
        client_id: sel & 1 != 0,
        headers: sel & 2 != 0,
        bearer: sel & 4 != 0,
        basic: sel & 8 != 0,
        custom: (sel & 16 != 0).then(|| ("X-My-Id".to_owned(), "X-My-Secret".to_owned())),
    };
    let view = HeadView::new(buf, &headers, &head);
    let ext = extract(&view, &ex);
    for c in &ext.carriers {
        assert!(carried(&view, c), "carrier {c:?} not in the request");
    }
    if let Some(d) = &ext.duplicate {
        assert!(ext.carriers.contains(d), "a repeated place outside the carriers");
        assert!(carried(&view, d), "repeated place {d:?} not in the request");
    }
    if let Some(f) = &ext.found {
        assert!(ext.carriers.contains(&f.location), "found outside the carriers");
        let enabled = match f.extractor {
            ExtractorKind::ClientId => ex.client_id,
            ExtractorKind::Headers => ex.headers,
            ExtractorKind::Bearer => ex.bearer,
            ExtractorKind::Basic => ex.basic,
            ExtractorKind::Custom => ex.custom.is_some(),
        };
        assert!(enabled, "credential from a disabled extractor");
    }

    let auth = store();
    let route = RouteApiKeys {
        extractors: ex.clone(),
        wipe_credentials: true,
        required: RequiredClaims::default(),
    };
    let checked = check(&auth, &route, "r", &view, 0, None);
    if ext.duplicate.is_some() {
        assert!(
            matches!(checked, Err(torii_protocol::apikey::ApiKeyError::Duplicate)),
            "a repeated credential place was admitted: {checked:?}"
        );
    }
    let Ok(admitted) = checked else {
        return;
    };
    let wiped = render(buf, &head, &headers, &admitted.wipe);
    let plain = render(buf, &head, &headers, &Wipe::default());

    // The forwarded head parses (limits raised: the rendering adds Host and framing lines).
    let limits = HeadLimits {
        max_head_bytes: usize::MAX,
        max_headers: 256,
        max_request_line_bytes: usize::MAX,
    };
    let mut fwd_headers = Vec::new();
    let fwd = match parse_request_head(&wiped, &limits, &mut fwd_headers) {
        Ok(Some(h)) => h,
        other => panic!(
            "the forwarded head does not parse ({other:?}): {:?}",
            String::from_utf8_lossy(&wiped)
        ),
    };
    assert_eq!(fwd.method, head.method);
    assert_eq!(fwd.path.get(&wiped), head.path.get(buf), "path changed");

    // Nothing left to extract.
    let fwd_view = HeadView::new(&wiped, &fwd_headers, &fwd);
    let after = extract(&fwd_view, &ex);
    assert!(after.found.is_none(), "a credential survives the wipe");
    assert!(
        after.carriers.is_empty(),
        "a carrier survives the wipe: {:?}",
        after.carriers
    );

    // Nothing else removed or changed.
    let header_carrier = |name: &[u8]| {
        ext.carriers
            .iter()
            .any(|c| matches!(c, Carrier::Header(n) if n.as_bytes().eq_ignore_ascii_case(name)))
    };
    let kept = |rendered: &[u8]| -> Vec<Vec<u8>> {
        lines(rendered)
            .into_iter()
            .filter(|l| {
                let n = name_of(l);
                !n.eq_ignore_ascii_case(b"cookie") && !header_carrier(n)
            })
            .map(<[u8]>::to_vec)
            .collect()
    };
    assert_eq!(kept(&wiped), kept(&plain), "the wipe removed a non-carrier line");
    let q = |h: &RequestHead, b: &[u8]| h.query.map(|q| q.get(b).to_vec()).unwrap_or_default();
    let (q0, q1) = (q(&head, buf), q(&fwd, &wiped));
    assert!(
        subsequence(&query_pairs(&q1), &query_pairs(&q0)),
        "query pairs added or changed"
    );
    let (sent, forwarded) = (cookies(&plain), cookies(&wiped));
    for c in &forwarded {
        assert!(sent.contains(c), "cookie {:?} was not sent", String::from_utf8_lossy(c));
        let name = c.split(|&b| b == b'=').next().unwrap_or_default().trim_ascii();
        let wiped_name = ext
            .carriers
            .iter()
            .any(|k| matches!(k, Carrier::Cookie(n) if n.as_bytes() == name));
        assert!(!wiped_name, "carrier cookie {:?} forwarded", String::from_utf8_lossy(c));
    }
});
