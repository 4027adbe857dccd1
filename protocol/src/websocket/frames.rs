//! WebSocket framing as far as a proxy that does not read messages needs it (RFC 6455 §5):
//! where one direction's frames begin and end, and the close frame a server sends.
//!
//! A gateway that tunnels bytes after the handshake can still end a tunnel cleanly — with a
//! close frame the client understands, when an admission was withdrawn — only between two
//! frames: a close frame written into the middle of a backend's frame would be read as payload.
//! [`FrameBoundary`] follows the frame headers of the bytes already sent in one direction
//! (payloads skipped by length, never unmasked or decoded) and says whether that direction is
//! between frames. Pure: no IO, no allocation, no panic on any input.

/// Longest frame header: 2 bytes, a 64-bit extended length, a 4-byte masking key (§5.2).
const MAX_HEADER_LEN: usize = 14;

/// The close code for a policy violation (RFC 6455 §7.4.1): the admission that let the tunnel
/// open was withdrawn (a key disabled, a route removed).
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
/// The close code for an endpoint going away (RFC 6455 §7.4.1): the tunnel reached the
/// gateway's lifetime bound.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Most bytes of a close reason: a control frame's payload is at most 125 bytes (§5.5), two of
/// them the code.
pub const MAX_CLOSE_REASON: usize = 123;

/// Follows the frames of one direction of a WebSocket connection.
#[derive(Debug, Clone)]
pub struct FrameBoundary {
    header: [u8; MAX_HEADER_LEN],
    /// Header bytes received of the current frame.
    have: usize,
    /// Header bytes the current frame has (2 until the second byte says more).
    need: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
}

impl Default for FrameBoundary {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBoundary {
    /// A direction at its start, between frames.
    pub fn new() -> Self {
        FrameBoundary {
            header: [0; MAX_HEADER_LEN],
            have: 0,
            need: 2,
            payload_left: 0,
        }
    }

    /// True when every frame begun so far was complete: a new frame may be written here.
    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.payload_left == 0
    }

    /// Follows `bytes`, the next bytes of the direction. Cost: one step per frame header.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                // Never more than `bytes.len()`, so the cast back to usize is exact.
                let skip = (bytes.len() as u64).min(self.payload_left);
                self.payload_left -= skip;
                bytes = &bytes[skip as usize..];
                continue;
            }
            let take = (self.need - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < self.need {
                continue;
            }
            if self.have == 2 {
                let masked = self.header[1] & 0x80 != 0;
                let extended = match self.header[1] & 0x7f {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                };
                self.need = 2 + extended + if masked { 4 } else { 0 };
                if self.need > self.have {
                    continue;
                }
            }
            self.payload_left = match self.header[1] & 0x7f {
                126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                127 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&self.header[2..10]);
                    u64::from_be_bytes(n)
                }
                n => u64::from(n),
            };
            self.have = 0;
            self.need = 2;
        }
    }
}

/// The close frame a server sends (RFC 6455 §5.5.1): FIN and opcode 0x8, unmasked (§5.1: a
/// server never masks), the code, then `reason` cut to [`MAX_CLOSE_REASON`] bytes at a UTF-8
/// character boundary.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut frame = Vec::with_capacity(4 + reason.len());
    frame.push(0x88);
    // At most 125: fits the 7-bit length.
    frame.push((2 + reason.len()) as u8);
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(reason);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(masked: bool, len: usize) -> Vec<u8> {
        let mut f = vec![0x82];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => f.push(m | len as u8),
            126..=0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(m | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.resize(f.len() + len, 0x88);
        f
    }

    /// Feeds `bytes` in pieces of `step`; returns whether the stream is at a boundary after
    /// each byte offset reached.
    fn boundaries(bytes: &[u8], step: usize) -> Vec<(usize, bool)> {
        let mut b = FrameBoundary::new();
        let mut at = 0;
        bytes
            .chunks(step)
            .map(|c| {
                b.feed(c);
                at += c.len();
                (at, b.at_boundary())
            })
            .collect()
    }

    #[test]
    fn every_length_form_masked_or_not_ends_where_it_says() {
        for masked in [false, true] {
            for len in [0, 1, 125, 126, 127, 1000, 0xffff, 0x10000, 70_000] {
                let f = frame(masked, len);
                let mut stream = f.clone();
                stream.extend(frame(!masked, 3));
                let ends = [f.len(), stream.len()];
                for (at, boundary) in boundaries(&stream, 1) {
                    assert_eq!(boundary, ends.contains(&at), "{masked} {len} at {at}");
                }
                let whole = boundaries(&stream, stream.len());
                assert_eq!(whole, [(stream.len(), true)]);
            }
        }
    }

    #[test]
    fn pieces_of_any_size_agree() {
        let mut stream = Vec::new();
        for (i, len) in [5usize, 300, 0, 70_000, 2].iter().enumerate() {
            stream.extend(frame(i % 2 == 0, *len));
        }
        for step in [1, 2, 3, 7, 13, 1000, 65_536] {
            assert_eq!(
                boundaries(&stream, step).last(),
                Some(&(stream.len(), true)),
                "{step}"
            );
        }
        let cut = &stream[..stream.len() - 1];
        assert_eq!(boundaries(cut, 9).last().map(|b| b.1), Some(false));
    }

    #[test]
    fn a_huge_announced_length_is_followed_not_trusted() {
        let mut b = FrameBoundary::new();
        let mut header = vec![0x82, 127];
        header.extend_from_slice(&u64::MAX.to_be_bytes());
        b.feed(&header);
        assert!(!b.at_boundary());
        b.feed(&[0; 4096]);
        assert!(!b.at_boundary());
    }

    #[test]
    fn close_frames_are_unmasked_and_bounded() {
        assert_eq!(
            close_frame(CLOSE_POLICY_VIOLATION, "key disabled"),
            [&[0x88, 14, 0x03, 0xf0][..], b"key disabled"].concat()
        );
        let long = "é".repeat(100);
        let f = close_frame(CLOSE_GOING_AWAY, &long);
        assert!(f.len() <= 127);
        assert_eq!(f[1] as usize, f.len() - 2);
        assert!(
            std::str::from_utf8(&f[4..]).is_ok(),
            "cut at a character boundary"
        );
        // The frame reads back as one complete frame.
        let mut b = FrameBoundary::new();
        b.feed(&f[..f.len() - 1]);
        assert!(!b.at_boundary());
        b.feed(&f[f.len() - 1..]);
        assert!(b.at_boundary());
    }
}
