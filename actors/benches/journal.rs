//! What rtmd's journal (`--state-dir`) costs: a durable commit for each batch size and fsync
//! policy, and compacting and reopening a route table of N routes.
//!
//! `cargo bench -p rtm-actors --bench journal`. The files go to a fresh directory under
//! `RTM_JOURNAL_BENCH_DIR` (default: the system's temporary directory). With `fsync always` a
//! commit costs what the disk takes to flush, so point it at the file system a state directory
//! would live on.
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::LazyLock;

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use rtm_actors::journal::{FsyncPolicy, Journal};
use rtm_proto::shm::Versioned;
use rtm_proto::{Prefix, Route};

static BASE: LazyLock<PathBuf> = LazyLock::new(|| {
    let base = std::env::var_os("RTM_JOURNAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).expect("RTM_JOURNAL_BENCH_DIR");
    base
});

fn main() {
    eprintln!("journal files under {}", BASE.display());
    divan::main();
}

/// Route `i`: a distinct /24 for every `i` below 2^24.
fn route(i: u32) -> Route {
    Route {
        dst: Prefix::new(Ipv4Addr::from(i << 8), 24).expect("a /24"),
        via: Some(Ipv4Addr::new(192, 168, 1, (i % 250) as u8 + 1)),
        dev: Some("eth0".parse().expect("interface name")),
        metric: i,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(&*BASE).expect("temporary state directory")
}

/// One request's commit: stage `batch` changes, then commit them (one write of one frame, and
/// with `always` one `fdatasync`). The throughput counts changes.
mod commit {
    use super::*;

    const BATCHES: &[u64] = &[1, 16, 256, 4096];

    #[divan::bench(args = BATCHES)]
    fn always(bencher: Bencher, batch: u64) {
        commits(bencher, FsyncPolicy::Always, batch);
    }

    #[divan::bench(args = BATCHES)]
    fn never(bencher: Bencher, batch: u64) {
        commits(bencher, FsyncPolicy::Never, batch);
    }

    fn commits(bencher: Bencher, policy: FsyncPolicy, batch: u64) {
        let dir = state_dir();
        let (mut journal, _) =
            Journal::<Route>::open(dir.path(), "route", policy).expect("open the journal");
        let routes: Vec<Route> = (0..batch as u32).map(route).collect();
        let mut seq = 0u64;
        bencher.counter(ItemsCount::new(batch)).bench_local(|| {
            for r in &routes {
                seq += 1;
                journal.stage_put(seq, r).expect("stage");
            }
            journal.commit().expect("commit");
        });
    }
}

/// A table of `n` routes: compacting it (what the table actor is busy with when its journal
/// has grown too large, and at every start) and opening it again (a start after a clean stop).
/// Both with `fsync always`. The throughput counts routes and snapshot bytes.
mod compaction {
    use super::*;

    const ROUTES: &[u32] = &[16_384, 131_072, 1_048_576];

    fn table(n: u32) -> Vec<Versioned<Route>> {
        (0..n)
            .map(|i| Versioned {
                entry: route(i),
                seq: u64::from(i) + 1,
            })
            .collect()
    }

    /// Writes the snapshot (and an empty journal), synced and renamed into place.
    #[divan::bench(args = ROUTES, sample_count = 10)]
    fn write(bencher: Bencher, n: u32) {
        let table = table(n);
        let dir = state_dir();
        let (mut journal, _) = Journal::<Route>::open(dir.path(), "route", FsyncPolicy::Always)
            .expect("open the journal");
        journal.compact(&table, u64::from(n)).expect("compact");
        bencher
            .counter(ItemsCount::new(n))
            .counter(BytesCount::new(journal.snapshot_len()))
            .bench_local(|| journal.compact(&table, u64::from(n)).expect("compact"));
    }

    /// Reads and checks the snapshot back into a table (the journal is empty).
    #[divan::bench(args = ROUTES, sample_count = 10)]
    fn reopen(bencher: Bencher, n: u32) {
        let dir = state_dir();
        let snapshot_len = {
            let (mut journal, _) = Journal::<Route>::open(dir.path(), "route", FsyncPolicy::Always)
                .expect("open the journal");
            journal.compact(&table(n), u64::from(n)).expect("compact");
            journal.snapshot_len()
        };
        bencher
            .counter(ItemsCount::new(n))
            .counter(BytesCount::new(snapshot_len))
            .bench_local(|| {
                let (journal, recovered) =
                    Journal::<Route>::open(dir.path(), "route", FsyncPolicy::Always)
                        .expect("reopen");
                // The lock goes with the journal; the table is dropped outside the timing.
                drop(journal);
                assert_eq!(recovered.entries.len(), n as usize);
                recovered
            });
    }
}
