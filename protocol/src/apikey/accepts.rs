//! What a route's API-key extractors read, told to a client whose credential the route did not
//! find: [`Accepts`] (the route's enabled extractors as a small set) and its messages;
//! `extract::missing` tells "nothing was sent" (Otoroshi's `No ApiKey provided`, kept word for word) from "a
//! credential was sent in a place of an extractor the route has switched off", such as
//! `Otoroshi-Client-Id` on a bearer-only route (`ApiKeyError::NotAccepted`, 401, whose message
//! lists what the route reads).
//!
//! Only places are looked at, never values: no message holds anything the client sent. The
//! texts depend on the set alone (the route's custom header names are not in them), so there
//! are 32 of them, built once per process; `missing` runs only when a request is refused.

use std::sync::OnceLock;

use super::places::Extractors;

/// Message when no credential was found.
pub const MSG_NONE_PROVIDED: &str = "No ApiKey provided";

const CLIENT_ID: u8 = 1;
const HEADERS: u8 = 1 << 1;
const BEARER: u8 = 1 << 2;
const BASIC: u8 = 1 << 3;
const CUSTOM: u8 = 1 << 4;
const ALL: usize = 1 << 5;

/// The extractors a route runs, as a set (`[routes.apikeys] extractors` and `custom_headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Accepts(u8);

impl Accepts {
    /// The set of `ex`.
    pub fn of(ex: &Extractors) -> Self {
        let mut bits = 0;
        for (on, bit) in [
            (ex.client_id, CLIENT_ID),
            (ex.headers, HEADERS),
            (ex.bearer, BEARER),
            (ex.basic, BASIC),
            (ex.custom.is_some(), CUSTOM),
        ] {
            if on {
                bits |= bit;
            }
        }
        Accepts(bits)
    }

    /// The `Otoroshi-Error` message: `Credential not read on this route; it accepts: …`, the
    /// places of each extractor in Otoroshi's order, separated by `; `. A fixed, header-safe
    /// text (no quote, backslash or line break).
    pub fn message(self) -> &'static str {
        &texts()[usize::from(self.0) % ALL].0
    }

    /// The JSON body `{"Otoroshi-Error":"<message>"}`.
    pub fn body(self) -> &'static str {
        &texts()[usize::from(self.0) % ALL].1
    }
}

/// What each extractor reads, in Otoroshi's order.
const PLACES: [(u8, &str); 5] = [
    (CLIENT_ID, "a client id in the x-api-key header, query parameter or cookie"),
    (HEADERS, "the Otoroshi-Client-Id and Otoroshi-Client-Secret headers"),
    (
        BEARER,
        "a bearer token in the Otoroshi-Token header, Authorization: Bearer, the bearer_auth query parameter or the access_token cookie",
    ),
    (
        BASIC,
        "Basic credentials in the Otoroshi-Authorization header, Authorization: Basic or the basic_auth query parameter",
    ),
    (CUSTOM, "the route's own client id and secret headers"),
];

/// (message, body) for every set, indexed by its bits.
fn texts() -> &'static [(String, String)] {
    static TEXTS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    TEXTS.get_or_init(|| {
        (0..ALL)
            .map(|bits| {
                let places: Vec<&str> = PLACES
                    .iter()
                    .filter(|(bit, _)| bits & usize::from(*bit) != 0)
                    .map(|(_, text)| *text)
                    .collect();
                let message = if places.is_empty() {
                    MSG_NONE_PROVIDED.to_owned()
                } else {
                    format!(
                        "Credential not read on this route; it accepts: {}",
                        places.join("; ")
                    )
                };
                let body = format!("{{\"Otoroshi-Error\":\"{message}\"}}");
                (message, body)
            })
            .collect()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_only_route_names_what_it_reads() {
        let ex = Extractors::only(|e| e.bearer = true);
        let a = Accepts::of(&ex);
        assert_eq!(
            a.message(),
            "Credential not read on this route; it accepts: a bearer token in the Otoroshi-Token header, Authorization: Bearer, the bearer_auth query parameter or the access_token cookie"
        );
        let body: serde_json::Value = serde_json::from_str(a.body()).unwrap();
        assert_eq!(body["Otoroshi-Error"], a.message());
        let ex = Extractors::only(|e| {
            e.client_id = true;
            e.custom = Some(("x-c".into(), "x-s".into()));
        });
        assert_eq!(
            Accepts::of(&ex).message(),
            "Credential not read on this route; it accepts: a client id in the x-api-key header, query parameter or cookie; the route's own client id and secret headers"
        );
    }

    /// Every set has a header-safe message and a JSON body that parses back to it.
    #[test]
    fn every_text_is_header_safe_json() {
        for bits in 0..ALL {
            let a = Accepts(u8::try_from(bits).unwrap());
            let m = a.message();
            assert!(!m.contains(['"', '\\', '\r', '\n']), "{m}");
            let body: serde_json::Value = serde_json::from_str(a.body()).unwrap();
            assert_eq!(body["Otoroshi-Error"], m);
            // One place per extractor of the set.
            let listed = m
                .split_once("it accepts: ")
                .map_or(0, |(_, list)| list.matches("; ").count() + 1);
            assert_eq!(listed, bits.count_ones() as usize, "{m}");
        }
        assert_eq!(Accepts(0).message(), "No ApiKey provided");
    }
}
