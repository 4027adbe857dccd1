//! One access-log line: JSON built byte by byte into a reused buffer.
//!
//! Owns the line's fields and their redaction rules: the path is written without its query
//! string (which may carry `access_token`, `bearer_auth`, `apikey`…), no header value is ever
//! written (no `Authorization`, no `Otoroshi-Client-Secret`, no cookie), the upstream is the
//! socket address of the endpoint the last try went to (never a configured URL, which could
//! hold user info; rendered on the stack by [`AddrText`]). Pure functions: no IO, no clock read
//! (the time is a parameter), no allocation beyond the output buffer's growth.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use torii_protocol::jws::write_u64;

use crate::metrics::RequestRecord;

/// Appends `s` as the inside of a JSON string. Control characters, quotes, backslashes and
/// every byte of 0x80 or more are escaped (`\u00XX`), so the line is valid JSON (and ASCII)
/// whatever bytes the client sent.
pub fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let plain = |b: &u8| (0x20..=0x7e).contains(b) && *b != b'"' && *b != b'\\';
    // Fast path: a run of bytes that need no escaping is copied at once.
    let clean = s.iter().take_while(|b| plain(b)).count();
    out.extend_from_slice(&s[..clean]);
    for &b in &s[clean..] {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
        }
    }
}

/// A socket address as text in a stack buffer: the access log's `upstream` without an
/// allocation per request. 64 bytes hold the longest form (`[v6%scope]:port`, 58 bytes).
#[derive(Clone, Copy)]
pub struct AddrText {
    buf: [u8; 64],
    len: u8,
}

impl AddrText {
    /// Renders `addr` (`127.0.0.1:9001`, `[::1]:9001`).
    pub fn new(addr: SocketAddr) -> Self {
        use std::io::Write as _;
        let mut buf = [0u8; 64];
        let mut rest = &mut buf[..];
        // Cannot fail: the longest address fits.
        let _ = write!(rest, "{addr}");
        let len = 64 - rest.len();
        Self {
            buf,
            len: len as u8,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Renders the fields known from the request head, before the proxy consumes it:
/// `"method":"…","host":"…","path":"…"` (the path cut at `?`). Called once per request when
/// the access log is on, into the connection's reused buffer.
pub fn capture_head(out: &mut Vec<u8>, method: &[u8], host: &[u8], target: &[u8]) {
    out.clear();
    let path = target
        .iter()
        .position(|&b| b == b'?')
        .map_or(target, |q| &target[..q]);
    out.extend_from_slice(b"\"method\":\"");
    push_escaped(out, method);
    out.extend_from_slice(b"\",\"host\":\"");
    push_escaped(out, host);
    out.extend_from_slice(b"\",\"path\":\"");
    push_escaped(out, path);
    out.push(b'"');
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends `n` as exactly `width` decimal digits (zero-padded; higher digits dropped).
fn push_fixed(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second (19 bytes).
fn render_second(secs: i64) -> [u8; 19] {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u64;
    let mut v = Vec::with_capacity(19);
    push_fixed(&mut v, y.clamp(0, 9999) as u64, 4);
    v.push(b'-');
    push_fixed(&mut v, u64::from(mo), 2);
    v.push(b'-');
    push_fixed(&mut v, u64::from(d), 2);
    v.push(b'T');
    push_fixed(&mut v, sod / 3600, 2);
    v.push(b':');
    push_fixed(&mut v, (sod / 60) % 60, 2);
    v.push(b':');
    push_fixed(&mut v, sod % 60, 2);
    let mut a = [0u8; 19];
    a.copy_from_slice(&v);
    a
}

thread_local! {
    /// The last second rendered on this (worker) thread: lines of the same second reuse it, so
    /// the calendar arithmetic runs once per second per worker, not per request.
    static SECOND: std::cell::Cell<(i64, [u8; 19])> =
        const { std::cell::Cell::new((i64::MIN, [0; 19])) };
}

/// Appends `t` as RFC 3339 UTC with milliseconds (`2025-01-31T12:00:00.123Z`).
pub fn push_time(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let text = SECOND.with(|c| {
        let (cached, text) = c.get();
        if cached == secs {
            text
        } else {
            let text = render_second(secs);
            c.set((secs, text));
            text
        }
    });
    out.extend_from_slice(&text);
    out.push(b'.');
    push_fixed(out, u64::from(since.subsec_millis()), 3);
    out.push(b'Z');
}

/// Appends a duration in milliseconds with three decimals (`1.234`).
fn push_ms(out: &mut Vec<u8>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    write_u64(out, us / 1000);
    out.push(b'.');
    push_fixed(out, us % 1000, 3);
}

/// What a line says besides the record and the captured head.
#[derive(Debug, Clone, Copy)]
pub struct LineContext<'a> {
    /// When the request ended.
    pub time: SystemTime,
    /// Time from the complete head to the end of the response.
    pub elapsed: Duration,
    /// The worker that served it.
    pub worker: usize,
    /// The client's IP address as text (rendered once per connection).
    pub client_ip: &'a [u8],
    /// The matched route's id.
    pub route: Option<&'a str>,
    /// The address of the endpoint the last upstream try went to, as text ([`AddrText`]).
    pub upstream: Option<&'a str>,
    /// What the WebSocket tunnel the request became did (its line is written when it closes).
    pub tunnel: Option<TunnelLine>,
}

/// The fields of a request that became a WebSocket tunnel.
#[derive(Debug, Clone, Copy)]
pub struct TunnelLine {
    /// From the `101` sent to the client to the tunnel's end.
    pub duration: Duration,
    /// Bytes tunnelled from the client to the backend.
    pub bytes_in: u64,
    /// Bytes tunnelled from the backend to the client.
    pub bytes_out: u64,
    /// Who ended it: `client`, `upstream`, `idle_timeout` or `drain`.
    pub closed_by: &'static str,
}

/// Appends one complete line (ending in `\n`) to `out`. Everything is copied or written
/// digit by digit: no formatting machinery, no allocation beyond the buffer's growth.
pub fn write_line(out: &mut Vec<u8>, ctx: &LineContext<'_>, rec: &RequestRecord, head: &[u8]) {
    out.extend_from_slice(b"{\"time\":\"");
    push_time(out, ctx.time);
    out.extend_from_slice(b"\",\"request_id\":\"");
    out.extend_from_slice(&rec.request_id);
    out.extend_from_slice(b"\",\"worker\":");
    write_u64(out, ctx.worker as u64);
    out.extend_from_slice(b",\"client\":\"");
    push_escaped(out, ctx.client_ip);
    out.extend_from_slice(b"\",");
    out.extend_from_slice(head);
    out.extend_from_slice(b",\"route\":");
    push_opt_str(out, ctx.route);
    out.extend_from_slice(b",\"status\":");
    write_u64(out, u64::from(rec.status));
    out.extend_from_slice(b",\"duration_ms\":");
    push_ms(out, ctx.elapsed);
    out.extend_from_slice(b",\"upstream\":");
    push_opt_str(out, ctx.upstream);
    out.extend_from_slice(b",\"upstream_ms\":");
    match rec.upstream {
        Some(d) => push_ms(out, d),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"bytes_in\":");
    write_u64(out, rec.bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    write_u64(out, rec.bytes_out);
    out.extend_from_slice(b",\"reason\":");
    push_opt_str(out, rec.reason);
    if let Some(t) = &ctx.tunnel {
        out.extend_from_slice(b",\"websocket_ms\":");
        push_ms(out, t.duration);
        out.extend_from_slice(b",\"websocket_bytes_in\":");
        write_u64(out, t.bytes_in);
        out.extend_from_slice(b",\"websocket_bytes_out\":");
        write_u64(out, t.bytes_out);
        out.extend_from_slice(b",\"closed_by\":\"");
        out.extend_from_slice(t.closed_by.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"proto\":\"");
    out.extend_from_slice(rec.protocol.label().as_bytes());
    out.extend_from_slice(b"\",\"attempts\":");
    write_u64(out, u64::from(rec.attempts));
    if let Some(code) = rec.grpc_status {
        out.extend_from_slice(b",\"grpc_status\":");
        write_u64(out, u64::from(code));
    }
    out.extend_from_slice(b"}\n");
}

/// Appends `"…"` (escaped) or `null`.
fn push_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(b'"');
            push_escaped(out, s.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        let mut out = Vec::new();
        push_time(&mut out, UNIX_EPOCH);
        assert_eq!(out, b"1970-01-01T00:00:00.000Z");
        out.clear();
        // 2024-02-29T23:59:59.5Z (a leap day).
        push_time(
            &mut out,
            UNIX_EPOCH + Duration::from_millis(1_709_251_199_500),
        );
        assert_eq!(String::from_utf8(out).unwrap(), "2024-02-29T23:59:59.500Z");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // The per-second cache: the same second with other milliseconds, then the next
        // second, then back (a clock step) are all rendered correctly.
        for (ms, want) in [
            (1_709_251_199_007, "2024-02-29T23:59:59.007Z"),
            (1_709_251_200_000, "2024-03-01T00:00:00.000Z"),
            (1_709_251_199_999, "2024-02-29T23:59:59.999Z"),
        ] {
            let mut out = Vec::new();
            push_time(&mut out, UNIX_EPOCH + Duration::from_millis(ms));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn milliseconds_keep_three_decimals() {
        for (us, want) in [
            (0, "0.000"),
            (7, "0.007"),
            (1_500, "1.500"),
            (12_345_678, "12345.678"),
        ] {
            let mut out = Vec::new();
            push_ms(&mut out, Duration::from_micros(us));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn addresses_render_on_the_stack() {
        for text in [
            "127.0.0.1:9001",
            "[::1]:80",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(AddrText::new(addr).as_str(), addr.to_string());
        }
    }

    #[test]
    fn head_drops_the_query_and_escapes() {
        let mut out = Vec::new();
        capture_head(&mut out, b"GET", b"a\"b", b"/p\xff\x01?access_token=SECRET");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "\"method\":\"GET\",\"host\":\"a\\\"b\",\"path\":\"/p\\u00ff\\u0001\""
        );
    }

    #[test]
    fn a_line_is_valid_json() {
        let mut head = Vec::new();
        capture_head(&mut head, b"POST", b"api.oto.tools", b"/x?y=1");
        let mut rec = RequestRecord::default();
        rec.reset(120);
        rec.answered(201, 80);
        rec.bytes_out += 20;
        rec.upstream = Some(Duration::from_micros(1_500));
        rec.attempts = 2;
        let ctx = LineContext {
            time: UNIX_EPOCH + Duration::from_secs(86_400),
            elapsed: Duration::from_micros(2_042),
            worker: 3,
            client_ip: b"10.0.0.7",
            route: Some("svc"),
            upstream: Some("127.0.0.1:9001"),
            tunnel: None,
        };
        let mut out = Vec::new();
        write_line(&mut out, &ctx, &rec, &head);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["time"], "1970-01-02T00:00:00.000Z");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/x");
        assert_eq!(v["route"], "svc");
        assert_eq!(v["status"], 201);
        assert_eq!(v["duration_ms"], 2.042);
        assert_eq!(v["upstream_ms"], 1.5);
        assert_eq!(v["upstream"], "127.0.0.1:9001");
        assert_eq!(v["client"], "10.0.0.7");
        assert_eq!(v["bytes_in"], 120);
        assert_eq!(v["bytes_out"], 100);
        assert_eq!(v["worker"], 3);
        assert_eq!(v["request_id"].as_str().unwrap().len(), 36);
        assert_eq!(v["reason"], serde_json::Value::Null);
        assert_eq!(v["attempts"], 2);
        assert!(
            out.ends_with(b",\"proto\":\"http/1.1\",\"attempts\":2}\n"),
            "the newest field comes last"
        );
        rec.reason = Some("challenge.missing_header");
        out.clear();
        write_line(&mut out, &ctx, &rec, &head);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["reason"], "challenge.missing_header");
        assert!(
            v.get("closed_by").is_none(),
            "tunnel fields only on tunnel lines"
        );
        assert!(v.get("grpc_status").is_none(), "only on gRPC calls' lines");
        rec.grpc_status = Some(14);
        out.clear();
        write_line(&mut out, &ctx, &rec, &head);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["grpc_status"], 14);
        assert!(out.ends_with(b",\"attempts\":2,\"grpc_status\":14}\n"));
        rec.grpc_status = None;
        let tunnel = LineContext {
            tunnel: Some(TunnelLine {
                duration: Duration::from_millis(61_500),
                bytes_in: 12,
                bytes_out: 1_048_600,
                closed_by: "idle_timeout",
            }),
            ..ctx
        };
        rec.reason = None;
        rec.answered(101, 0);
        out.clear();
        write_line(&mut out, &tunnel, &rec, &head);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["status"], 101);
        assert_eq!(v["websocket_ms"], 61_500.0);
        assert_eq!(v["websocket_bytes_in"], 12);
        assert_eq!(v["websocket_bytes_out"], 1_048_600);
        assert_eq!(v["closed_by"], "idle_timeout");
    }
}
