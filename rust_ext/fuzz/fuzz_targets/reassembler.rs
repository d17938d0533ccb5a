//! `Reassembler::push` and `expire` on a sequence of frames built from the input: several
//! message ids and sources, any index/length, time moving on, duplicates, conflicting
//! frames and raw byte corruption, under small limits so eviction happens.
//!
//! Invariants: no panic; the limits hold after every step, for the pool and for each
//! source; a frame of one source never evicts another's while that source is within its
//! own limits and the pool has room; a frame longer than the
//! message limit is refused; a completed message has the length its frames announced
//! and, unless a corrupted frame was accepted, the exact payload the frames were cut from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nymchat_native::framing::{self, CHUNK_LEN, FRAME_SIZE, HEADER_LEN, Limits, Reassembler};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }
}

/// Byte `i` of the payload of message `id` of length `len`: every frame of one message is
/// cut from the same payload, so a message that completes must equal it.
fn payload_byte(id: u8, len: usize, i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(id) ^ (len as u8) ^ ((i >> 8) as u8)
}

fn frame(id: u8, len: usize, count: usize, index: usize) -> Vec<u8> {
    let mut f = vec![0u8; FRAME_SIZE];
    f[0] = framing::VERSION;
    f[1..17].fill(id);
    f[17..19].copy_from_slice(&(index as u16).to_be_bytes());
    f[19..21].copy_from_slice(&(count as u16).to_be_bytes());
    f[21..25].copy_from_slice(&(len as u32).to_be_bytes());
    let start = index * CHUNK_LEN;
    for i in start..len.min(start + CHUNK_LEN) {
        f[HEADER_LEN + i - start] = payload_byte(id, len, i);
    }
    f
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(config) = input.byte() else {
        return;
    };
    let limits = Limits {
        max_message_bytes: (1 + usize::from(config & 0x0f)) * CHUNK_LEN,
        max_pending_bytes: (1 + usize::from(config >> 4)) * CHUNK_LEN,
        max_pending_messages: 1 + usize::from(config % 5),
        max_source_messages: 1 + usize::from(config % 3),
        max_source_bytes: (1 + usize::from(config >> 5)) * CHUNK_LEN,
        ttl: 10.0,
        completed_memory: usize::from(config % 7),
    };
    let mut r: Reassembler = Reassembler::new(limits);
    let mut now = 0.0f64;
    let mut tainted = false;
    while let Some(op) = input.byte() {
        now += f64::from(op >> 4) * 0.75;
        if op & 3 == 0 {
            r.expire(now);
        } else {
            let (Some(id), Some(len), Some(index)) = (input.byte(), input.u16(), input.byte())
            else {
                break;
            };
            let id = id % 8;
            let len = usize::from(len);
            let count = framing::frame_count(len).expect("a u16 length frames");
            let index = if op & 4 == 0 {
                usize::from(index) % count
            } else {
                usize::from(index) // may be past the end
            };
            let mut f = frame(id, len, count, index);
            let corrupted = op & 8 != 0;
            if corrupted {
                let (Some(at), Some(mask)) = (input.u16(), input.byte()) else {
                    break;
                };
                f[usize::from(at) % FRAME_SIZE] ^= mask;
            }
            let (source, other): (&[u8], &[u8]) = if op & 3 == 3 {
                (b"b", b"a")
            } else {
                (b"a", b"b")
            };
            r.expire(now);
            let others_before = r.held_by(other).0;
            let pool_was_full = r.pending_messages() >= limits.max_pending_messages
                || r.pending_bytes() + len > limits.max_pending_bytes;
            let pushed = r.push(&f, now, source);
            if !corrupted && r.held_by(other).0 < others_before {
                assert!(
                    pool_was_full,
                    "evicted another source's message from a pool with room"
                );
            }
            if corrupted && pushed.is_ok() {
                tainted = true;
            }
            if !corrupted && (len > limits.max_message_bytes || index >= count) {
                assert!(pushed.is_err(), "accepted a frame over the limits");
            }
            if let Ok(Some(done)) = pushed {
                assert!(done.payload.len() <= limits.max_message_bytes);
                if !tainted {
                    assert_eq!(done.message_id, [id; 16]);
                    assert_eq!(done.payload.len(), len);
                    let expected: Vec<u8> = (0..len).map(|i| payload_byte(id, len, i)).collect();
                    assert!(done.payload == expected, "reassembled the wrong payload");
                }
            }
        }
        assert!(r.pending_messages() <= limits.max_pending_messages);
        assert!(r.pending_bytes() <= limits.max_pending_bytes);
        for source in [b"a", b"b"] {
            let (messages, bytes) = r.held_by(source);
            assert!(messages <= limits.max_source_messages);
            assert!(bytes <= limits.max_source_bytes);
        }
    }
    r.expire(now + 1000.0);
    assert_eq!((r.pending_messages(), r.pending_bytes()), (0, 0));
});
