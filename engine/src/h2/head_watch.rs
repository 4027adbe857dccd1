//! Whether an HTTP/2 client is in the middle of a header block, read from the bytes it sends,
//! so that `limits.client_header_timeout` bounds an unfinished header block over HTTP/2 as it
//! bounds an unfinished head over HTTP/1.1.
//!
//! The `h2` crate buffers a header block (a HEADERS or PUSH_PROMISE frame and the
//! CONTINUATION frames after it, RFC 9113 §4.3) until END_HEADERS and says nothing about it
//! until then, so a client that opens a block and goes quiet — or drips one CONTINUATION
//! every few seconds — holds the connection until the idle timeout. [`HeaderBlockWatch`] is fed
//! every byte the connection reads and follows the frame boundaries (9-byte frame headers,
//! payloads skipped by length); it never decodes HPACK and never judges a frame: the `h2`
//! crate does. Sans-IO and allocation-free: the caller keeps the clock.

/// The client connection preface (RFC 9113 §3.4), which comes before the first frame.
const PREFACE_LEN: u32 = super::PREFACE.len() as u32;
/// Frame header length (RFC 9113 §4.1).
const FRAME_HEADER_LEN: usize = 9;
/// Frame types that start or continue a header block (RFC 9113 §6.2, §6.6, §6.10).
const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;
/// The END_HEADERS flag.
const END_HEADERS: u8 = 0x4;

/// Follows the frames of one client connection.
#[derive(Debug, Clone)]
pub struct HeaderBlockWatch {
    /// Preface bytes still to skip.
    preface_left: u32,
    /// The frame header being read, and how much of it arrived.
    header: [u8; FRAME_HEADER_LEN],
    header_have: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u32,
    /// The current frame belongs to a header block.
    in_head_frame: bool,
    /// A block was started and its END_HEADERS has not been seen.
    block_open: bool,
}

impl Default for HeaderBlockWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderBlockWatch {
    /// A watch for a connection whose first bytes are the client preface.
    pub fn new() -> Self {
        HeaderBlockWatch {
            preface_left: PREFACE_LEN,
            header: [0; FRAME_HEADER_LEN],
            header_have: 0,
            payload_left: 0,
            in_head_frame: false,
            block_open: false,
        }
    }

    /// True while a header block is unfinished: after its first frame header arrived and
    /// before the whole frame carrying END_HEADERS did.
    pub fn is_open(&self) -> bool {
        self.block_open || (self.in_head_frame && self.payload_left > 0)
    }

    /// Follows `bytes`, the next bytes the client sent. Cost: one step per frame boundary.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.preface_left > 0 {
            let skip = bytes.len().min(self.preface_left as usize);
            self.preface_left -= skip as u32;
            bytes = &bytes[skip..];
        }
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = bytes.len().min(self.payload_left as usize);
                self.payload_left -= skip as u32;
                bytes = &bytes[skip..];
                if self.payload_left == 0 {
                    self.in_head_frame = false;
                }
                continue;
            }
            let take = (FRAME_HEADER_LEN - self.header_have).min(bytes.len());
            self.header[self.header_have..self.header_have + take].copy_from_slice(&bytes[..take]);
            self.header_have += take;
            bytes = &bytes[take..];
            if self.header_have == FRAME_HEADER_LEN {
                self.header_have = 0;
                self.frame_started();
            }
        }
    }

    /// A whole frame header arrived.
    fn frame_started(&mut self) {
        let [l0, l1, l2, kind, flags, ..] = self.header;
        self.payload_left = u32::from_be_bytes([0, l0, l1, l2]);
        match kind {
            HEADERS | PUSH_PROMISE | CONTINUATION => {
                self.in_head_frame = self.payload_left > 0;
                self.block_open = flags & END_HEADERS == 0;
            }
            // Any other frame inside a block is a connection error (RFC 9113 §6.10) that the
            // `h2` crate answers; here it simply is not a header frame.
            _ => {
                self.in_head_frame = false;
                self.block_open = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::h2::PREFACE;

    fn frame(kind: u8, flags: u8, len: usize) -> Vec<u8> {
        let l = (len as u32).to_be_bytes();
        let mut f = vec![l[1], l[2], l[3], kind, flags, 0, 0, 0, 1];
        f.resize(FRAME_HEADER_LEN + len, 0xAB);
        f
    }

    /// Feeds `bytes` in pieces of `step` and returns `is_open` after each piece.
    fn states(bytes: &[u8], step: usize) -> Vec<bool> {
        let mut w = HeaderBlockWatch::new();
        bytes
            .chunks(step)
            .map(|c| {
                w.feed(c);
                w.is_open()
            })
            .collect()
    }

    #[test]
    fn the_preface_and_settings_open_nothing() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x4, 0, 12));
        bytes.extend(frame(0x4, 0x1, 0));
        for step in [1, 5, 64] {
            assert!(states(&bytes, step).iter().all(|open| !open), "{step}");
        }
    }

    #[test]
    fn a_block_stays_open_until_end_headers_arrived_whole() {
        let mut w = HeaderBlockWatch::new();
        w.feed(PREFACE);
        // HEADERS without END_HEADERS: open, and still open once its payload is in.
        let headers = frame(HEADERS, 0x1, 20);
        w.feed(&headers[..4]);
        assert!(!w.is_open(), "the type is not known yet");
        w.feed(&headers[4..]);
        assert!(w.is_open());
        // A CONTINUATION without END_HEADERS keeps it open.
        w.feed(&frame(CONTINUATION, 0, 30));
        assert!(w.is_open());
        // The last CONTINUATION: open until its last byte.
        let last = frame(CONTINUATION, END_HEADERS, 10);
        w.feed(&last[..15]);
        assert!(w.is_open());
        w.feed(&last[15..]);
        assert!(!w.is_open());
        // DATA after it opens nothing.
        w.feed(&frame(0x0, 0x1, 100));
        assert!(!w.is_open());
    }

    #[test]
    fn a_complete_headers_frame_is_open_only_while_its_payload_arrives() {
        let mut w = HeaderBlockWatch::new();
        w.feed(PREFACE);
        let f = frame(HEADERS, END_HEADERS | 0x1, 40);
        w.feed(&f[..FRAME_HEADER_LEN + 39]);
        assert!(w.is_open(), "a dripped HEADERS frame is an unfinished head");
        w.feed(&f[FRAME_HEADER_LEN + 39..]);
        assert!(!w.is_open());
        // Empty header frames: closed at once when they end the block.
        w.feed(&frame(HEADERS, END_HEADERS, 0));
        assert!(!w.is_open());
        w.feed(&frame(PUSH_PROMISE, 0, 0));
        assert!(w.is_open());
    }

    #[test]
    fn many_frames_in_one_read_and_byte_by_byte_agree() {
        let mut bytes = PREFACE.to_vec();
        for _ in 0..3 {
            bytes.extend(frame(HEADERS, 0, 7));
            bytes.extend(frame(CONTINUATION, END_HEADERS, 3));
            bytes.extend(frame(0x0, 0, 1000));
        }
        let whole = states(&bytes, bytes.len());
        assert_eq!(whole, [false]);
        let by_byte = states(&bytes, 1);
        assert_eq!(by_byte.last(), Some(&false));
        assert!(
            by_byte.iter().any(|o| *o),
            "each block was open for a while"
        );
        let mut open_tail = bytes.clone();
        open_tail.extend(frame(HEADERS, 0, 2));
        assert_eq!(states(&open_tail, 7).last(), Some(&true));
    }

    #[test]
    fn a_huge_length_is_followed_not_trusted() {
        let mut w = HeaderBlockWatch::new();
        w.feed(PREFACE);
        let mut f = frame(HEADERS, END_HEADERS, 0);
        f[0..3].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        w.feed(&f);
        assert!(w.is_open());
        w.feed(&vec![0; 1 << 20]);
        assert!(w.is_open(), "16 MiB announced, 1 MiB came");
    }
}
