//! The Redis side of the quota sync: the connection (plain or `rediss://` over rustls, with
//! credentials resolved from `${env.…}` / `${file:…}` references), the key layout and the one
//! pipelined round trip that pushes deltas and reads totals back.
//!
//! Owns the wire format. Keys follow Otoroshi's `KvApiKeyDataStore`:
//! `{key_prefix}:apikey:quotas:{second|daily|monthly|global}:{client_id}` (`second` is the
//! throttling window, `global` the total), values are integers written by `INCRBY`, and a
//! windowed key gets its expiry when it has none (Otoroshi sets it on first use), here the
//! absolute end of its window (`PEXPIREAT`): the end of the throttling window, of the UTC day,
//! of the UTC month; `global` never expires. One Lua script per batch of keys does the
//! `INCRBY`s and expiries atomically and returns the totals; every batch of an exchange goes
//! in one pipeline, so an exchange is one round trip whatever the number of keys.
//!
//! Runs on the sync thread only, with blocking sockets bounded by [`IO_TIMEOUT`] (a Redis that
//! never answers costs the sync thread a timeout, never a worker anything). Uses the `redis`
//! crate (RESP, AUTH, SELECT, TLS); no async runtime. Never logs or returns a credential.

use std::path::Path;
use std::time::Duration;

use torii_protocol::secret::resolve;

use super::sync_state::Push;
use crate::config::RedisSpec;
use crate::secure::keys::SystemSecrets;

/// Deadline of a connect, and of each read and write on the connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// Keys per script call (4 Redis keys each): bounds how long one call holds Redis.
pub const KEYS_PER_SCRIPT: usize = 64;

/// Pushes the deltas and returns the totals. KEYS: 4 per client id (second, daily, monthly,
/// global); ARGV: 7 per client id (4 deltas, then the 3 windows' ends in Unix ms).
pub const SCRIPT: &str = r"
local out = {}
for i = 0, #KEYS / 4 - 1 do
  for j = 1, 4 do
    local key = KEYS[i * 4 + j]
    local value = redis.call('INCRBY', key, ARGV[i * 7 + j])
    if j < 4 and redis.call('PTTL', key) == -1 then
      redis.call('PEXPIREAT', key, ARGV[i * 7 + 4 + j])
    end
    out[#out + 1] = value
  end
end
return out
";

/// The four Redis keys of `client_id`, in push order.
pub fn keys(prefix: &str, client_id: &str) -> [String; 4] {
    ["second", "daily", "monthly", "global"]
        .map(|kind| format!("{prefix}:apikey:quotas:{kind}:{client_id}"))
}

/// A connection to the store, reopened after any error.
pub struct RedisStore {
    client: redis::Client,
    conn: Option<redis::Connection>,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("connected", &self.conn.is_some())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisStore {
    /// Resolves the URL's secrets and prepares the client (no connection yet). Errors name the
    /// problem, never a credential.
    pub fn new(spec: &RedisSpec) -> Result<Self, String> {
        let url = resolve_url(spec.url.expose_raw())?;
        let client = match &spec.ca {
            Some(ca) => redis::Client::build_with_tls(
                url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(read_ca(ca)?),
                },
            ),
            None => redis::Client::open(url.as_str()),
        }
        .map_err(|e| format!("invalid Redis URL: {}", describe(&e)))?;
        Ok(Self {
            client,
            conn: None,
            prefix: spec.key_prefix.clone(),
        })
    }

    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Drops the connection (after an error; the next exchange reconnects).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Opens the connection (TCP, TLS, AUTH, SELECT), each step within [`IO_TIMEOUT`].
    pub fn connect(&mut self) -> Result<(), String> {
        let conn = self
            .client
            .get_connection_with_timeout(IO_TIMEOUT)
            .map_err(|e| format!("connect: {}", describe(&e)))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("connect: {}", describe(&e)))?;
        self.conn = Some(conn);
        Ok(())
    }

    /// One round trip: for each `(client_id, push)`, the `INCRBY`s and expiries, and the four
    /// totals after them, in the same order. With nothing to push it sends a `PING` (so that
    /// the store's health is known all the same). Any error (IO, timeout, a reply that is not
    /// what the script returns) drops the connection.
    pub fn exchange(&mut self, batch: &[(&str, Push)]) -> Result<Vec<[i64; 4]>, String> {
        let Some(conn) = self.conn.as_mut() else {
            return Err("not connected".to_owned());
        };
        let result = if batch.is_empty() {
            redis::cmd("PING")
                .query::<String>(conn)
                .map_err(|e| describe(&e))
                .and_then(|pong| {
                    if pong == "PONG" {
                        Ok(Vec::new())
                    } else {
                        Err("unexpected PING answer".to_owned())
                    }
                })
        } else {
            let mut pipe = redis::pipe();
            for chunk in batch.chunks(KEYS_PER_SCRIPT) {
                let cmd = pipe.cmd("EVAL").arg(SCRIPT).arg(chunk.len() * 4);
                for (id, _) in chunk {
                    for k in keys(&self.prefix, id) {
                        cmd.arg(k);
                    }
                }
                for (_, push) in chunk {
                    cmd.arg(&push.deltas[..]).arg(&push.expire_at_ms[..]);
                }
            }
            pipe.query::<Vec<Vec<i64>>>(conn)
                .map_err(|e| describe(&e))
                .and_then(|replies| totals(batch.len(), replies))
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

/// Flattens the script replies into four totals per client id; any other shape is an error.
fn totals(expected: usize, replies: Vec<Vec<i64>>) -> Result<Vec<[i64; 4]>, String> {
    let flat: Vec<i64> = replies.into_iter().flatten().collect();
    if flat.len() != expected * 4 {
        return Err(format!(
            "unexpected reply: {} values for {expected} keys",
            flat.len()
        ));
    }
    Ok(flat
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect())
}

/// An error in words, without the URL (which may hold credentials).
fn describe(e: &redis::RedisError) -> String {
    let text = e.to_string();
    if text.contains("redis://") || text.contains("rediss://") {
        format!("{:?}", e.kind())
    } else {
        text
    }
}

fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("quotas.redis_ca: cannot read {}: {e}", path.display()))
}

/// The URL with each `${env.…}` / `${file:…}` reference replaced by its value, percent-encoded
/// (RFC 3986 §3.2.1: a password may hold `@`, `:` or `/`).
pub fn resolve_url(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        let len = rest[start..]
            .find('}')
            .ok_or_else(|| "quotas.redis: unclosed \"${\"".to_owned())?;
        out.push_str(&rest[..start]);
        let value = resolve(&rest[start..start + len + 1], &SystemSecrets)
            .map_err(|e| format!("quotas.redis: {e}"))?;
        percent_encode(&value, &mut out);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn percent_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_is_otoroshis() {
        assert_eq!(
            keys("otoroshi", "my-id"),
            [
                "otoroshi:apikey:quotas:second:my-id",
                "otoroshi:apikey:quotas:daily:my-id",
                "otoroshi:apikey:quotas:monthly:my-id",
                "otoroshi:apikey:quotas:global:my-id",
            ]
        );
    }

    #[test]
    fn secrets_are_percent_encoded_into_the_url() {
        let mut out = String::new();
        percent_encode(b"p@ss:/w rd~", &mut out);
        assert_eq!(out, "p%40ss%3A%2Fw%20rd~");
        assert_eq!(resolve_url("redis://h:1/0"), Ok("redis://h:1/0".to_owned()));
        assert!(resolve_url("redis://u:${env.TORII_TEST_SURELY_UNSET_VAR}@h").is_err());
        assert!(resolve_url("redis://u:${env.X@h").is_err());
    }

    #[test]
    fn replies_of_the_wrong_shape_are_errors() {
        assert_eq!(
            totals(2, vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]]),
            Ok(vec![[1, 2, 3, 4], [5, 6, 7, 8]])
        );
        assert!(totals(2, vec![vec![1, 2, 3, 4]]).is_err());
        assert!(totals(1, vec![vec![1, 2, 3]]).is_err());
    }
}
