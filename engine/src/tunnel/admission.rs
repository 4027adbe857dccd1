//! Why an open WebSocket tunnel may go on: the facts of its admission, checked again against
//! every snapshot the worker loads while the tunnel is open.
//!
//! A tunnel is admitted once, on its upgrade request, by the phases (route, API key or bearer
//! token, external JWT). What a reload takes away must be taken from open tunnels too, or a
//! disabled key keeps a tunnel carrying frames for as long as the client keeps it busy. Owns
//! [`Admission`] (the route's id, the admitting key's client id, whether a JWT was checked —
//! owned, so the tunnel holds no snapshot) and [`Withdrawn`] (why it no longer holds, a stable
//! label for logs). Pure: the snapshot and the time are parameters; `tunnel::run` waits.

use crate::snapshot::{Route, Snapshot};

/// What admitted a tunnel.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The route's id.
    route: Box<str>,
    /// The client id of the API key (or bearer token's key) that authenticated the upgrade.
    client_id: Option<Box<str>>,
    /// The route checked an external JWT on the upgrade.
    jwt: bool,
}

/// Why a tunnel's admission no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawn {
    /// No route has the tunnel's route id any more.
    RouteRemoved,
    /// The route no longer carries WebSocket upgrades (`websocket = false`).
    WebSocketDisabled,
    /// The route now checks API keys and the tunnel was opened without one.
    KeyRequired,
    /// The route now checks an external JWT and the tunnel was opened without one.
    JwtRequired,
    /// The admitting key is no longer configured.
    KeyRemoved,
    /// The admitting key is disabled.
    KeyDisabled,
    /// The admitting key's `valid_until` has passed.
    KeyExpired,
    /// The admitting key is no longer authorised on the route.
    KeyNotAllowed,
}

impl Withdrawn {
    /// A stable label for logs and the close frame's reason.
    pub fn label(self) -> &'static str {
        match self {
            Withdrawn::RouteRemoved => "route_removed",
            Withdrawn::WebSocketDisabled => "websocket_disabled",
            Withdrawn::KeyRequired => "key_required",
            Withdrawn::JwtRequired => "jwt_required",
            Withdrawn::KeyRemoved => "key_removed",
            Withdrawn::KeyDisabled => "key_disabled",
            Withdrawn::KeyExpired => "key_expired",
            Withdrawn::KeyNotAllowed => "key_not_allowed",
        }
    }
}

impl Admission {
    /// The admission of an upgrade on `route`, authenticated by the key `client_id` if any.
    pub fn new(route: &Route, client_id: Option<&str>) -> Self {
        Admission {
            route: route.id.as_str().into(),
            client_id: client_id.map(Into::into),
            jwt: route.jwt.is_some(),
        }
    }

    /// The route's id.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Whether the admission still holds under `snap` at `now` (Unix seconds): the route
    /// exists and carries WebSocket; if it checks API keys, the tunnel's key exists, is enabled,
    /// has not expired and is authorised on it; if it checks a JWT, one was checked. Cost: a
    /// scan of the routes and a map lookup.
    pub fn check(&self, snap: &Snapshot, now: u64) -> Result<(), Withdrawn> {
        let route = snap
            .routes
            .iter()
            .find(|r| *r.id == *self.route)
            .ok_or(Withdrawn::RouteRemoved)?;
        if !route.websocket {
            return Err(Withdrawn::WebSocketDisabled);
        }
        if route.jwt.is_some() && !self.jwt {
            return Err(Withdrawn::JwtRequired);
        }
        if route.apikeys.is_none() {
            return Ok(());
        }
        let id = self.client_id.as_deref().ok_or(Withdrawn::KeyRequired)?;
        let key = snap.auth.store.get(id).ok_or(Withdrawn::KeyRemoved)?.key();
        if !key.enabled {
            return Err(Withdrawn::KeyDisabled);
        }
        if key.is_expired(now) {
            return Err(Withdrawn::KeyExpired);
        }
        if !key.allows_route(&route.id) {
            return Err(Withdrawn::KeyNotAllowed);
        }
        Ok(())
    }

    /// When the admitting key expires under `snap` (its `valid_until`, Unix seconds), so the
    /// tunnel can be checked again then.
    pub fn key_expiry(&self, snap: &Snapshot) -> Option<u64> {
        let id = self.client_id.as_deref()?;
        snap.auth.store.get(id)?.key().valid_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use std::path::Path;

    const KEYS: &str = r#"
[[apikeys]]
client_id = "alice"
client_secret = "alice-secret"
routes = ["ws"]
valid_until = "2100-01-01T00:00:00Z"
"#;

    fn snapshot(route_extra: &str, keys: &str) -> Snapshot {
        let text = format!(
            "[gateway]\nworkers = 1\nhttp = [\"127.0.0.1:0\"]\n\n\
             [[routes]]\nid = \"other\"\ndomains = [\"other.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n\n\
             [[routes]]\nid = \"ws\"\ndomains = [\"ws.test\"]\ntargets = [\"http://127.0.0.1:9\"]\n\
             {route_extra}\n{keys}"
        );
        let cfg = config::load_str(&text, Path::new("."))
            .unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"));
        Snapshot::build(cfg, 1).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn admitted_by_alice() -> Admission {
        Admission {
            route: "ws".into(),
            client_id: Some("alice".into()),
            jwt: false,
        }
    }

    #[test]
    fn what_a_reload_takes_away_is_withdrawn() {
        let now = 1_800_000_000;
        let keyed = "[routes.apikeys]\n";
        let a = admitted_by_alice();
        assert_eq!(a.check(&snapshot(keyed, KEYS), now), Ok(()));
        let cases = [
            (
                snapshot(keyed, &KEYS.replace("\"ws\"", "\"other\"")),
                Withdrawn::KeyNotAllowed,
            ),
            (
                snapshot(
                    keyed,
                    &KEYS.replace("routes = [", "enabled = false\nroutes = ["),
                ),
                Withdrawn::KeyDisabled,
            ),
            (
                snapshot(keyed, &KEYS.replace("2100", "2020")),
                Withdrawn::KeyExpired,
            ),
            (snapshot(keyed, ""), Withdrawn::KeyRemoved),
            (
                snapshot(&format!("websocket = false\n{keyed}"), KEYS),
                Withdrawn::WebSocketDisabled,
            ),
        ];
        for (snap, why) in &cases {
            assert_eq!(a.check(snap, now), Err(*why), "{}", why.label());
        }
        let gone = Admission {
            route: "removed".into(),
            ..admitted_by_alice()
        };
        assert_eq!(
            gone.check(&snapshot(keyed, KEYS), now),
            Err(Withdrawn::RouteRemoved)
        );
    }

    #[test]
    fn a_route_that_starts_checking_what_the_tunnel_lacked_withdraws_it() {
        let now = 1_800_000_000;
        let open = Admission {
            route: "ws".into(),
            client_id: None,
            jwt: false,
        };
        assert_eq!(open.check(&snapshot("", ""), now), Ok(()));
        assert_eq!(
            open.check(&snapshot("[routes.apikeys]\n", KEYS), now),
            Err(Withdrawn::KeyRequired)
        );
        let jwt = "[routes.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n";
        assert_eq!(
            open.check(&snapshot(jwt, ""), now),
            Err(Withdrawn::JwtRequired)
        );
        // A keyed tunnel on a route that dropped its key check goes on.
        assert_eq!(admitted_by_alice().check(&snapshot("", KEYS), now), Ok(()));
    }

    #[test]
    fn the_key_expiry_is_known_for_a_timer() {
        let snap = snapshot("[routes.apikeys]\n", KEYS);
        let expiry = admitted_by_alice().key_expiry(&snap);
        assert_eq!(expiry, Some(4_102_444_800));
        let open = Admission {
            route: "ws".into(),
            client_id: None,
            jwt: false,
        };
        assert_eq!(open.key_expiry(&snap), None);
    }
}
