//! Arbitrary frames against an in-process `rtmd`: a structured session (handshake, messages,
//! damaged messages, raw bytes) per input. The daemon must never panic, answer or close every
//! session within the deadline, keep answering `Status` on a fresh connection, and keep its
//! tables consistent (see `rtm_fuzz::daemon`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtm_fuzz::daemon::daemon;
use rtm_fuzz::gen::FSession;

fuzz_target!(|input: FSession| {
    let d = daemon();
    d.session(input.wire_bytes());
    d.check_and_reset();
});
