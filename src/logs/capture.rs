//! A child's output kept for its action instead of written to the proxy's own streams.
//!
//! A forward server runs the actions of many clients; each activation's logs travel back to
//! its client in the `/run` answer (`out`, `err`), which writes them to the streams its
//! invoker reads. On the server's own streams nobody would collect them per activation, so
//! the children of a forwarded action write into a [`Capture`] that the action owns, and the
//! server takes its contents after every activation.
//!
//! A capture never makes a child wait: nobody reads it until the activation ends, so waiting
//! for room would deadlock. What an activation writes past [`KEEP_BYTES`] on a stream is
//! dropped and counted instead, and a note says so before the stream's sentinel.

use std::sync::{Arc, Mutex};

/// Bytes kept per stream and activation: OpenWhisk's default log limit (10 MB), past which
/// the invoker cuts an activation's logs anyway.
pub const KEEP_BYTES: usize = 10 * 1024 * 1024;

/// One action's two captured streams.
#[derive(Default)]
pub struct Capture {
    pub stdout: Arc<Buffer>,
    pub stderr: Arc<Buffer>,
}

impl Capture {
    pub fn new() -> Arc<Capture> {
        Arc::new(Capture::default())
    }
}

/// One captured stream: what was written since the last [`Buffer::take`].
#[derive(Default)]
pub struct Buffer(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    /// The last byte kept did not end a line.
    mid_line: bool,
    /// Bytes over [`KEEP_BYTES`] since the last note.
    dropped: usize,
}

impl Kept {
    fn line(&mut self, text: &str) {
        if self.mid_line {
            self.bytes.push(b'\n');
        }
        self.bytes.extend_from_slice(text.trim_end().as_bytes());
        self.bytes.push(b'\n');
        self.mid_line = false;
    }
}

impl Buffer {
    /// Keeps `bytes`, as far as the activation's share allows.
    pub fn push(&self, bytes: &[u8]) {
        let Ok(mut kept) = self.0.lock() else {
            return;
        };
        let room = KEEP_BYTES.saturating_sub(kept.bytes.len());
        let (keep, drop) = bytes.split_at(bytes.len().min(room));
        if !keep.is_empty() {
            kept.bytes.extend_from_slice(keep);
            kept.mid_line = keep.last() != Some(&b'\n');
        }
        kept.dropped += drop.len();
    }

    /// Keeps `text` on a line of its own, whatever the share left: these are the proxy's
    /// notes and sentinels, which the stream cannot do without. A note of what was dropped
    /// comes first.
    pub fn line(&self, text: &str) {
        let Ok(mut kept) = self.0.lock() else {
            return;
        };
        if kept.dropped > 0 {
            let note = format!(
                "actionloop: {} bytes of output dropped: more than {KEEP_BYTES} in one activation",
                kept.dropped
            );
            kept.line(&note);
            kept.dropped = 0;
        }
        kept.line(text);
    }

    /// Everything kept since the last take; the next activation starts with a full share.
    pub fn take(&self) -> Vec<u8> {
        let Ok(mut kept) = self.0.lock() else {
            return Vec::new();
        };
        kept.mid_line = false;
        std::mem::take(&mut kept.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_what_was_kept_and_follow_a_note_of_what_was_not() {
        let b = Buffer::default();
        b.push(b"partial");
        b.line("END");
        assert_eq!(b.take(), b"partial\nEND\n");
        assert!(b.take().is_empty());
        b.push(&vec![b'x'; KEEP_BYTES + 5]);
        b.line("END");
        let text = String::from_utf8(b.take()).unwrap();
        let (kept, rest) = text.split_at(KEEP_BYTES);
        assert!(kept.bytes().all(|c| c == b'x'));
        assert_eq!(
            rest,
            "\nactionloop: 5 bytes of output dropped: more than 10485760 in one activation\nEND\n"
        );
        // A fresh share after each take.
        b.push(b"again\n");
        assert_eq!(b.take(), b"again\n");
    }
}
