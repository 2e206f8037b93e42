//! What the command-line binaries share: argument parsing with rtm's exit codes, the
//! single-threaded runtime they run on, and output that never panics.

use std::io::Write;
use std::process::ExitCode;

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
