//! Model-checks the route file's read protocol (layout: "Change and reclamation") with loom:
//! a read racing with the writer answers what the table said at some moment, even when the
//! writer reuses, after an epoch, the heap lines and next-hop records the read is looking at.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p rtm-proto --test loom_route --release --target-dir
//! target/loom`
//!
//! # What runs
//!
//! The readers are the real reader code: `view::consistent` around `View::value` (through
//! `chunk::search` for a chunk), `View::find` and `View::nexthop_for` (through
//! `seqlock::try_read_words`), on a tiny route file made of loom atomics: a one-word top, tier 1
//! and next-hop region, a value table of a few entries, and five heap lines — line 0 unused (a
//! top word 0 means "no page"), lines 1 and 2 for chunks and blocks, then the first line of the
//! LPM page and of the block page (every address of the models is in slot 0 or 1, whose words
//! are the two halves of the first word of a page's first line; a page's other lines are never
//! read). The file's LPM heap and block heap are the same five lines here: each scenario uses
//! only one of them, and sharing changes no ordering. Chunks are encoded by the writer's own
//! `chunk::encode`.
//!
//! The writer takes the steps of `RouteWriter` in its order, with the same loads, stores and
//! orderings (a copy of a few lines each: the writer itself needs a file): `write_lines` (plain
//! stores into free lines), a value-table entry stored with `Release` before a chunk names it,
//! `set_slot_word` (the page word stored with `Release`),
//! `write_record` (`seqlock::write_words` on a next-hop record) and `advance_epoch` (`epoch`
//! stored with `Release`, then a `Release` fence), then memory freed before the epoch is reused
//! at once. It runs on the model's own thread; the readers run on threads it spawns (see
//! [`explore`] for why). Scenarios:
//!
//! - `chunk_lines_reused`: a slot's chunk is replaced by one in other lines naming new
//!   value-table entries; epoch; a third chunk is written into the first chunk's line, naming
//!   the first chunk's value entries rewritten with other values, and published. A reader looks
//!   up one address (`View::value`); once with one reader, once with two.
//! - `next_hop_record_reused`: a route moves to a new next-hop record; epoch; its old record is
//!   rewritten in place for another route, which is published. The reader looks up an address
//!   of the first route as `RouteReader::lookup` does (`View::value`, then the value's record,
//!   read by `View::nexthop_for` under its seqlock as `View::route` reads it).
//! - `block_lines_and_record_reused`: the same change seen by exact match: the route's entry
//!   block is replaced by one in other lines; epoch; the old record is rewritten for a second
//!   route and a block holding both routes is written into the old block's line. The reader
//!   reads the first route as `RouteReader::get` does (`View::find`, then `View::nexthop_for`).
//!
//! # What is checked
//!
//! Every answer a read gives must be the answer of one of the states the writer published for
//! that address or prefix (the chunks' values, the routes' next hops and sequence numbers): never
//! a mix of an old chunk's or block's words with a new one's, never a value naming a next-hop
//! record that holds another route's fields. With the real protocol a read meets no garbage at
//! all without the epoch telling it to retry (`Unstable::Grown` would mean it did). After the
//! writer is joined every read answers as the last state. And over each exploration of the real
//! protocol, racing reads answered every state's answer at their first attempt and some read was
//! retried because the epoch moved: loom did reach the orderings the model is about.
//!
//! The negative controls (`#[should_panic]`) run the same scenarios with one part of the
//! protocol missing and expect loom to find a wrong answer, which shows the scenarios reach the
//! interleavings that part is there for:
//!
//! - the reader without its second load of the epoch (a copy of `consistent` without it), the
//!   writer reusing memory without moving the epoch, the writer's epoch store weakened to
//!   `Relaxed` (all three scenarios);
//! - the writer's fence after the epoch store left out (`chunk_lines_reused`);
//! - the reader's fence before its second load of the epoch left out (`chunk_lines_reused`,
//!   `block_lines_and_record_reused`).
//!
//! In the controls a read that meets garbage is not an error in itself (the real reader
//! retries it); only wrong answers are.
//!
//! # What it does not show
//!
//! In these scenarios some fences of the protocol are backed up by a fence of the code around
//! them, and the models find no wrong answer without them:
//!
//! - The writer's `Release` fence after the epoch store, when the memory reused after it is a
//!   next-hop record or comes after one (`RouteWriter::upsert` writes a new record before the
//!   chunk and the block that name it): `seqlock::write_words` has a `Release` fence of its own
//!   between the epoch store and the words (`next_hop_record_reused`,
//!   `block_lines_and_record_reused`). The fence is needed when only heap lines are reused (a
//!   route sharing a record): `chunk_lines_reused` fails without it.
//! - The reader's `Acquire` fence before its second load of the epoch, when the read ends with a
//!   next-hop record (`next_hop_record_reused`): `seqlock::try_read_words` ends with one.
//! - The reader's `Acquire` fence after its first load of the epoch, in every scenario: each of
//!   these reads starts with a load followed by an `Acquire` fence of its own (the top word's in
//!   `View::value` and `View::find`).
//!
//! At most, reads then meet garbage with the epoch unchanged, which the real reader retries.
//!
//! Nor does it show: trees of more than one line, long blocks, pages made or freed, tier 1
//! changes, a heap that grows (`Unstable::Grown` with the epoch unchanged), new file generations,
//! batches (`RouteReader::lookup_batch` makes the same loads per address), more than one epoch
//! per scenario or an epoch wrapping around, two readers of a next-hop record (too many
//! executions to explore in minutes), or interleavings that need more thread switches than each
//! test's preemption bound.
#![forbid(unsafe_code)]
#![cfg(loom)]

use std::cell::Cell;
use std::fmt::Debug;

use loom::sync::atomic::{
    fence, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use loom::sync::Arc;
use loom::thread;
use rtm_proto::shm::route::chunk;
use rtm_proto::shm::route::layout::{
    block_word, chunk_word, entry_word, value, value_depth, value_nh, ORIGIN_RTM,
};
use rtm_proto::shm::route::view::{consistent, Garbage, NextHop, Unstable, View};
use rtm_proto::shm::seqlock::write_words;

/// A heap line or a next-hop record.
type Line = [AtomicU64; 8];

/// Heap lines of the model file.
const LINES: usize = 5;
/// The lines chunks and blocks are written into.
const FIRST: u32 = 1;
const SECOND: u32 = 2;
/// The first line of the LPM page and of the block page.
const LPM_PAGE: u32 = 3;
const BLK_PAGE: u32 = 4;
/// Next-hop records of the model file (record 0 is never used).
const RECORDS: usize = 3;
/// Value-table entries of the model file (entry 0 is the value 0).
const VALUES: usize = 5;

/// A model route file: the regions a [`View`] reads, made of loom atomics.
struct File {
    epoch: AtomicU64,
    top_lpm: [AtomicU32; 1],
    top_blk: [AtomicU32; 1],
    tier1: [AtomicU32; 1],
    values: [AtomicU32; VALUES],
    nh: [Line; RECORDS],
    heap: [Line; LINES],
}

/// A model route file's contents before the writer starts.
#[derive(Default)]
struct Image {
    values: [u32; VALUES],
    nh: [[u64; 8]; RECORDS],
    heap: [[u64; 8]; LINES],
}

impl Image {
    /// Stores `lines` from heap line `at` on.
    fn lines(&mut self, at: u32, lines: &[[u64; 8]]) {
        self.heap[at as usize..at as usize + lines.len()].copy_from_slice(lines);
    }

    /// Slot word `w` of `slot` (0 or 1) in the page at `page`.
    fn slot_word(&mut self, page: u32, slot: usize, w: u32) {
        self.heap[page as usize][0] |= u64::from(w) << (32 * slot);
    }

    /// Value-table entry `i`.
    fn value(&mut self, i: u16, v: u32) {
        self.values[usize::from(i)] = v;
    }

    /// Next-hop record `i`, as a file's first build leaves it (written once).
    fn record(&mut self, i: u32, hop: &NextHop) {
        self.nh[i as usize][0] = 2;
        self.nh[i as usize][1..].copy_from_slice(&hop.encode());
    }

    fn file(&self) -> File {
        let atomics = |l: &[u64; 8]| std::array::from_fn(|i| AtomicU64::new(l[i]));
        File {
            epoch: AtomicU64::new(0),
            top_lpm: [AtomicU32::new(LPM_PAGE)],
            top_blk: [AtomicU32::new(BLK_PAGE)],
            tier1: [AtomicU32::new(0)],
            values: std::array::from_fn(|i| AtomicU32::new(self.values[i])),
            nh: std::array::from_fn(|i| atomics(&self.nh[i])),
            heap: std::array::from_fn(|i| atomics(&self.heap[i])),
        }
    }
}

/// How the writer moves the epoch on: as `RouteWriter::advance_epoch` does, or broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Epoch {
    AsTheWriter,
    /// Memory is reused without moving the epoch.
    NotMoved,
    /// `store(e + 1, Relaxed); fence(Release)`.
    RelaxedStore,
    /// `store(e + 1, Release)` without the fence.
    NoFence,
}

/// How a reader checks the epoch: with `view::consistent`, or with a copy of it missing a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Consistent,
    /// Without the second load of the epoch.
    FirstLoadOnly,
    /// Without the `Acquire` fence before the second load.
    NoSecondFence,
}

impl File {
    fn view(&self) -> View<'_> {
        View {
            epoch: &self.epoch,
            top_lpm: &self.top_lpm,
            top_blk: &self.top_blk,
            tier1: &self.tier1,
            values: &self.values,
            nh: &self.nh,
            lpm: &self.heap,
            blk: &self.heap,
        }
    }

    // ===== the writer's steps (`RouteWriter`) =====

    /// `write_lines`: a chunk's or block's lines, into lines no reader can reach.
    fn write_lines(&self, at: u32, lines: &[[u64; 8]]) {
        for (line, words) in self.heap[at as usize..].iter().zip(lines) {
            for (w, &v) in line.iter().zip(words) {
                w.store(v, Relaxed);
            }
        }
    }

    /// A value-table entry, stored before a chunk names it.
    fn write_value(&self, i: u16, v: u32) {
        self.values[usize::from(i)].store(v, Release);
    }

    /// `set_slot_word` of slot 0 or 1 of the page at `page` (which exists).
    fn set_slot_word(&self, page: u32, slot: usize, w: u32) {
        let word = &self.heap[page as usize][0];
        let shift = 32 * slot;
        let old = word.load(Relaxed);
        word.store(
            (old & !(0xffff_ffffu64 << shift)) | (u64::from(w) << shift),
            Release,
        );
    }

    /// `write_record`: a next-hop record's words under its seqlock.
    fn write_record(&self, i: u32, hop: &NextHop) {
        let (seq, rest) = self.nh[i as usize]
            .split_first()
            .expect("a line has 8 words");
        write_words(seq, rest.try_into().expect("7 words"), &hop.encode());
    }

    /// `advance_epoch`: after it, what was freed before may be reused.
    fn advance_epoch(&self, how: Epoch) {
        let e = self.epoch.load(Relaxed);
        match how {
            Epoch::AsTheWriter => {
                self.epoch.store(e + 1, Release);
                fence(Release);
            }
            Epoch::NotMoved => {}
            Epoch::RelaxedStore => {
                self.epoch.store(e + 1, Relaxed);
                fence(Release);
            }
            Epoch::NoFence => self.epoch.store(e + 1, Release),
        }
    }
}

/// A reader thread's side: how it checks the epoch, and how many attempts its reads made.
struct Reader<'a> {
    file: &'a File,
    check: Check,
    tries: Cell<u32>,
}

impl Reader<'_> {
    fn new(file: &File, check: Check) -> Reader<'_> {
        Reader {
            file,
            check,
            tries: Cell::new(0),
        }
    }

    /// Runs `read` under the epoch protocol.
    fn read<T>(&self, mut read: impl FnMut() -> Result<T, Garbage>) -> Result<T, Unstable> {
        let read = || {
            self.tries.set(self.tries.get() + 1);
            read()
        };
        match self.check {
            Check::Consistent => consistent(&self.file.epoch, read),
            Check::FirstLoadOnly => first_load_only(&self.file.epoch, read),
            Check::NoSecondFence => without_second_fence(&self.file.epoch, read),
        }
    }

    /// `RouteReader::lookup`'s read: the route matching `addr` as (prefix length, next hop).
    fn lookup(&self, addr: u32) -> Result<Option<(u8, NextHop)>, Unstable> {
        let v = self.file.view();
        self.read(|| {
            let val = v.value(addr)?;
            if val == 0 {
                return Ok(None);
            }
            Ok(Some((value_depth(val), v.nexthop_for(value_nh(val), 0)?)))
        })
    }

    /// `RouteReader::get`'s read: the route `addr/len` as (next hop, sequence word).
    fn get(&self, addr: u32, len: u8) -> Result<Option<(NextHop, u64)>, Unstable> {
        let v = self.file.view();
        self.read(|| {
            let Some((nh, _, b)) = v.find(addr, len)? else {
                return Ok(None);
            };
            Ok(Some((v.nexthop_for(nh, 0)?, b)))
        })
    }
}

/// `view::consistent` without the load of the epoch after the read (negative control).
fn first_load_only<T>(
    epoch: &AtomicU64,
    mut read: impl FnMut() -> Result<T, Garbage>,
) -> Result<T, Unstable> {
    let _ = epoch.load(Relaxed);
    fence(Acquire);
    read().map_err(|Garbage| Unstable::Grown)
}

/// `view::consistent` without the `Acquire` fence before the second load of the epoch
/// (negative control).
fn without_second_fence<T>(
    epoch: &AtomicU64,
    mut read: impl FnMut() -> Result<T, Garbage>,
) -> Result<T, Unstable> {
    loop {
        let e1 = epoch.load(Relaxed);
        fence(Acquire);
        let r = read();
        // fence(Acquire) removed
        let e2 = epoch.load(Relaxed);
        if e1 == e2 {
            return r.map_err(|Garbage| Unstable::Grown);
        }
    }
}

fn hop(i: u8) -> NextHop {
    NextHop {
        via: Some([10, 0, 0, i].into()),
        dev: Some(format!("eth{i}").parse().expect("a device name")),
        metric: u32::from(i),
    }
}

/// A read a reader makes.
type Read<A> = fn(&Reader) -> Result<A, Unstable>;

/// One scenario: the file before, the writer's changes, a read and what it may answer.
struct Scenario<A> {
    image: fn() -> Image,
    /// The writer's changes; its argument says how it moves the epoch.
    write: fn(&File, Epoch),
    /// One read of the reader.
    read: Read<A>,
    /// What the read answered in each state the writer published, the last state last.
    answers: fn() -> Vec<A>,
    /// Another read, of what the last change added, and its answer after the writer is done.
    added: (Read<A>, fn() -> A),
}

fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b
}

/// What the reads of one exploration came to, over all its executions.
#[derive(Debug, Default)]
struct Seen {
    executions: usize,
    /// Racing reads that answered each state's answer.
    answers: Vec<usize>,
    /// Of those, the reads that answered at their first attempt.
    at_once: Vec<usize>,
    /// Racing reads that met garbage with the epoch unchanged (controls only).
    garbage: usize,
    /// Racing reads that read again because the epoch moved under them.
    retried: usize,
}

/// Explores `s` with the writer moving the epoch as `epoch` says and `readers` reader threads
/// checking it as `check` says; every answer must be one the writer published.
///
/// The writer runs on the model's own thread and the readers on threads it spawns. Loom 0.7's
/// exploration misses orderings where a thread loads a word just before storing it (as the
/// writer does with a page word, a sequence word and the epoch) and another thread loaded that
/// word earlier (tokio-rs/loom#166, #392); with the writer first, the orderings are reached from
/// the readers' side, and [`Seen`] shows they are.
fn explore<A>(
    s: &'static Scenario<A>,
    epoch: Epoch,
    check: Check,
    readers: usize,
    preemptions: usize,
) -> Seen
where
    A: PartialEq + Debug + Send + 'static,
{
    // Only the real protocol must never meet garbage with the epoch unchanged.
    let real = epoch == Epoch::AsTheWriter && check == Check::Consistent;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen {
        answers: vec![0; (s.answers)().len()],
        at_once: vec![0; (s.answers)().len()],
        ..Seen::default()
    }));
    let record = seen.clone();
    builder(preemptions).check(move || {
        let file = Arc::new((s.image)().file());
        let reads: Vec<_> = (0..readers)
            .map(|_| {
                let file = file.clone();
                thread::spawn(move || {
                    let reader = Reader::new(&file, check);
                    ((s.read)(&reader), reader.tries.get())
                })
            })
            .collect();
        (s.write)(&file, epoch);
        let reads: Vec<_> = reads.into_iter().map(|r| r.join().unwrap()).collect();
        let answers = (s.answers)();
        let mut seen = record.lock().unwrap();
        seen.executions += 1;
        for (r, tries) in reads {
            seen.retried += usize::from(tries > 1);
            match r {
                Ok(a) => match answers.iter().position(|x| *x == a) {
                    Some(i) => {
                        seen.answers[i] += 1;
                        seen.at_once[i] += usize::from(tries == 1);
                    }
                    None => panic!("wrong answer {a:?}"),
                },
                Err(Unstable::Grown) if !real => seen.garbage += 1,
                Err(e) => panic!("read failed: {e:?}"),
            }
        }
        drop(seen);
        let reader = Reader::new(&file, check);
        assert_eq!(
            (s.read)(&reader),
            Ok(answers.into_iter().last().expect("a state")),
            "after the writer"
        );
        assert_eq!((s.added.0)(&reader), Ok((s.added.1)()), "after the writer");
    });
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    eprintln!("{seen:?}");
    seen
}

/// Explores the real protocol: no wrong answer, and racing reads answered every state at their
/// first attempt and met a moving epoch (loom reached the orderings that matter).
fn explore_real<A>(s: &'static Scenario<A>, readers: usize, preemptions: usize)
where
    A: PartialEq + Debug + Send + 'static,
{
    let seen = explore(
        s,
        Epoch::AsTheWriter,
        Check::Consistent,
        readers,
        preemptions,
    );
    assert!(
        seen.at_once.iter().all(|&n| n > 0),
        "a state was never read: {seen:?}"
    );
    assert!(seen.retried > 0, "no read ever retried: {seen:?}");
}

// ===== a chunk's lines reused =====

/// The address the reader looks up: key 0x180 of slot 0.
const ADDR: u32 = 0x180;

/// The three chunks, as ranges naming value-table entries: at `ADDR` the first answers from
/// its second range (lane 1), the third from its first (lane 0), so an old chunk's starts with
/// a new one's entries (or the reverse) answer a value no chunk gives there. The third chunk
/// names the first one's entries, rewritten: an old chunk read with the new entries answers a
/// value no chunk gives there either. (The values' next-hop records are not read here.)
fn chunk_one() -> Vec<(u16, u16)> {
    vec![(0, 1), (0x100, 2)]
}
fn chunk_two() -> Vec<(u16, u16)> {
    vec![(0, 3), (0x100, 4)]
}
fn chunk_three() -> Vec<(u16, u16)> {
    vec![(0, 1), (0x200, 2)]
}

fn chunk_image() -> Image {
    let mut i = Image::default();
    i.value(1, value(18, 1, 0));
    i.value(2, value(24, 2, 0));
    let (lines, depth) = chunk::encode(&chunk_one(), FIRST);
    i.lines(FIRST, &lines);
    i.slot_word(LPM_PAGE, 0, chunk_word(depth, FIRST));
    i
}

fn chunk_writer(f: &File, epoch: Epoch) {
    // The chunk is replaced by one in other lines, naming new value entries; its line and
    // its entries are freed.
    f.write_value(3, value(18, 5, 0));
    f.write_value(4, value(24, 6, 0));
    let (lines, depth) = chunk::encode(&chunk_two(), SECOND);
    f.write_lines(SECOND, &lines);
    f.set_slot_word(LPM_PAGE, 0, chunk_word(depth, SECOND));
    f.advance_epoch(epoch);
    // The freed line and entries are reused at once for the next chunk of the slot.
    f.write_value(1, value(18, 3, 0));
    f.write_value(2, value(23, 4, 0));
    let (lines, depth) = chunk::encode(&chunk_three(), FIRST);
    f.write_lines(FIRST, &lines);
    f.set_slot_word(LPM_PAGE, 0, chunk_word(depth, FIRST));
}

fn chunk_value(r: &Reader) -> Result<u32, Unstable> {
    r.read(|| r.file.view().value(ADDR))
}

fn chunk_value_elsewhere(r: &Reader) -> Result<u32, Unstable> {
    r.read(|| r.file.view().value(0x200))
}

static CHUNK_LINES_REUSED: Scenario<u32> = Scenario {
    image: chunk_image,
    write: chunk_writer,
    read: chunk_value,
    answers: || vec![value(24, 2, 0), value(24, 6, 0), value(18, 3, 0)],
    added: (chunk_value_elsewhere, || value(23, 4, 0)),
};

#[test]
fn chunk_lines_reused() {
    explore_real(&CHUNK_LINES_REUSED, 1, 3);
}

#[test]
fn chunk_lines_reused_under_two_readers() {
    explore_real(&CHUNK_LINES_REUSED, 2, 1);
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_chunk_read_without_second_epoch_load() {
    explore(
        &CHUNK_LINES_REUSED,
        Epoch::AsTheWriter,
        Check::FirstLoadOnly,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_chunk_read_without_fence_before_second_epoch_load() {
    explore(
        &CHUNK_LINES_REUSED,
        Epoch::AsTheWriter,
        Check::NoSecondFence,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_chunk_lines_reused_without_epoch() {
    explore(
        &CHUNK_LINES_REUSED,
        Epoch::NotMoved,
        Check::Consistent,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_chunk_lines_reused_after_relaxed_epoch_store() {
    explore(
        &CHUNK_LINES_REUSED,
        Epoch::RelaxedStore,
        Check::Consistent,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_chunk_lines_reused_without_epoch_fence() {
    explore(&CHUNK_LINES_REUSED, Epoch::NoFence, Check::Consistent, 1, 2);
}

// ===== a next-hop record reused =====

/// A route `0.0.0.0/18` (slot 0) through record 1; record 2 free.
fn record_image() -> Image {
    let mut i = Image::default();
    i.record(1, &hop(1));
    i.slot_word(LPM_PAGE, 0, value(18, 1, 0));
    i
}

fn record_writer(f: &File, epoch: Epoch) {
    // The route moves to a new next hop: a new record, written before anything names it; the
    // old record is freed.
    f.write_record(2, &hop(2));
    f.set_slot_word(LPM_PAGE, 0, value(18, 2, 0));
    f.advance_epoch(epoch);
    // Another route, 0.0.64.0/18 (slot 1, the other half of the page word), with a third next
    // hop reuses the freed record at once.
    f.write_record(1, &hop(3));
    f.set_slot_word(LPM_PAGE, 1, value(18, 1, 0));
}

fn record_lookup(r: &Reader) -> Result<Option<(u8, NextHop)>, Unstable> {
    r.lookup(ADDR)
}

fn record_lookup_added(r: &Reader) -> Result<Option<(u8, NextHop)>, Unstable> {
    r.lookup(0x4000 | ADDR)
}

static NEXT_HOP_RECORD_REUSED: Scenario<Option<(u8, NextHop)>> = Scenario {
    image: record_image,
    write: record_writer,
    read: record_lookup,
    answers: || vec![Some((18, hop(1))), Some((18, hop(2)))],
    added: (record_lookup_added, || Some((18, hop(3)))),
};

#[test]
fn next_hop_record_reused() {
    explore_real(&NEXT_HOP_RECORD_REUSED, 1, 3);
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_lookup_without_second_epoch_load() {
    explore(
        &NEXT_HOP_RECORD_REUSED,
        Epoch::AsTheWriter,
        Check::FirstLoadOnly,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_next_hop_record_reused_without_epoch() {
    explore(
        &NEXT_HOP_RECORD_REUSED,
        Epoch::NotMoved,
        Check::Consistent,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_next_hop_record_reused_after_relaxed_epoch_store() {
    explore(
        &NEXT_HOP_RECORD_REUSED,
        Epoch::RelaxedStore,
        Check::Consistent,
        1,
        2,
    );
}

// ===== a block's lines and a next-hop record reused =====

/// The route read: `0.0.32.0/19`; the route added: `0.0.0.0/19`, which sorts before it.
const READ: (u32, u8) = (0x2000, 19);
const ADDED: (u32, u8) = (0, 19);

fn entry(route: (u32, u8), nh: u32, seq: u64) -> [u64; 2] {
    [entry_word(route.0, route.1, ORIGIN_RTM, nh), seq]
}

/// A block line holding `entries`.
fn block_line(entries: &[[u64; 2]]) -> [u64; 8] {
    let mut l = [0; 8];
    for (i, e) in entries.iter().enumerate() {
        l[2 * i..2 * i + 2].copy_from_slice(e);
    }
    l
}

/// The route read, with sequence number 1, through record 1; record 2 free.
fn block_image() -> Image {
    let mut i = Image::default();
    i.record(1, &hop(1));
    i.lines(FIRST, &[block_line(&[entry(READ, 1, 1)])]);
    i.slot_word(BLK_PAGE, 0, block_word(1, FIRST));
    i
}

/// The exact-match half of `RouteWriter::upsert` (the LPM half is not read here).
fn block_writer(f: &File, epoch: Epoch) {
    // The change of sequence number 2: the route moves to a new next hop; its block is
    // replaced; the old block's line and the old record are freed.
    f.write_record(2, &hop(2));
    f.write_lines(SECOND, &[block_line(&[entry(READ, 2, 2)])]);
    f.set_slot_word(BLK_PAGE, 0, block_word(1, SECOND));
    f.advance_epoch(epoch);
    // The change of sequence number 3: another route of the slot, with a third next hop in the
    // freed record; the slot's new block goes into the freed line.
    f.write_record(1, &hop(3));
    f.write_lines(
        FIRST,
        &[block_line(&[entry(ADDED, 1, 3), entry(READ, 2, 2)])],
    );
    f.set_slot_word(BLK_PAGE, 0, block_word(2, FIRST));
}

fn block_get(r: &Reader) -> Result<Option<(NextHop, u64)>, Unstable> {
    r.get(READ.0, READ.1)
}

fn block_get_added(r: &Reader) -> Result<Option<(NextHop, u64)>, Unstable> {
    r.get(ADDED.0, ADDED.1)
}

static BLOCK_LINES_AND_RECORD_REUSED: Scenario<Option<(NextHop, u64)>> = Scenario {
    image: block_image,
    write: block_writer,
    read: block_get,
    answers: || vec![Some((hop(1), 1)), Some((hop(2), 2))],
    added: (block_get_added, || Some((hop(3), 3))),
};

#[test]
fn block_lines_and_record_reused() {
    explore_real(&BLOCK_LINES_AND_RECORD_REUSED, 1, 3);
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_get_without_second_epoch_load() {
    explore(
        &BLOCK_LINES_AND_RECORD_REUSED,
        Epoch::AsTheWriter,
        Check::FirstLoadOnly,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_get_without_fence_before_second_epoch_load() {
    explore(
        &BLOCK_LINES_AND_RECORD_REUSED,
        Epoch::AsTheWriter,
        Check::NoSecondFence,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_block_lines_reused_without_epoch() {
    explore(
        &BLOCK_LINES_AND_RECORD_REUSED,
        Epoch::NotMoved,
        Check::Consistent,
        1,
        2,
    );
}

#[test]
#[should_panic(expected = "wrong answer")]
fn negative_control_block_lines_reused_after_relaxed_epoch_store() {
    explore(
        &BLOCK_LINES_AND_RECORD_REUSED,
        Epoch::RelaxedStore,
        Check::Consistent,
        1,
        2,
    );
}
