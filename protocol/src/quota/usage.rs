//! What one admission decision knows about a key's limits: the usage of each limited window,
//! the refusal rule (which exhausted window refuses and for how long), the tightest limit for
//! the IETF `RateLimit-*` fields and the rendering of the headers sent back to the client.
//!
//! Owns Otoroshi's counting rules (a limit of N lets N calls through, the (N+1)-th
//! is refused) and the header values of Otoroshi's `SendOtoroshiHeadersBack`
//! (`Otoroshi-Daily-Calls-Remaining`, `Otoroshi-Monthly-Calls-Remaining`). Pure: counts and
//! reset delays are parameters; rendering appends to a caller's buffer without allocating
//! beyond its growth.

/// The body of the 429 answer, as Otoroshi writes it (its message `errors.too.much.requests`).
pub const MSG_TOO_MANY_REQUESTS: &str = "You performed too much requests";
/// Otoroshi's header with the calls left today (`otoroshi.headers.response.dailyquota`).
pub const DAILY_REMAINING_HEADER: &str = "Otoroshi-Daily-Calls-Remaining";
/// Otoroshi's header with the calls left this month (`otoroshi.headers.response.monthlyquota`).
pub const MONTHLY_REMAINING_HEADER: &str = "Otoroshi-Monthly-Calls-Remaining";
/// IETF `RateLimit-Limit` (draft-ietf-httpapi-ratelimit-headers, the three-field form).
pub const RATELIMIT_LIMIT_HEADER: &str = "RateLimit-Limit";
/// IETF `RateLimit-Remaining`.
pub const RATELIMIT_REMAINING_HEADER: &str = "RateLimit-Remaining";
/// IETF `RateLimit-Reset`: seconds until the window resets.
pub const RATELIMIT_RESET_HEADER: &str = "RateLimit-Reset";

/// Which limit a count or a refusal concerns. Its [`QuotaKind::label`] is the `kind` label of
/// `torii_quota_rejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// The key's `throttling_quota` (calls per `quotas.window`).
    Window,
    /// The key's `daily_quota` (calls per UTC day).
    Daily,
    /// The key's `monthly_quota` (calls per UTC month).
    Monthly,
    /// A route's `rate_limit.per_ip` (calls per `quotas.window` per client address).
    Ip,
}

impl QuotaKind {
    /// Every kind, in metric order.
    pub const ALL: [QuotaKind; 4] = [
        QuotaKind::Window,
        QuotaKind::Daily,
        QuotaKind::Monthly,
        QuotaKind::Ip,
    ];

    /// `window`, `daily`, `monthly` or `ip`.
    pub fn label(self) -> &'static str {
        match self {
            QuotaKind::Window => "window",
            QuotaKind::Daily => "daily",
            QuotaKind::Monthly => "monthly",
            QuotaKind::Ip => "ip",
        }
    }

    /// Position in [`QuotaKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The usage of one limited window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The limit (calls per window).
    pub limit: u64,
    /// Calls counted in the current window (including this one once it is admitted).
    pub used: u64,
    /// Whole seconds until the window resets (at least 1).
    pub reset_secs: u64,
}

impl Usage {
    /// Calls left in the window (0 once the limit is reached or passed).
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// True when the next call must be refused: `used >= limit` (a limit of N admits N).
    pub fn is_exhausted(&self) -> bool {
        self.used >= self.limit
    }
}

/// A key's usage of its three limits; `None` for an unlimited window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaState {
    /// The throttling window.
    pub window: Option<Usage>,
    /// The UTC day.
    pub daily: Option<Usage>,
    /// The UTC month.
    pub monthly: Option<Usage>,
}

impl QuotaState {
    /// The limited windows with their kinds.
    pub fn iter(&self) -> impl Iterator<Item = (QuotaKind, Usage)> + '_ {
        [
            (QuotaKind::Window, self.window),
            (QuotaKind::Daily, self.daily),
            (QuotaKind::Monthly, self.monthly),
        ]
        .into_iter()
        .filter_map(|(k, u)| u.map(|u| (k, u)))
    }

    /// Whether the next call must be refused, and by which window: among the exhausted windows,
    /// the one that resets last (the call cannot pass before every exhausted window has reset,
    /// so its `Retry-After` is the longest wait). Ties go to the shorter window kind.
    pub fn refusal(&self) -> Option<(QuotaKind, u64)> {
        self.iter().filter(|(_, u)| u.is_exhausted()).fold(
            None,
            |best: Option<(QuotaKind, u64)>, (k, u)| match best {
                Some((_, secs)) if secs >= u.reset_secs => best,
                _ => Some((k, u.reset_secs)),
            },
        )
    }

    /// The tightest limit, reported in the `RateLimit-*` fields: the window with the fewest
    /// calls left; on a tie, the one that resets last (with nothing left in either, a client
    /// must wait for both). `None` when no window is limited.
    pub fn tightest(&self) -> Option<(QuotaKind, Usage)> {
        self.iter().fold(None, |best, (k, u)| match best {
            Some((_, b)) if tighter_or_equal(&b, &u) => best,
            _ => Some((k, u)),
        })
    }

    /// Appends the quota headers to `out`, one `Name: value\r\n` line each:
    /// `Otoroshi-Daily-Calls-Remaining` and `Otoroshi-Monthly-Calls-Remaining` for a limited day
    /// or month (Otoroshi sends them with its `SendOtoroshiHeadersBack` plugin), then
    /// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` for [`Self::tightest`].
    /// Nothing for an unlimited key. No allocation beyond `out`'s growth.
    pub fn write_headers(&self, out: &mut Vec<u8>) {
        if let Some(d) = self.daily {
            header(out, DAILY_REMAINING_HEADER, d.remaining());
        }
        if let Some(m) = self.monthly {
            header(out, MONTHLY_REMAINING_HEADER, m.remaining());
        }
        if let Some((_, t)) = self.tightest() {
            header(out, RATELIMIT_LIMIT_HEADER, t.limit);
            header(out, RATELIMIT_REMAINING_HEADER, t.remaining());
            header(out, RATELIMIT_RESET_HEADER, t.reset_secs);
        }
    }
}

/// True when `a` is at least as tight as `b`.
fn tighter_or_equal(a: &Usage, b: &Usage) -> bool {
    (a.remaining(), std::cmp::Reverse(a.reset_secs))
        <= (b.remaining(), std::cmp::Reverse(b.reset_secs))
}

/// Appends `name: value\r\n`.
pub fn header(out: &mut Vec<u8>, name: &str, value: u64) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    write_u64(out, value);
    out.extend_from_slice(b"\r\n");
}

/// "00" to "99": two digits per division when rendering numbers.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends the decimal digits of `v` (no allocation: a 20-byte stack buffer, two digits per
/// division).
pub fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(limit: u64, used: u64, reset_secs: u64) -> Option<Usage> {
        Some(Usage {
            limit,
            used,
            reset_secs,
        })
    }

    fn text(state: &QuotaState) -> String {
        let mut out = Vec::new();
        state.write_headers(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn a_limit_of_n_admits_n() {
        // As in Otoroshi: calls 1..=N pass, the (N+1)-th is refused.
        for n in [0u64, 1, 3, 10] {
            for used in 0..=n + 1 {
                let usage = Usage {
                    limit: n,
                    used,
                    reset_secs: 1,
                };
                assert_eq!(usage.is_exhausted(), used >= n, "limit {n}, used {used}");
            }
        }
        assert_eq!(u(3, 5, 1).map(|u| u.remaining()), Some(0));
    }

    #[test]
    fn refusal_names_the_window_that_resets_last() {
        let none = QuotaState::default();
        assert_eq!(none.refusal(), None);
        let s = QuotaState {
            window: u(10, 3, 7),
            daily: u(100, 100, 3_600),
            monthly: u(1_000, 200, 86_400),
        };
        assert_eq!(s.refusal(), Some((QuotaKind::Daily, 3_600)));
        let both = QuotaState {
            window: u(10, 10, 7),
            daily: u(100, 100, 3_600),
            monthly: None,
        };
        assert_eq!(both.refusal(), Some((QuotaKind::Daily, 3_600)));
        let window_only = QuotaState {
            window: u(10, 10, 7),
            daily: u(100, 99, 3_600),
            monthly: u(1_000, 999, 90_000),
        };
        assert_eq!(window_only.refusal(), Some((QuotaKind::Window, 7)));
        // Equal resets: the first (shorter) kind.
        let tie = QuotaState {
            window: u(1, 1, 5),
            daily: u(1, 1, 5),
            monthly: None,
        };
        assert_eq!(tie.refusal(), Some((QuotaKind::Window, 5)));
    }

    #[test]
    fn tightest_is_fewest_remaining_then_latest_reset() {
        let s = QuotaState {
            window: u(10, 2, 7),       // 8 left
            daily: u(100, 95, 3_600),  // 5 left
            monthly: u(1_000, 10, 10), // 990 left
        };
        assert_eq!(s.tightest().map(|t| t.0), Some(QuotaKind::Daily));
        let tie = QuotaState {
            window: u(10, 5, 7),      // 5 left, resets in 7 s
            daily: u(100, 95, 3_600), // 5 left, resets in 1 h
            monthly: None,
        };
        assert_eq!(tie.tightest().map(|t| t.0), Some(QuotaKind::Daily));
        let only_month = QuotaState {
            monthly: u(3, 1, 9),
            ..QuotaState::default()
        };
        assert_eq!(only_month.tightest().map(|t| t.0), Some(QuotaKind::Monthly));
        assert_eq!(QuotaState::default().tightest(), None);
    }

    #[test]
    fn headers_match_otoroshi_and_the_ietf_fields() {
        // Otoroshi's ApikeyQuotasTests: dailyQuota 10, after 2 calls the header says 8.
        let s = QuotaState {
            window: u(1, 1, 10),
            daily: u(10, 2, 3_600),
            monthly: u(10_000_000, 2, 86_400),
        };
        assert_eq!(
            text(&s),
            "Otoroshi-Daily-Calls-Remaining: 8\r\n\
             Otoroshi-Monthly-Calls-Remaining: 9999998\r\n\
             RateLimit-Limit: 1\r\n\
             RateLimit-Remaining: 0\r\n\
             RateLimit-Reset: 10\r\n"
        );
        // Unlimited day and month: only the RateLimit fields of the throttling window.
        let w = QuotaState {
            window: u(100, 1, 4),
            ..QuotaState::default()
        };
        assert_eq!(
            text(&w),
            "RateLimit-Limit: 100\r\nRateLimit-Remaining: 99\r\nRateLimit-Reset: 4\r\n"
        );
        assert_eq!(text(&QuotaState::default()), "");
    }

    #[test]
    fn numbers_render_exactly() {
        for v in [
            0u64,
            7,
            10,
            11,
            99,
            100,
            101,
            999,
            1_000,
            12_345,
            1 << 40,
            u64::MAX - 1,
            u64::MAX,
        ]
        .into_iter()
        .chain((0..2_000).map(|i| i * 7_919))
        {
            let mut out = Vec::new();
            write_u64(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
    }

    #[test]
    fn kinds_have_distinct_labels_in_index_order() {
        for (i, k) in QuotaKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        let labels: std::collections::HashSet<_> =
            QuotaKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels.len(), 4);
    }
}
