//! Bytes from a client socket → the daemon's framing codec → `decode::<ClientMsg>` for every
//! frame. Never panics; cutting the input into reads of any size yields the same frames and
//! the same outcome; every decoded message survives re-encoding, and carries only keys and
//! names the text parsers accept. The same bodies decoded as `ServerMsg` never panic either.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtm_fuzz::check;
use rtm_proto::wire::{self, ClientMsg, ServerMsg, DEFAULT_MAX_REQUEST_FRAME};
use tokio_util::codec::Decoder;

#[derive(Debug, PartialEq)]
enum End {
    /// All bytes consumed as whole frames.
    Clean,
    /// A frame over the limit, or a partial frame at EOF: the session closes.
    Error,
}

/// Feeds `data` in reads of `chunk` bytes, as `FramedRead` does, then signals EOF.
fn frames(data: &[u8], chunk: usize, max: usize) -> (Vec<Vec<u8>>, End) {
    let mut codec = wire::codec(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(
                        f.len() <= max,
                        "a {}-byte frame passed a {max} limit",
                        f.len()
                    );
                    out.push(f.to_vec());
                }
                Ok(None) => break,
                Err(_) => return (out, End::Error),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => out.push(f.to_vec()),
            Ok(None) => return (out, End::Clean),
            Err(_) => return (out, End::Error),
        }
    }
}

fn body(b: &[u8]) {
    if let Ok(msg) = wire::decode::<ClientMsg>(b) {
        check::client_msg(&msg);
        let again = wire::encode(&msg).expect("a decoded message encodes");
        assert!(
            again.len() <= b.len(),
            "re-encoding grew {} -> {} bytes: {msg:?}",
            b.len(),
            again.len()
        );
        assert_eq!(wire::decode::<ClientMsg>(&again).ok(), Some(msg));
    }
    if let Ok(msg) = wire::decode::<ServerMsg>(b) {
        let again = wire::encode(&msg).expect("a decoded message encodes");
        assert_eq!(wire::decode::<ServerMsg>(&again).ok(), Some(msg));
    }
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes choose the read size and a small frame limit.
    let (ctl, data) = data.split_at(data.len().min(2));
    let chunk = ctl.first().map_or(1, |&c| c as usize % 64 + 1);
    let small_max = ctl.get(1).map_or(0, |&c| c as usize * 4);

    let whole = frames(data, data.len(), DEFAULT_MAX_REQUEST_FRAME);
    for f in &whole.0 {
        body(f);
    }
    let chunked = frames(data, chunk, DEFAULT_MAX_REQUEST_FRAME);
    assert_eq!(whole, chunked, "read size {chunk} changed the framing");

    let small = frames(data, chunk, small_max);
    // A smaller limit only cuts the frame sequence short, never changes a frame.
    assert!(small.0.len() <= whole.0.len());
    assert_eq!(small.0[..], whole.0[..small.0.len()]);
});
