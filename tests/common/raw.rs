//! The socket protocol spoken by hand, for tests that need what the client library hides: a
//! chosen protocol version, pipelined requests, unread replies.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use rtm::wire::{self, Caps, ClientMsg, Hello, ServerMsg};

use super::{Instance, DEADLINE};

/// A length-prefixed frame of `m`.
pub fn frame(m: &ClientMsg) -> Vec<u8> {
    let body = wire::encode(m).unwrap();
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

/// A hello at protocol `version`, without a SIGUSR1 handler.
pub fn hello(name: &str, version: u16) -> Vec<u8> {
    frame(&ClientMsg::Hello(Hello {
        version,
        name: name.into(),
        caps: Caps::default(),
    }))
}

/// Reads one server frame.
pub fn read_msg(s: &mut UnixStream) -> ServerMsg {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("frame length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("frame body");
    wire::decode(&body).expect("a server message")
}

/// A connection at protocol `version` that said hello and got its welcome at that version.
pub fn welcomed(inst: &Instance, name: &str, version: u16) -> UnixStream {
    let mut s = UnixStream::connect(&inst.socket).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(&hello(name, version)).unwrap();
    match read_msg(&mut s) {
        ServerMsg::Welcome(w) => assert_eq!(w.version, version),
        other => panic!("{name}: expected a welcome, got {other:?}"),
    }
    s
}
