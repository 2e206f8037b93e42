//! `rtmd` — the rtm daemon. Runs in the foreground, logs to stderr (`RUST_LOG`, default info;
//! `--log-format`).
//! Every setting is defined once in `rtm_actors::config`, as a flag and as a config-file key.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rtm_actors::config::{Config, Settings};

#[path = "../cli/mod.rs"]
mod cli;
#[path = "../cli/log_format.rs"]
mod log_format;

/// The rtm daemon: owns the routing and ARP tables, publishes them in shared memory and
/// notifies every registered client of each change.
#[derive(Parser, Debug)]
#[command(name = "rtmd", version, args_override_self = true)]
struct Args {
    #[command(flatten)]
    settings: Settings,
    /// TOML config file (keys as the long flags); SIGHUP re-reads its limits
    #[arg(long)]
    config: Option<PathBuf>,
    /// Check the config file (FILE, else --config's) with the flags given, as a start would;
    /// print the first error with its file, line, column and key; exit 0 if good, else 1
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    check_config: Option<Option<PathBuf>>,
    /// Log lines on stderr as text, JSON objects, or text with syslog priority prefixes for
    /// the journal; RUST_LOG filters them (unset: info)
    #[arg(long, value_enum, default_value = "text")]
    log_format: log_format::LogFormat,
    /// Print the man page (roff) on standard output
    #[arg(long, hide = true)]
    print_man_page: bool,
}

fn main() -> ExitCode {
    // Usage errors exit 1, as for rtmctl and rtm-client.
    let args: Args = match cli::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.print_man_page {
        use clap::CommandFactory;
        return match cli::man::print(Args::command(), "8", &[]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        };
    }
    if let Some(file) = args.check_config {
        return check_config(args.settings, file.or(args.config));
    }
    match log_format::filter_from_env() {
        Ok(filter) => {
            log_format::init(args.log_format, filter);
            log_format::log_panics();
        }
        Err(e) => {
            eprintln!("rtmd: {e}");
            return ExitCode::from(1);
        }
    }
    let config = match Config::from_flags(args.settings, args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rtmd: {e}");
            return ExitCode::from(1);
        }
    };
    match rtm_actors::run(config) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("rtmd: {e}");
            ExitCode::from(1)
        }
    }
}

/// `rtmd --check-config`: 0 if the file (and the flags) would start a daemon, else 1.
fn check_config(flags: Settings, file: Option<PathBuf>) -> ExitCode {
    let Some(file) = file else {
        eprintln!("rtmd: --check-config needs a FILE (or --config FILE)");
        return ExitCode::from(1);
    };
    match Config::from_flags(flags, Some(file.clone())) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rtmd: {e}");
            ExitCode::from(1)
        }
    }
}
