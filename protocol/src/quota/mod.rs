//! API-key quotas and per-client rate limits (docs/quotas.md): the pure counting rules.
//!
//! * [`calendar`]: the fixed windows — the throttling window (`quotas.window`, aligned on the
//!   epoch), the UTC day and the UTC month — and the date arithmetic behind them;
//! * [`usage`]: a key's usage of its limits, which window refuses a call and for how long
//!   (`Retry-After`), the tightest limit (`RateLimit-*`) and the headers sent back
//!   (`Otoroshi-Daily-Calls-Remaining`, `Otoroshi-Monthly-Calls-Remaining`).
//!
//! The counters themselves (shared atomics, the Redis synchronisation) live in the engine; this
//! module never reads a clock (time is `now_ms`, Unix milliseconds) and never counts.
//!
//! ```
//! use torii_protocol::quota::{utc_day, QuotaKind, QuotaState, Usage};
//!
//! let now_ms = 1_709_208_000_000; // 2024-02-29T12:00:00Z
//! let day = utc_day(now_ms);
//! // daily_quota = 3 and three calls counted: the fourth is refused until midnight UTC.
//! let state = QuotaState {
//!     daily: Some(Usage { limit: 3, used: 3, reset_secs: day.reset_secs(now_ms) }),
//!     ..QuotaState::default()
//! };
//! assert_eq!(state.refusal(), Some((QuotaKind::Daily, 43_200)));
//! ```

pub mod calendar;
pub mod usage;

pub use calendar::{
    civil_from_days, days_from_civil, days_in_month, is_leap_year, throttling_window, utc_day,
    utc_month, Window, MS_PER_DAY,
};
pub use usage::{
    header, write_u64, QuotaKind, QuotaState, Usage, DAILY_REMAINING_HEADER,
    MONTHLY_REMAINING_HEADER, MSG_TOO_MANY_REQUESTS, RATELIMIT_LIMIT_HEADER,
    RATELIMIT_REMAINING_HEADER, RATELIMIT_RESET_HEADER,
};
