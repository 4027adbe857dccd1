//! The streaming decoder of `Transfer-Encoding: chunked` bodies (RFC 9112 §7.1), strict on
//! everything request smuggling feeds on: chunk sizes (hex digits only, no prefix, capped),
//! extensions (bounded, no control bytes), CRLF after every line and after every chunk's data,
//! and a bounded, well-formed trailer section.
//!
//! Sans-IO: [`ChunkedDecoder::decode`] takes whatever bytes arrived — split at any byte — and
//! appends either the payload or a canonical re-chunked stream to the caller's buffer. It never
//! reads past the end of the message, so pipelined bytes stay with the caller.

/// Largest accepted chunk size (2^53): larger sizes are refused as [`ChunkedError::SizeOverflow`].
pub const MAX_CHUNK_SIZE: u64 = 1 << 53;
/// Most hex digits in a chunk size, leading zeros included.
const MAX_SIZE_DIGITS: u32 = 16;
/// Most bytes of chunk extensions on one chunk-size line (from the first `;` or blank to CR).
pub(crate) const MAX_EXTENSION_BYTES: usize = 256;
/// Most bytes of the trailer section (all trailer lines with their CRLF).
pub(crate) const MAX_TRAILER_BYTES: usize = 4096;

/// What [`ChunkedDecoder::decode`] appends to the output buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedOutput {
    /// Only the decoded data.
    Payload,
    /// A canonical chunked stream: `"{len:x}\r\n{data}\r\n"` per piece of data decoded, and
    /// `"0\r\n\r\n"` at the end; extensions and trailers are dropped.
    Rechunk,
}

/// How far one call to [`ChunkedDecoder::decode`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeProgress {
    /// Bytes of the input consumed; the rest (if any) was not looked at or belongs to the next
    /// message.
    pub consumed: usize,
    /// The last chunk and the trailer section have been consumed.
    pub done: bool,
}

/// Why a chunked body was refused. Final: the connection must not be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// Empty chunk size, a prefix (`0x`, `+`, `-`), a non-hex byte or blank before CRLF.
    #[error("invalid chunk size")]
    InvalidSize,
    /// Chunk size over [`MAX_CHUNK_SIZE`] or with too many digits.
    #[error("chunk size too large")]
    SizeOverflow,
    /// Chunk extensions over 256 bytes on one line.
    #[error("chunk extension too long")]
    ExtensionTooLong,
    /// A control byte in a chunk extension.
    #[error("invalid byte in chunk extension")]
    InvalidExtension,
    /// A chunk-size line, chunk data or trailer line not followed by CRLF.
    #[error("chunk line not ending in CRLF")]
    BadLineEnding,
    /// Trailer section over 4 KiB.
    #[error("trailer section too large")]
    TrailerTooLarge,
    /// A trailer line that is not `name: value` (obs-fold, missing colon, bad bytes).
    #[error("malformed trailer field")]
    InvalidTrailer,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Expecting the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// In the hex digits.
    Size,
    /// Blanks after the size: only more blanks or `;` may follow.
    SizeBlank,
    /// In the extensions of a chunk-size line.
    Ext,
    /// After the CR of a chunk-size line.
    SizeLf,
    /// In chunk data.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value.
    TrailerValue,
    /// After the CR of a trailer line.
    TrailerLf,
    /// After the CR of the final empty line.
    FinalLf,
    /// The message is complete.
    Done,
    /// A previous call failed with this error.
    Failed(ChunkedError),
}

/// Incremental decoder for one chunked body. Create one per message ([`Default`] or
/// [`ChunkedDecoder::new`]); it holds a few words of state and never allocates.
#[derive(Clone, Debug, Default)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: u32,
    remaining: u64,
    ext_len: usize,
    trailer_len: usize,
    payload: u64,
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Visible characters, blanks and obs-text: what a field value or extension may hold.
fn is_text(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// Appends `"{len:x}\r\n"` without allocating.
pub(crate) fn push_hex_line(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
    out.extend_from_slice(b"\r\n");
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decoded payload bytes seen so far (for body-size limits, whatever the output mode).
    pub fn payload_bytes(&self) -> u64 {
        self.payload
    }

    /// Payload bytes the client has committed to so far: those decoded, plus the announced
    /// size of the chunk being read (or whose size line is being read). A receiver with a
    /// body cap refuses as soon as this passes it, without waiting for the chunk's data.
    pub fn committed_bytes(&self) -> u64 {
        let pending = match self.state {
            State::Size | State::SizeBlank | State::Ext | State::SizeLf => self.size,
            State::Data => self.remaining,
            _ => 0,
        };
        self.payload.saturating_add(pending)
    }

    /// True once the whole body (last chunk and trailers) has been consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes as much of `input` as it can, appending to `out`. `done` once the last chunk and the trailer section are consumed;
    /// bytes after that are not consumed (they belong to the next message). Never panics; streaming: input may be split at ANY byte.
    ///
    /// Errors are sticky: every later call returns the same error. Cost: a state-machine step
    /// per framing byte, one `extend_from_slice` per run of data.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        mode: ChunkedOutput,
    ) -> Result<DecodeProgress, ChunkedError> {
        let mut i = 0usize;
        while let Some(rest) = input.get(i..).filter(|r| !r.is_empty()) {
            match self.state {
                State::Done => break,
                State::Failed(e) => return Err(e),
                State::Data => {
                    let n = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let piece = rest.get(..n).unwrap_or_default();
                    if mode == ChunkedOutput::Rechunk {
                        push_hex_line(out, n as u64);
                        out.extend_from_slice(piece);
                        out.extend_from_slice(b"\r\n");
                    } else {
                        out.extend_from_slice(piece);
                    }
                    i += n;
                    self.remaining -= n as u64;
                    self.payload += n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => {
                    let Some(&b) = rest.first() else { break };
                    i += 1;
                    if let Err(e) = self.step(b, out, mode) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
        }
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        Ok(DecodeProgress {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    /// Advances the framing state machine by one byte.
    fn step(&mut self, b: u8, out: &mut Vec<u8>, mode: ChunkedOutput) -> Result<(), ChunkedError> {
        use ChunkedError::*;
        self.state = match self.state {
            State::SizeStart => {
                let d = hex_value(b).ok_or(InvalidSize)?;
                self.size = d;
                self.digits = 1;
                self.ext_len = 0;
                State::Size
            }
            State::Size => match b {
                b'\r' => State::SizeLf,
                b';' | b' ' | b'\t' => {
                    self.ext_len = 1;
                    if b == b';' {
                        State::Ext
                    } else {
                        State::SizeBlank
                    }
                }
                b'\n' => return Err(BadLineEnding),
                _ => {
                    let d = hex_value(b).ok_or(InvalidSize)?;
                    self.digits += 1;
                    if self.digits > MAX_SIZE_DIGITS {
                        return Err(SizeOverflow);
                    }
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(d))
                        .filter(|&s| s <= MAX_CHUNK_SIZE)
                        .ok_or(SizeOverflow)?;
                    State::Size
                }
            },
            State::SizeBlank => {
                self.bump_ext()?;
                match b {
                    b' ' | b'\t' => State::SizeBlank,
                    b';' => State::Ext,
                    _ => return Err(InvalidSize),
                }
            }
            State::Ext => match b {
                b'\r' => State::SizeLf,
                b'\n' => return Err(BadLineEnding),
                _ if is_text(b) => {
                    self.bump_ext()?;
                    State::Ext
                }
                _ => return Err(InvalidExtension),
            },
            State::SizeLf => match b {
                b'\n' if self.size == 0 => {
                    self.trailer_len = 0;
                    State::TrailerStart
                }
                b'\n' => {
                    self.remaining = self.size;
                    State::Data
                }
                _ => return Err(BadLineEnding),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(BadLineEnding),
            },
            State::DataLf => match b {
                b'\n' => State::SizeStart,
                _ => return Err(BadLineEnding),
            },
            State::TrailerStart => match b {
                b'\r' => State::FinalLf,
                b'\n' => return Err(BadLineEnding),
                _ if is_tchar(b) => self.bump_trailer(State::TrailerName)?,
                _ => return Err(InvalidTrailer),
            },
            State::TrailerName => match b {
                b':' => self.bump_trailer(State::TrailerValue)?,
                _ if is_tchar(b) => self.bump_trailer(State::TrailerName)?,
                _ => return Err(InvalidTrailer),
            },
            State::TrailerValue => match b {
                b'\r' => self.bump_trailer(State::TrailerLf)?,
                b'\n' => return Err(BadLineEnding),
                _ if is_text(b) => self.bump_trailer(State::TrailerValue)?,
                _ => return Err(InvalidTrailer),
            },
            State::TrailerLf => match b {
                b'\n' => self.bump_trailer(State::TrailerStart)?,
                _ => return Err(BadLineEnding),
            },
            State::FinalLf => match b {
                b'\n' => {
                    if mode == ChunkedOutput::Rechunk {
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                    State::Done
                }
                _ => return Err(BadLineEnding),
            },
            // handled by `decode`; kept total for safety
            State::Data | State::Done | State::Failed(_) => self.state,
        };
        Ok(())
    }

    fn bump_ext(&mut self) -> Result<(), ChunkedError> {
        self.ext_len += 1;
        if self.ext_len > MAX_EXTENSION_BYTES {
            return Err(ChunkedError::ExtensionTooLong);
        }
        Ok(())
    }

    fn bump_trailer(&mut self, next: State) -> Result<State, ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILER_BYTES {
            return Err(ChunkedError::TrailerTooLarge);
        }
        Ok(next)
    }
}

/// Value of one hex digit (either case).
fn hex_value(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "chunked_tests.rs"]
mod tests;
