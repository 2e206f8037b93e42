//! What the command-line binaries share: argument parsing with rtm's exit codes and the
//! single-threaded runtime they run on.

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
