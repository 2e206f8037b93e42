//! `rtmctl batch FILE|-`: one command per line, as `ip -batch`, many lines per frame.

use std::io::Read;

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
        let parsed = std::str::from_utf8(raw)
            .map_err(|_| "not valid UTF-8".to_string())
            .and_then(|l| grammar::parse_batch_line(l).map_err(|e| e.to_string()));
        match parsed {
            Ok(Some(op)) => batch.ops.push((n, op)),
            Ok(None) => {}
            Err(e) => batch.bad.push((n, e)),
        }
    }
    Ok(batch)
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
