//! Arbitrary frames against an in-process `rtmd`: a structured session (handshake, messages,
//! damaged messages, raw bytes) per input. The daemon must never panic, answer or close every
//! session within the deadline, keep answering `Status` on a fresh connection, and keep its
//! tables consistent (see `rtm_fuzz::daemon`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtm_fuzz::daemon::daemon;
use rtm_fuzz::gen::FSession;

fuzz_target!(|input: FSession| {
    let bytes = input.wire_bytes();
    // Replaying a crash with RTM_FUZZ_WIRE_OUT=FILE saves the exact bytes the harness wrote,
    // for a regression test against the real rtmd (fuzz/regressions/daemon_requests/).
    if let Some(path) = std::env::var_os("RTM_FUZZ_WIRE_OUT") {
        std::fs::write(path, &bytes).expect("write RTM_FUZZ_WIRE_OUT");
    }
    let d = daemon();
    d.session(bytes);
    d.check_and_reset();
});
