//! `framing::parse` on arbitrary bytes: never panics, and every frame it accepts is the
//! one `framing::encode` makes for its payload (the encoding is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nymchat_native::framing::{self, CHUNK_LEN, FRAME_SIZE};

fn check(frame: &[u8]) {
    let Ok((header, data)) = framing::parse(frame) else {
        return;
    };
    assert_eq!(frame.len(), FRAME_SIZE);
    assert!(header.index < header.count);
    assert_eq!(framing::frame_count(header.total_len), Ok(header.count));
    let start = header.index * CHUNK_LEN;
    assert_eq!(
        data.len(),
        header.total_len.saturating_sub(start).min(CHUNK_LEN)
    );
    // Re-encode a payload that carries `data` at this frame's place: frame `index` of the
    // result must be this frame, byte for byte. (Bounded so one input stays cheap.)
    if header.count <= 64 {
        let mut payload = vec![0u8; header.total_len];
        if !data.is_empty() {
            payload[start..start + data.len()].copy_from_slice(data);
        }
        let encoded = framing::encode(&payload, &header.message_id).expect("encodes");
        assert_eq!(
            &encoded[header.index * FRAME_SIZE..][..FRAME_SIZE],
            frame,
            "parse accepted a frame encode does not make"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Most inputs are not FRAME_SIZE long: also parse them cut or zero-padded to size, so
    // the header and padding checks see the mutated bytes.
    let mut frame = data.to_vec();
    frame.resize(FRAME_SIZE, 0);
    check(&frame);
});
