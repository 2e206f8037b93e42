//! What the command-line binaries share (not part of the library): argument parsing with rtm's
//! exit codes, the single-threaded runtime they run on, output that never panics, and the text
//! and JSON shapes they print ([`render`], [`json`]).
//!
//! Each binary includes this folder with `#[path = ".../cli/mod.rs"] mod cli;`. `child.rs`,
//! running a child process under a deadline, is included on its own by `rtm-bench` and the
//! integration tests.

// Each binary compiles its own copy and uses only part of it.
#![allow(dead_code)]

pub mod json;
pub mod man;
pub mod render;

use std::io::Write;
use std::process::ExitCode;

use rtm::ClientError;

/// Parses the command line; `--help`/`--version` exit 0 and usage errors exit 1 (clap's own
/// convention is 2, which rtm reserves for "the daemon refused").
pub fn parse_args<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// The exit code for a failed exchange with the daemon: 2 when the daemon refused, 3 when it
/// cannot be reached or the connection broke (docs/cli.md, "Exit codes").
pub fn exit_code(e: &ClientError) -> u8 {
    match e {
        ClientError::Refused(_) => 2,
        _ => 3,
    }
}

/// A current-thread tokio runtime: a CLI waits on one socket and a few signals.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Writes to standard output. An error — the reader went away, as in `rtm-client | head -1` —
/// is returned rather than a panic, so a subscriber can deregister and stop.
pub fn print(s: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()
}

/// One line on standard error. A closed stderr is ignored (`eprintln!` would panic on it).
pub fn warn(msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}
