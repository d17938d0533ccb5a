//! Framing: pad a payload to a bucket of whole mixnet packets, split it into frames of
//! exactly one packet each, and reassemble frames that arrive out of order, twice, or
//! not at all.
//!
//! A frame is `FRAME_SIZE` bytes:
//!
//! ```text
//! 0x01 ‖ message_id[16] ‖ index u16 ‖ count u16 ‖ total_len u32 ‖ chunk[CHUNK_LEN]
//! ```
//!
//! Integers are big-endian. The payload is laid out across the chunks in index order and
//! followed by zeros; `count` is the smallest bucket (1, 2, 3, 4, 6, 8, 12, …: powers of
//! two and three times powers of two) that holds `total_len` bytes, so an observer of the
//! frames learns the bucket, not the length. The encoding is canonical: for a given
//! payload and id there is exactly one valid sequence of frames.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::error::{Error, Result};

/// The frame format's version byte.
pub const VERSION: u8 = 1;
/// One Sphinx packet carries ~1604 B of application data; the nym-client adds a type
/// byte (two for replies) and a padding marker, so 1600 B fills a packet for `send`,
/// `sendAnonymous` and `reply` alike.
pub const FRAME_SIZE: usize = 1600;
/// Bytes of a frame's header: version ‖ message id ‖ index ‖ count ‖ total length.
pub const HEADER_LEN: usize = 1 + MESSAGE_ID_LEN + 2 + 2 + 4;
/// Payload bytes one frame carries.
pub const CHUNK_LEN: usize = FRAME_SIZE - HEADER_LEN;
/// Most frames of one message (a bucket: 3 × 2^14); about 74 MiB of payload.
pub const MAX_FRAMES: usize = 49_152;
/// Bytes of a message id.
pub const MESSAGE_ID_LEN: usize = 16;

/// The smallest bucket of frames that holds `frames` frames, if any.
pub fn bucket(frames: usize) -> Option<usize> {
    let mut power = 1usize;
    loop {
        for candidate in [power, power + power / 2] {
            if candidate >= frames && candidate > 0 {
                return (candidate <= MAX_FRAMES).then_some(candidate);
            }
        }
        power *= 2;
    }
}

/// Number of frames a payload of `len` bytes is sent as.
pub fn frame_count(len: usize) -> Result<usize> {
    bucket(len.div_ceil(CHUNK_LEN).max(1)).ok_or_else(|| {
        Error::InvalidArgument(format!("payload of {len} bytes is too large to frame"))
    })
}

/// The frames of one payload, each written straight into a buffer the caller provides
/// (the binding's are Python `bytes`), so no frame is built anywhere first.
pub struct Framer<'a> {
    payload: &'a [u8],
    message_id: [u8; MESSAGE_ID_LEN],
    count: usize,
}

impl<'a> Framer<'a> {
    /// Plans the frames of `payload` under `message_id`; refuses a payload too large to
    /// frame before anything is allocated.
    pub fn new(payload: &'a [u8], message_id: &[u8]) -> Result<Self> {
        let message_id = message_id.try_into().map_err(|_| {
            Error::InvalidArgument(format!("message id must be {MESSAGE_ID_LEN} bytes"))
        })?;
        Ok(Self {
            payload,
            message_id,
            count: frame_count(payload.len())?,
        })
    }

    /// Number of frames (a bucket).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Writes frame `index` (below `count()`) over the whole of `frame`, which must be
    /// `FRAME_SIZE` bytes: header, its chunk of the payload, zeros after.
    pub fn write(&self, index: usize, frame: &mut [u8]) -> Result<()> {
        if index >= self.count || frame.len() != FRAME_SIZE {
            return Err(Error::InvalidArgument(format!(
                "frame {index} of {} into {} bytes",
                self.count,
                frame.len()
            )));
        }
        let (header, chunk) = frame.split_at_mut(HEADER_LEN);
        header[0] = VERSION;
        header[1..17].copy_from_slice(&self.message_id);
        header[17..19].copy_from_slice(&(index as u16).to_be_bytes());
        header[19..21].copy_from_slice(&(self.count as u16).to_be_bytes());
        header[21..25].copy_from_slice(&(self.payload.len() as u32).to_be_bytes());
        let start = (index * CHUNK_LEN).min(self.payload.len());
        let data = &self.payload[start..(start + CHUNK_LEN).min(self.payload.len())];
        let (filled, padding) = chunk.split_at_mut(data.len());
        filled.copy_from_slice(data);
        padding.fill(0);
        Ok(())
    }
}

/// Splits `payload` into frames, returned back to back (`frame_count * FRAME_SIZE` bytes).
pub fn encode(payload: &[u8], message_id: &[u8]) -> Result<Vec<u8>> {
    let framer = Framer::new(payload, message_id)?;
    let mut out = vec![0u8; framer.count() * FRAME_SIZE];
    for (index, frame) in out.chunks_exact_mut(FRAME_SIZE).enumerate() {
        framer.write(index, frame)?;
    }
    Ok(out)
}

/// The decoded header of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The message the frame belongs to.
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// Its place among the message's frames, from 0.
    pub index: usize,
    /// Frames of the message (a bucket).
    pub count: usize,
    /// Payload bytes of the whole message.
    pub total_len: usize,
}

impl FrameHeader {
    /// The payload bytes this frame carries (the rest of its chunk is padding).
    fn data_len(&self) -> usize {
        self.total_len
            .saturating_sub(self.index * CHUNK_LEN)
            .min(CHUNK_LEN)
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Framing(reason.into())
}

/// Parses and checks one frame; returns its header and the payload bytes it carries.
pub fn parse(frame: &[u8]) -> Result<(FrameHeader, &[u8])> {
    if frame.len() != FRAME_SIZE {
        return Err(bad(format!(
            "frame is {} bytes, expected {FRAME_SIZE}",
            frame.len()
        )));
    }
    if frame[0] != VERSION {
        return Err(bad(format!("unknown frame version {}", frame[0])));
    }
    let mut message_id = [0u8; MESSAGE_ID_LEN];
    message_id.copy_from_slice(&frame[1..17]);
    let header = FrameHeader {
        message_id,
        index: u16::from_be_bytes([frame[17], frame[18]]) as usize,
        count: u16::from_be_bytes([frame[19], frame[20]]) as usize,
        total_len: u32::from_be_bytes([frame[21], frame[22], frame[23], frame[24]]) as usize,
    };
    if header.index >= header.count {
        return Err(bad(format!(
            "frame index {} of {}",
            header.index, header.count
        )));
    }
    if frame_count(header.total_len).ok() != Some(header.count) {
        return Err(bad(format!(
            "{} frames is not the bucket for {} bytes",
            header.count, header.total_len
        )));
    }
    let (data, padding) = frame[HEADER_LEN..].split_at(header.data_len());
    // OR-ing every byte (no early exit) lets the compiler check whole vectors at once.
    if padding.iter().fold(0, |acc, &b| acc | b) != 0 {
        return Err(bad("non-zero padding"));
    }
    Ok((header, data))
}

/// Bounds on what a `Reassembler` holds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest payload accepted, in bytes.
    pub max_message_bytes: usize,
    /// Payload bytes reserved by all incomplete messages together.
    pub max_pending_bytes: usize,
    /// Incomplete messages held at once.
    pub max_pending_messages: usize,
    /// Incomplete messages one source may hold at once (at least 1).
    pub max_source_messages: usize,
    /// Payload bytes the incomplete messages of one source may reserve together.
    pub max_source_bytes: usize,
    /// Seconds an incomplete message is kept after its first frame.
    pub ttl: f64,
    /// Completed message keys remembered, so late duplicate frames are dropped.
    pub completed_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            max_pending_bytes: 32 << 20,
            max_pending_messages: 256,
            max_source_messages: 64,
            max_source_bytes: 8 << 20,
            ttl: 300.0,
            completed_memory: 4096,
        }
    }
}

/// Where a message is reassembled and then handed back whole: `len` bytes, zeroed at
/// first. The binding's buffers are the Python `bytes` it returns, so frames' data is
/// written once, straight into the result.
pub trait Buffer: Sized {
    /// A buffer of `len` zero bytes (`len` is within the limits, checked before).
    fn zeroed(len: usize) -> Result<Self>;
    /// Its bytes, to write frames' data into.
    fn bytes_mut(&mut self) -> &mut [u8];
}

impl Buffer for Vec<u8> {
    fn zeroed(len: usize) -> Result<Self> {
        Ok(vec![0; len])
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// Frames from different sources never mix: the key is (source, message id).
type Key = (Vec<u8>, [u8; MESSAGE_ID_LEN]);

struct Partial<B> {
    header: FrameHeader,
    data: B,
    received: Vec<bool>,
    missing: usize,
    serial: u64,
}

/// Whether `serial` is the incomplete message held under `key` now.
fn is_live<B>(pending: &HashMap<Key, Partial<B>>, key: &Key, serial: u64) -> bool {
    pending.get(key).is_some_and(|p| p.serial == serial)
}

/// What one source holds: reserved bytes and its incomplete messages, oldest first (by
/// id and serial).
#[derive(Default)]
struct Holding {
    bytes: usize,
    messages: VecDeque<([u8; MESSAGE_ID_LEN], u64)>,
}

/// Reassembles framed messages. Sans-I/O: the caller passes the time in.
///
/// Fair between sources: one source holds at most `max_source_messages` incomplete
/// messages and `max_source_bytes`, and makes room among its own oldest; when the whole
/// pool is full, the source holding the most bytes loses its oldest. So one source
/// flooding frames evicts only its own messages.
pub struct Reassembler<B = Vec<u8>> {
    limits: Limits,
    pending: HashMap<Key, Partial<B>>,
    /// Incomplete messages oldest first, as (key, serial, first seen); entries of messages
    /// gone since are skipped, and swept once they outnumber the live ones.
    age_order: VecDeque<(Key, u64, f64)>,
    pending_bytes: usize,
    sources: HashMap<Vec<u8>, Holding>,
    completed: HashSet<Key>,
    completed_order: VecDeque<Key>,
    next_serial: u64,
    evicted: u64,
}

/// A whole message.
#[derive(Debug, PartialEq, Eq)]
pub struct Complete<B = Vec<u8>> {
    /// The message's id.
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// The message's payload, padding removed.
    pub payload: B,
}

impl<B: Buffer> Reassembler<B> {
    /// An empty reassembler within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            pending: HashMap::new(),
            age_order: VecDeque::new(),
            pending_bytes: 0,
            sources: HashMap::new(),
            completed: HashSet::new(),
            completed_order: VecDeque::new(),
            next_serial: 0,
            evicted: 0,
        }
    }

    /// Incomplete messages held now.
    pub fn pending_messages(&self) -> usize {
        self.pending.len()
    }

    /// Payload bytes reserved by incomplete messages now.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// (incomplete messages, reserved bytes) of one source now.
    pub fn held_by(&self, source: &[u8]) -> (usize, usize) {
        self.sources
            .get(source)
            .map_or((0, 0), |h| (h.messages.len(), h.bytes))
    }

    /// Incomplete messages dropped so far, to make room or because they expired.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Takes one frame; returns the message when this frame completes it.
    /// Duplicate frames, and frames of a message already completed, return `None`.
    pub fn push(&mut self, frame: &[u8], now: f64, source: &[u8]) -> Result<Option<Complete<B>>> {
        let (header, data) = parse(frame)?;
        if header.total_len > self.limits.max_message_bytes {
            return Err(bad(format!(
                "message of {} bytes is over the limit of {}",
                header.total_len, self.limits.max_message_bytes
            )));
        }
        self.expire(now);
        let key: Key = (source.to_vec(), header.message_id);
        if self.completed.contains(&key) {
            return Ok(None);
        }
        if header.count == 1 {
            let mut payload = B::zeroed(data.len())?;
            payload.bytes_mut().copy_from_slice(data);
            self.remember_completed(key);
            return Ok(Some(Complete {
                message_id: header.message_id,
                payload,
            }));
        }
        let partial = match self.pending.get_mut(&key) {
            Some(partial) => partial,
            None => self.start(key.clone(), header, now)?,
        };
        if partial.header.count != header.count || partial.header.total_len != header.total_len {
            return Err(bad("frame disagrees with earlier frames of its message"));
        }
        if partial.received[header.index] {
            return Ok(None);
        }
        partial.received[header.index] = true;
        partial.missing -= 1;
        if !data.is_empty() {
            let start = header.index * CHUNK_LEN;
            partial.data.bytes_mut()[start..start + data.len()].copy_from_slice(data);
        }
        if partial.missing > 0 {
            return Ok(None);
        }
        let complete = self.remove(&key).map(|partial| Complete {
            message_id: header.message_id,
            payload: partial.data,
        });
        self.remember_completed(key);
        Ok(complete)
    }

    /// Drops incomplete messages whose first frame is older than the TTL.
    pub fn expire(&mut self, now: f64) {
        while let Some((key, serial, first_seen)) = self.age_order.pop_front() {
            if now - first_seen < self.limits.ttl {
                self.age_order.push_front((key, serial, first_seen));
                break;
            }
            if is_live(&self.pending, &key, serial) {
                self.remove(&key);
                self.evicted += 1;
            }
        }
    }

    /// Takes an incomplete message out of the pool and its source's holding.
    fn remove(&mut self, key: &Key) -> Option<Partial<B>> {
        let partial = self.pending.remove(key)?;
        self.pending_bytes -= partial.header.total_len;
        if let Some(holding) = self.sources.get_mut(&key.0) {
            holding.bytes -= partial.header.total_len;
            holding.messages.retain(|(id, _)| *id != key.1);
            if holding.messages.is_empty() {
                self.sources.remove(&key.0);
            }
        }
        Some(partial)
    }

    /// Drops the oldest incomplete message of `source`; false if it holds none.
    fn evict_oldest_of(&mut self, source: &[u8]) -> bool {
        let Some(&(id, _)) = self.sources.get(source).and_then(|h| h.messages.front()) else {
            return false;
        };
        let evicted = self.remove(&(source.to_vec(), id)).is_some();
        self.evicted += u64::from(evicted);
        evicted
    }

    /// The source holding the most bytes (then the most messages, then the oldest one).
    fn largest_source(&self) -> Option<Vec<u8>> {
        self.sources
            .iter()
            .max_by_key(|(_, h)| {
                (
                    h.bytes,
                    h.messages.len(),
                    h.messages
                        .front()
                        .map(|&(_, serial)| std::cmp::Reverse(serial)),
                )
            })
            .map(|(source, _)| source.clone())
    }

    fn start(&mut self, key: Key, header: FrameHeader, now: f64) -> Result<&mut Partial<B>> {
        let limits = self.limits;
        if header.total_len > limits.max_pending_bytes.min(limits.max_source_bytes) {
            return Err(bad("message is larger than the reassembly buffer"));
        }
        while let Some(own) = self.sources.get(&key.0) {
            let fits = own.messages.len() < limits.max_source_messages
                && own.bytes + header.total_len <= limits.max_source_bytes;
            if fits || !self.evict_oldest_of(&key.0) {
                break;
            }
        }
        while self.pending.len() >= limits.max_pending_messages
            || self.pending_bytes + header.total_len > limits.max_pending_bytes
        {
            let Some(source) = self.largest_source() else {
                break;
            };
            if !self.evict_oldest_of(&source) {
                break;
            }
        }
        let data = B::zeroed(header.total_len)?;
        let serial = self.next_serial;
        self.next_serial += 1;
        self.pending_bytes += header.total_len;
        let holding = self.sources.entry(key.0.clone()).or_default();
        holding.bytes += header.total_len;
        holding.messages.push_back((key.1, serial));
        if self.age_order.len() >= 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.age_order
                .retain(|(key, serial, _)| is_live(pending, key, *serial));
        }
        self.age_order.push_back((key.clone(), serial, now));
        Ok(self.pending.entry(key).or_insert(Partial {
            header,
            data,
            received: vec![false; header.count],
            missing: header.count,
            serial,
        }))
    }

    fn remember_completed(&mut self, key: Key) {
        if self.limits.completed_memory == 0 {
            return;
        }
        if self.completed_order.len() >= self.limits.completed_memory {
            if let Some(old) = self.completed_order.pop_front() {
                self.completed.remove(&old);
            }
        }
        self.completed.insert(key.clone());
        self.completed_order.push_back(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 16] = [9u8; 16];

    fn frames(payload: &[u8], id: &[u8; 16]) -> Vec<Vec<u8>> {
        encode(payload, id)
            .unwrap()
            .chunks(FRAME_SIZE)
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn buckets_are_powers_of_two_and_three_halves() {
        let got: Vec<usize> = (1..=13).map(|n| bucket(n).unwrap()).collect();
        assert_eq!(got, [1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 12, 12, 16]);
        assert_eq!(bucket(MAX_FRAMES), Some(MAX_FRAMES));
        assert_eq!(bucket(MAX_FRAMES + 1), None);
        assert_eq!(frame_count(0).unwrap(), 1);
        assert_eq!(frame_count(CHUNK_LEN).unwrap(), 1);
        assert_eq!(frame_count(CHUNK_LEN + 1).unwrap(), 2);
    }

    #[test]
    fn round_trip_out_of_order_with_duplicates() {
        let data = payload(5 * CHUNK_LEN + 17);
        let mut fs = frames(&data, &ID);
        assert_eq!(fs.len(), 6);
        fs.reverse();
        let dup = fs[2].clone();
        fs.insert(1, dup);
        let mut r: Reassembler = Reassembler::new(Limits::default());
        let mut done = None;
        for f in &fs {
            if let Some(c) = r.push(f, 0.0, b"src").unwrap() {
                assert!(done.is_none(), "completed twice");
                done = Some(c);
            }
        }
        assert_eq!(done.unwrap().payload, data);
        assert_eq!(r.pending_messages(), 0);
        assert_eq!(r.pending_bytes(), 0);
        // A late duplicate of a completed message is dropped.
        assert_eq!(r.push(&fs[0], 1.0, b"src").unwrap(), None);
        assert_eq!(r.pending_messages(), 0);
    }

    #[test]
    fn sources_do_not_mix() {
        let data = payload(3 * CHUNK_LEN);
        let fs = frames(&data, &ID);
        let mut r: Reassembler = Reassembler::new(Limits::default());
        assert_eq!(r.push(&fs[0], 0.0, b"a").unwrap(), None);
        assert_eq!(r.push(&fs[1], 0.0, b"b").unwrap(), None);
        assert_eq!(r.push(&fs[2], 0.0, b"a").unwrap(), None);
        assert_eq!(r.pending_messages(), 2);
    }

    #[test]
    fn hostile_frames_are_rejected() {
        let fs = frames(&payload(100), &ID);
        let mut r: Reassembler = Reassembler::new(Limits::default());
        let mut check =
            |f: Vec<u8>| assert!(matches!(r.push(&f, 0.0, b""), Err(Error::Framing(_))));
        check(fs[0][..FRAME_SIZE - 1].to_vec());
        let mut f = fs[0].clone();
        f[0] = 2;
        check(f);
        let mut f = fs[0].clone();
        f[19..21].copy_from_slice(&5u16.to_be_bytes()); // 5 is not a bucket
        check(f);
        let mut f = fs[0].clone();
        f[17..19].copy_from_slice(&1u16.to_be_bytes()); // index past count
        check(f);
        let mut f = fs[0].clone();
        f[FRAME_SIZE - 1] = 1; // non-zero padding
        check(f);
        let mut f = fs[0].clone();
        f[21..25].copy_from_slice(&(CHUNK_LEN as u32 * 2).to_be_bytes()); // length vs count
        check(f);
    }

    #[test]
    fn conflicting_frames_leave_the_message_intact() {
        let data = payload(2 * CHUNK_LEN);
        let fs = frames(&data, &ID);
        let other = frames(&payload(3 * CHUNK_LEN), &ID);
        let mut r: Reassembler = Reassembler::new(Limits::default());
        assert_eq!(r.push(&fs[0], 0.0, b"").unwrap(), None);
        assert!(r.push(&other[1], 0.0, b"").is_err());
        assert_eq!(r.push(&fs[1], 0.0, b"").unwrap().unwrap().payload, data);
    }

    #[test]
    fn memory_is_bounded_and_old_partials_expire() {
        let limits = Limits {
            max_message_bytes: 10 * CHUNK_LEN,
            max_pending_bytes: 5 * CHUNK_LEN,
            max_pending_messages: 3,
            max_source_messages: 3,
            max_source_bytes: 5 * CHUNK_LEN,
            ttl: 10.0,
            completed_memory: 8,
        };
        let mut r: Reassembler = Reassembler::new(limits);
        for i in 0..20u8 {
            let fs = frames(&payload(2 * CHUNK_LEN), &[i; 16]);
            r.push(&fs[0], f64::from(i), b"").unwrap();
            assert!(r.pending_messages() <= 2);
            assert!(r.pending_bytes() <= 5 * CHUNK_LEN);
        }
        assert!(r.evicted() >= 18);
        r.expire(1000.0);
        assert_eq!(r.pending_messages(), 0);
        assert_eq!(r.pending_bytes(), 0);
        let big = frames(&payload(11 * CHUNK_LEN), &ID);
        assert!(r.push(&big[0], 0.0, b"").is_err());
    }

    #[test]
    fn completed_messages_behind_an_old_one_leave_no_trace() {
        let mut r: Reassembler = Reassembler::new(Limits::default());
        let stuck = frames(&payload(2 * CHUNK_LEN), &ID);
        r.push(&stuck[0], 0.0, b"slow").unwrap();
        for i in 0..5000u16 {
            let mut id = [0u8; 16];
            id[..2].copy_from_slice(&i.to_be_bytes());
            let fs = frames(&payload(2 * CHUNK_LEN), &id);
            assert_eq!(r.push(&fs[0], 1.0, b"fast").unwrap(), None);
            assert!(r.push(&fs[1], 1.0, b"fast").unwrap().is_some());
        }
        assert_eq!(r.pending_messages(), 1);
        assert!(r.age_order.len() <= 2 * r.pending_messages() + 64);
        r.expire(1000.0);
        assert_eq!((r.pending_messages(), r.evicted()), (0, 1));
    }

    fn small_pool() -> Reassembler {
        Reassembler::new(Limits {
            max_message_bytes: 10 * CHUNK_LEN,
            max_pending_bytes: 16 * CHUNK_LEN,
            max_pending_messages: 6,
            max_source_messages: 2,
            max_source_bytes: 6 * CHUNK_LEN,
            ttl: 10.0,
            completed_memory: 64,
        })
    }

    #[test]
    fn a_flooding_source_evicts_only_its_own_messages() {
        let mut r = small_pool();
        let data = payload(3 * CHUNK_LEN);
        let fs = frames(&data, &ID);
        assert_eq!(r.push(&fs[0], 0.0, b"alice").unwrap(), None);
        for i in 0..200u8 {
            let flood = frames(&payload(2 * CHUNK_LEN), &[i; 16]);
            assert_eq!(r.push(&flood[0], 0.0, b"mallory").unwrap(), None);
            assert!(r.held_by(b"mallory").0 <= 2);
        }
        assert_eq!(r.evicted(), 198);
        assert_eq!(r.held_by(b"alice"), (1, 3 * CHUNK_LEN));
        assert_eq!(r.push(&fs[1], 0.0, b"alice").unwrap(), None);
        assert_eq!(
            r.push(&fs[2], 0.0, b"alice").unwrap().unwrap().payload,
            data
        );
        assert_eq!(r.held_by(b"alice"), (0, 0));
    }

    #[test]
    fn a_source_over_its_bytes_makes_room_among_its_own() {
        let mut r = small_pool();
        let big = frames(&payload(4 * CHUNK_LEN), &[1; 16]);
        let other = frames(&payload(4 * CHUNK_LEN), &[2; 16]);
        r.push(&big[0], 0.0, b"a").unwrap();
        r.push(&other[0], 0.0, b"a").unwrap(); // 8 chunks > 6: the first goes
        assert_eq!(r.held_by(b"a"), (1, 4 * CHUNK_LEN));
        assert_eq!(r.evicted(), 1);
        let too_big = frames(&payload(7 * CHUNK_LEN), &[3; 16]);
        assert!(r.push(&too_big[0], 0.0, b"a").is_err());
    }

    #[test]
    fn a_full_pool_evicts_from_the_source_holding_the_most() {
        let mut r = small_pool();
        let mut push = |id: u8, chunks: usize, source: &[u8]| {
            let fs = frames(&payload(chunks * CHUNK_LEN), &[id; 16]);
            r.push(&fs[0], 0.0, source).unwrap();
        };
        push(1, 2, b"a");
        push(2, 4, b"b"); // b holds the most bytes
        push(3, 2, b"b");
        push(4, 2, b"c");
        push(5, 2, b"c");
        push(6, 2, b"d"); // six messages: the pool is full
        push(7, 2, b"e");
        assert_eq!(r.held_by(b"b"), (1, 2 * CHUNK_LEN)); // its oldest went
        for source in [b"a", b"c", b"d", b"e"] {
            assert!(r.held_by(source).0 >= 1);
        }
        assert_eq!(r.pending_messages(), 6);
    }

    #[test]
    fn empty_and_exact_payloads() {
        // 4 * CHUNK_LEN + 1 needs 5 frames and is sent as 6: the last carries only padding.
        for len in [
            0,
            1,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            4 * CHUNK_LEN + 1,
            7 * CHUNK_LEN,
        ] {
            let data = payload(len);
            let mut r: Reassembler = Reassembler::new(Limits::default());
            let out: Vec<Complete> = frames(&data, &ID)
                .iter()
                .filter_map(|f| r.push(f, 0.0, b"").unwrap())
                .collect();
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].payload, data, "len {len}");
        }
    }
}
