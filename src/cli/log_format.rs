//! rtmd's log output: the `RUST_LOG` filter (an invalid one is a start-up error) and
//! `--log-format text|json|journald`, all on stderr.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Time, level, module, message and fields (colours on a terminal only)
    Text,
    /// One JSON object per line: timestamp, level, target, message and fields at the top level
    Json,
    /// The text line with its syslog priority (`<6>`) in place of the time and level, which
    /// the journal reads from a service's stderr
    Journald,
}

/// The filter `RUST_LOG` asks for (`info` when unset or empty); an error names the value.
pub fn filter_from_env() -> Result<EnvFilter, String> {
    match std::env::var("RUST_LOG") {
        Err(std::env::VarError::NotPresent) => Ok(EnvFilter::new("info")),
        Err(std::env::VarError::NotUnicode(v)) => Err(format!("RUST_LOG {v:?} is not UTF-8")),
        Ok(v) if v.trim().is_empty() => Ok(EnvFilter::new("info")),
        Ok(v) => EnvFilter::builder()
            .parse(&v)
            .map_err(|e| format!("invalid RUST_LOG \"{v}\": {e}")),
    }
}

/// Installs the global subscriber.
pub fn init(format: LogFormat, filter: EnvFilter) {
    let base = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A log write that fails (stderr closed) must not panic in whatever actor logged.
        .log_internal_errors(false)
        .with_env_filter(filter);
    match format {
        // Colour codes only on a terminal, never in a log file or the journal.
        LogFormat::Text => base
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => base
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Journald => base
            .with_ansi(false)
            .event_format(Priority(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_level(false)
                    .with_ansi(false),
            ))
            .init(),
    }
}

/// Reports panics as log lines in the chosen format (an actor's panic is caught and the actor
/// restarted; the default hook would put a multi-line message on stderr between log lines).
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(at, "panic: {message}");
    }));
}

/// Prefixes each line with its syslog priority: `<3>` error, `<4>` warning, `<6>` info,
/// `<7>` debug and trace.
struct Priority<F>(F);

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}
