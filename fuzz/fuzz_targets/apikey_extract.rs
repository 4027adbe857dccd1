//! API-key extraction from a request head: the input is parsed by the engine's head parser
//! (as on the request path), then every extractor runs over it. Properties: no panic; the
//! credential found comes from a place listed in the carriers and from an enabled extractor;
//! every carrier is really present in the request; and once every carrier is wiped (what
//! `wipe_credentials` relies on), running the extractors again finds nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torii_engine::http1::{parse_request_head, HeadLimits};
use torii_fuzz::split_selector;
use torii_protocol::apikey::{
    extract, percent_decode, Carrier, ExtractorKind, Extractors, RequestView, SimpleRequest,
};

fn carried(req: &SimpleRequest, c: &Carrier<'_>) -> bool {
    match c {
        Carrier::Header(n) => req.header(n.as_bytes()).is_some(),
        Carrier::Query(n) => req.query_param(n).is_some(),
        Carrier::Cookie(n) => req.cookie(n).is_some(),
    }
}

/// Removes every place named by `carriers`: all headers of that name, all query parameters of
/// that (decoded) name, and the whole Cookie header for a cookie.
fn wipe(req: &mut SimpleRequest, carriers: &[Carrier<'_>]) {
    for c in carriers {
        match c {
            Carrier::Header(n) => req.headers.retain(|(h, _)| !h.eq_ignore_ascii_case(n)),
            Carrier::Cookie(_) => req.headers.retain(|(h, _)| !h.eq_ignore_ascii_case("cookie")),
            Carrier::Query(n) => {
                let kept: Vec<&[u8]> = req
                    .query
                    .split(|&b| b == b'&')
                    .filter(|pair| {
                        let k = pair.split(|&b| b == b'=').next().unwrap_or_default();
                        percent_decode(k, true).as_ref() != n.as_bytes()
                    })
                    .collect();
                req.query = kept.join(&b'&');
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (sel, buf) = split_selector(data);
    let mut headers = Vec::new();
    let Ok(Some(head)) = parse_request_head(buf, &HeadLimits::default(), &mut headers) else {
        return;
    };
    let mut req = SimpleRequest::new();
    for h in &headers {
        let name = String::from_utf8_lossy(h.name.get(buf)).into_owned();
        req.headers.push((name, h.value.get(buf).to_vec()));
    }
    req.query = head.query.map(|q| q.get(buf).to_vec()).unwrap_or_default();
    let ex = Extractors {
        client_id: sel & 1 != 0,
        headers: sel & 2 != 0,
        bearer: sel & 4 != 0,
        basic: sel & 8 != 0,
        custom: (sel & 16 != 0).then(|| ("X-My-Id".to_owned(), "X-My-Secret".to_owned())),
    };
    let original = req.clone();
    let ext = extract(&original, &ex);
    for c in &ext.carriers {
        assert!(carried(&original, c), "carrier {c:?} not in the request");
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
    wipe(&mut req, &ext.carriers);
    let after = extract(&req, &ex);
    assert!(after.found.is_none(), "a credential survives the wipe");
    assert!(after.carriers.is_empty(), "a carrier survives the wipe: {:?}", after.carriers);
});

