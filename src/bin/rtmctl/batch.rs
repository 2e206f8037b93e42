//! `rtmctl batch FILE|-`: one command per line, as `ip -batch`, many lines per frame. A file is
//! read whole first; standard input is applied as it arrives ([`run_stream`]).

use std::io::{BufRead, Read};
use std::time::Duration;

use rtm::wire::Op;
use rtm::Client;

use crate::{cli, grammar, Fail};

/// A batch file: every change with its line number, and the first line that did not parse
/// (with `--force`: all of them).
#[derive(Default)]
pub struct Batch {
    ops: Vec<(usize, Op)>,
    bad: Vec<(usize, String)>,
}

pub fn read(file: &str) -> Result<Batch, Fail> {
    let mut bytes = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| Fail::Usage(format!("cannot read batch file \"{file}\": {e}")))?;
    let mut batch = Batch::default();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        match parse_line(raw) {
            Ok(Some(op)) => batch.ops.push((n, op)),
            Ok(None) => {}
            Err(e) => batch.bad.push((n, e)),
        }
    }
    Ok(batch)
}

/// One line of a batch: a change, nothing (blank or comment), or why it is not a change.
fn parse_line(raw: &[u8]) -> Result<Option<Op>, String> {
    std::str::from_utf8(raw)
        .map_err(|_| "not valid UTF-8".to_string())
        .and_then(|l| grammar::parse_batch_line(l).map_err(|e| e.to_string()))
}

/// Lines of standard input that have arrived go out as one frame after this long...
const STREAM_WAIT: Duration = Duration::from_millis(10);
/// ...or once this many have.
const STREAM_LINES: usize = 1000;

/// `batch -`: applies lines as they arrive, as `ip -batch -` does: what has arrived goes out as
/// one frame within [`STREAM_WAIT`] of its first line, or at [`STREAM_LINES`] lines. Frames go
/// one at a time, so without `force` nothing after a refused or bad line is applied.
pub async fn run_stream(client: &mut Client, force: bool) -> Result<(), Fail> {
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<(usize, Result<Option<Op>, String>)>(4 * STREAM_LINES);
    // Standard input blocks: a thread reads it. It ends with its input, or when we stop
    // listening (the process then exits without waiting for it).
    std::thread::spawn(move || {
        for (i, raw) in std::io::stdin().lock().split(b'\n').enumerate() {
            let item = match raw {
                Ok(raw) => parse_line(&raw),
                Err(e) => Err(format!("cannot read standard input: {e}")),
            };
            if tx.blocking_send((i + 1, item)).is_err() {
                return;
            }
        }
    });
    let mut errors: Vec<(usize, String)> = Vec::new();
    let (mut refused, mut bad, mut ended) = (false, false, false);
    while !ended {
        let mut pending: Vec<(usize, Op)> = Vec::new();
        let mut deadline = None;
        // Gather what arrives until the frame is full, its time is up, a bad line stops the
        // run, or the input ends.
        loop {
            let next = match deadline {
                None => rx.recv().await,
                Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                    Ok(item) => item,
                    Err(_) => break,
                },
            };
            match next {
                None => {
                    ended = true;
                    break;
                }
                Some((n, Ok(Some(op)))) => {
                    pending.push((n, op));
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + STREAM_WAIT);
                    if pending.len() >= STREAM_LINES.min(rtm::wire::BATCH_CHUNK) {
                        break;
                    }
                }
                Some((_, Ok(None))) => {}
                Some((n, Err(e))) => {
                    errors.push((n, e));
                    bad = true;
                    if !force {
                        ended = true;
                        break;
                    }
                }
            }
        }
        if pending.is_empty() {
            continue;
        }
        let lines: Vec<usize> = pending.iter().map(|(n, _)| *n).collect();
        let (_, failures) = client
            .batch(pending.into_iter().map(|(_, op)| op).collect(), force)
            .await?;
        for f in &failures {
            errors.push((lines[f.index as usize], f.failure.to_string()));
            refused = true;
        }
        if refused && !force {
            // A bad line after the refused one was never reached.
            errors.retain(|(n, _)| *n <= lines[failures[0].index as usize]);
            bad = false;
            break;
        }
    }
    errors.sort_by_key(|(n, _)| *n);
    for (n, e) in &errors {
        cli::warn(format_args!("rtmctl: line {n}: {e}"));
    }
    match (refused, bad) {
        (true, _) => Err(Fail::Code(2)),
        (false, true) => Err(Fail::Code(1)),
        (false, false) => Ok(()),
    }
}

/// Sends the batch in frames of many changes each. Without `force` everything before the first
/// bad line is applied and the run stops there; with `force` every good line is applied and
/// every bad one reported, in line order.
pub async fn run(client: &mut Client, batch: Batch, force: bool) -> Result<(), Fail> {
    let first_bad = batch.bad.first().map(|(n, _)| *n);
    let ops: Vec<(usize, Op)> = batch
        .ops
        .into_iter()
        .filter(|(n, _)| force || first_bad.is_none_or(|b| *n < b))
        .collect();
    let mut errors: Vec<(usize, String)> = Vec::new();
    for chunk in ops.chunks(rtm::wire::BATCH_CHUNK) {
        let lines: Vec<usize> = chunk.iter().map(|(n, _)| *n).collect();
        let (_, failures) = client
            .batch(chunk.iter().map(|(_, op)| op.clone()).collect(), force)
            .await?;
        errors.extend(
            failures
                .iter()
                .map(|f| (lines[f.index as usize], f.failure.to_string())),
        );
        if !errors.is_empty() && !force {
            break;
        }
    }
    let refused = !errors.is_empty();
    if force || !refused {
        // Without --force only the first bad line is reached, and only if nothing before it
        // was refused.
        let reached = if force { batch.bad.len() } else { 1 };
        errors.extend(batch.bad.into_iter().take(reached));
    }
    errors.sort_by_key(|(n, _)| *n);
    for (n, e) in &errors {
        cli::warn(format_args!("rtmctl: line {n}: {e}"));
    }
    match (refused, first_bad) {
        (true, _) => Err(Fail::Code(2)),
        (false, Some(_)) => Err(Fail::Code(1)),
        (false, None) => Ok(()),
    }
}
