//! What the multi-process shared-memory stress tests share: the test binary re-executed as
//! reader processes on one table file (of any kind), a writer loop that changes the table and republishes
//! generations until every reader is reading, and collecting what the readers counted.
//!
//! The writer waits for the readers rather than writing for a fixed time: a reader process that
//! starts late on a busy machine still reads while the table changes under it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rtm_proto::shm::{Record, TableReader, TableWriter};

/// `table_seq` value telling readers the writer is done.
const STOP: u64 = u64::MAX;
/// Reader processes per test.
const READERS: usize = 2;
/// The writer changes the table for at least this long...
const WRITE_FOR: Duration = Duration::from_secs(2);
/// ...in rounds of this many changes (at least one round, however long it takes: a change of a
/// short prefix rewrites much of the lookup table, which a debug build does slowly).
const CHUNK: usize = 1000;
/// The writer republishes the table as a new generation this often.
const REPUBLISH_EVERY: Duration = Duration::from_millis(300);
/// Bounds a hang only (readers that never start reading, or never exit once told to stop): far
/// longer than any loaded machine needs, and shorter than the test runner's own limit.
const HANG: Duration = Duration::from_secs(120);

/// One stress test: which `#[test]` the binary re-executes as a reader, how it tells a reader
/// from the writer, and what its readers count.
pub struct Stress {
    /// The test's name, run with `--exact` in the reader processes.
    pub test: &'static str,
    /// Set (to the table's path) in the reader processes.
    pub role_env: &'static str,
    /// What a reader prints before its count, e.g. `"READS "`.
    pub tag: &'static str,
    /// What the count is, e.g. `"consistent reads"`.
    pub counted: &'static str,
}

impl Stress {
    /// In a reader process, runs `read` on the table and prints its count after the tag (or
    /// exits 3 with its error), then returns `true`; in the writer's process returns `false`.
    pub fn reader(&self, read: impl FnOnce(&Path) -> Result<u64, String>) -> bool {
        let Ok(path) = std::env::var(self.role_env) else {
            return false;
        };
        match read(Path::new(&path)) {
            Ok(n) => {
                // The harness has already printed "test ... " on this line; the parent finds the tag.
                println!("{}{n}", self.tag);
                assert!(n > 0, "no {}", self.counted);
            }
            Err(e) => {
                eprintln!("reader {}: {e}", std::process::id());
                std::process::exit(3);
            }
        }
        true
    }

    /// Starts the readers on the table at `path`, then calls `change(w, n)` for n = `first`,
    /// `first + 1`, ... as fast as it can, in rounds of [`CHUNK`]; between rounds it republishes
    /// what a reader sees as a new generation every [`REPUBLISH_EVERY`]. It stops after the
    /// round in which it has written for [`WRITE_FOR`] and republished at least once since every
    /// reader was reading. Then it tells the readers to stop, checks that each succeeded and
    /// counted something, and returns how often it republished.
    pub fn write_while_read<R: Record>(
        &self,
        path: &Path,
        w: &mut R::Writer,
        first: u64,
        mut change: impl FnMut(&mut R::Writer, u64),
    ) -> u32 {
        let mut readers = Readers::spawn(self, path);
        let start = Instant::now();
        let mut n = first;
        let mut next_republish = REPUBLISH_EVERY;
        let (mut republished, mut republished_while_read) = (0, 0);
        loop {
            for _ in 0..CHUNK {
                change(w, n);
                n += 1;
            }
            let elapsed = start.elapsed();
            if elapsed < next_republish {
                continue;
            }
            // A republish counts once every reader is reading: it retires the mapping under them.
            let all_reading = readers.all_reading();
            next_republish = elapsed + REPUBLISH_EVERY;
            // Read back what we wrote (through a reader) and publish it as a new generation.
            let entries = <R::Reader as TableReader<R>>::open(path).unwrap().entries();
            assert_eq!(entries.len(), w.len());
            w.republish(entries).unwrap();
            republished += 1;
            republished_while_read += u32::from(all_reading);
            if elapsed >= WRITE_FOR && republished_while_read > 0 {
                break;
            }
            // A reader that ended early failed: stop writing and report it below.
            if readers.any_exited() {
                break;
            }
            assert!(
                elapsed < HANG,
                "the readers did not all start reading within {HANG:?}"
            );
        }
        w.set_table_seq(STOP);
        let deadline = Instant::now() + HANG;
        for (k, child) in readers.children.iter_mut().enumerate() {
            let count = reap_reader(k, child, deadline, self.tag);
            println!("reader {k}: {count} {}", self.counted);
        }
        println!(
            "writer: {n} changes, {republished} republishes, final generation {}",
            w.generation()
        );
        republished
    }
}

/// A reader's loop: opens the table at `path` and runs `round` on it, re-mapping retired
/// generations, until the writer marks the table stopped. After its first round the reader
/// leaves a mark that it is reading (see [`Readers::all_reading`]).
pub fn read_rounds<R: Record>(
    path: &Path,
    mut round: impl FnMut(&R::Reader) -> Result<(), String>,
) -> Result<(), String> {
    let writer = std::os::unix::process::parent_id();
    let mut r = <R::Reader as TableReader<R>>::open(path).map_err(|e| e.to_string())?;
    let mut marked = false;
    loop {
        if r.is_retired() {
            r.refresh().map_err(|e| e.to_string())?;
        }
        if r.table_seq() == STOP {
            return Ok(());
        }
        // A writer that died (this process was handed to another parent) never says stop. One
        // that is merely slow is waited for: a round of its changes may take long.
        if std::os::unix::process::parent_id() != writer {
            return Err("the writer went away without marking the table stopped".into());
        }
        round(&r)?;
        if !marked {
            std::fs::File::create(reading_mark(path, std::process::id()))
                .map_err(|e| format!("marking this reader as reading: {e}"))?;
            marked = true;
        }
    }
}

/// The file a reader process creates once it is reading the table at `table`.
fn reading_mark(table: &Path, pid: u32) -> PathBuf {
    let mut name = table.as_os_str().to_owned();
    name.push(format!(".reading.{pid}"));
    PathBuf::from(name)
}

/// The reader processes, killed (and reaped) if the writer fails before collecting them.
struct Readers {
    table: PathBuf,
    children: Vec<Child>,
}

impl Readers {
    fn spawn(stress: &Stress, table: &Path) -> Readers {
        let exe = std::env::current_exe().unwrap();
        let children = (0..READERS)
            .map(|_| {
                Command::new(&exe)
                    .args(["--exact", stress.test, "--nocapture", "--test-threads=1"])
                    .env(stress.role_env, table)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        Readers {
            table: table.to_path_buf(),
            children,
        }
    }

    /// Whether every reader has done a first round.
    fn all_reading(&self) -> bool {
        self.children
            .iter()
            .all(|c| reading_mark(&self.table, c.id()).exists())
    }

    fn any_exited(&mut self) -> bool {
        self.children
            .iter_mut()
            .any(|c| c.try_wait().unwrap().is_some())
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        for c in &mut self.children {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Waits for reader `k` until `deadline` (killing it by its handle past that), checks that it
/// succeeded, and returns the count it printed after `tag` (e.g. `"READS "`), which must be > 0.
fn reap_reader(k: usize, child: &mut Child, deadline: Instant, tag: &str) -> u64 {
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("reader {k} (pid {}) timed out and was killed", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "reader {k} failed: {status}\n{out}\n{err}"
    );
    let n: u64 = out
        .lines()
        .find_map(|l| l.split(tag).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("reader {k} printed no count:\n{out}\n{err}"))
        .parse()
        .unwrap();
    assert!(n > 0, "reader {k} counted nothing");
    n
}
