//! Multi-process torn-read stress test.
//!
//! The test re-executes its own binary twice as reader processes (selected by an environment
//! variable) that map the table file read-only, while this process rewrites entries as fast as it
//! can for about two seconds, removing and re-adding keys and republishing generations. Every
//! field of every entry is derived from one counter `n`, so any torn read shows up as an entry
//! whose fields disagree. Readers exit non-zero on the first inconsistent entry.
#![cfg(not(loom))]

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rtm_proto::shm::{RouteReader, RouteWriter, Versioned};
use rtm_proto::{Prefix, Route};

const TEST_NAME: &str = "torn_read_stress";
const ROLE_ENV: &str = "RTM_SHM_STRESS_READER";
const KEYS: u32 = 500;
const WRITE_FOR: Duration = Duration::from_secs(2);
/// Readers stop on their own after this even if they never see the stop mark.
const READ_AT_MOST: Duration = Duration::from_secs(5);
/// The parent kills a reader still running after this.
const CHILD_TIMEOUT: Duration = Duration::from_secs(6);
/// `table_seq` value telling readers the writer is done.
const STOP: u64 = u64::MAX;

/// The KEYS distinct keys: prefixes of every length 0..=32 inside 10.0.0.0/8 (and /0), nested so
/// lookups meet several candidates.
fn keys() -> &'static [Prefix] {
    static KEYS_: OnceLock<Vec<Prefix>> = OnceLock::new();
    KEYS_.get_or_init(|| {
        let mut out: Vec<Prefix> = Vec::new();
        let mut j = 0u32;
        while out.len() < KEYS as usize {
            let len = (j % 33) as u8;
            let addr = Ipv4Addr::from(0x0a00_0000 | (j.wrapping_mul(0x9e37_79b9) >> 8));
            let p = Prefix::truncating(addr, len);
            if !out.contains(&p) {
                out.push(p);
            }
            j += 1;
        }
        out
    })
}

fn key(i: u32) -> Prefix {
    keys()[i as usize]
}

fn key_index(p: &Prefix) -> Option<u32> {
    keys().iter().position(|k| k == p).map(|i| i as u32)
}

/// The entry written for change `n` of key `n % KEYS`: every field derives from `n`.
fn route_for(n: u64) -> Route {
    let i = (n % u64::from(KEYS)) as u32;
    let m = n as u32;
    Route {
        dst: key(i),
        via: (m % 7 != 0).then(|| Ipv4Addr::from(m.wrapping_mul(2_654_435_761) ^ 0x5555_5555)),
        dev: (m % 11 != 0).then(|| format!("d{}", m % 100_000).parse().unwrap()),
        metric: m,
    }
}

/// Checks an entry read by a reader against the formula.
fn check(v: &Versioned<Route>) -> Result<(), String> {
    let n = v.seq;
    let want = route_for(n);
    if v.entry != want || u64::from(v.entry.metric) != n & 0xffff_ffff {
        return Err(format!(
            "torn entry: got {:?} seq {n}, want {want:?}",
            v.entry
        ));
    }
    Ok(())
}

/// Dedupe-friendly distinct keys: n and the key index agree (n % KEYS == index of dst).
fn check_key(v: &Versioned<Route>, idx: u32) -> Result<(), String> {
    if v.seq % u64::from(KEYS) != u64::from(idx) {
        return Err(format!(
            "entry {:?} seq {} under key #{idx}",
            v.entry, v.seq
        ));
    }
    Ok(())
}

fn reader_main(path: &Path) -> Result<u64, String> {
    let start = Instant::now();
    let mut r = RouteReader::open(path).map_err(|e| e.to_string())?;
    let mut reads = 0u64;
    let mut x = std::process::id().wrapping_mul(0x2545_f491);
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let keys = keys();
    let mut round = 0u64;
    loop {
        round += 1;
        if r.is_retired() {
            r.refresh().map_err(|e| e.to_string())?;
        }
        if r.table_seq() == STOP || start.elapsed() > READ_AT_MOST {
            break;
        }
        for _ in 0..200 {
            let i = rand() % KEYS;
            if let Some(v) = r.get(&keys[i as usize]) {
                check(&v)?;
                check_key(&v, i)?;
                reads += 1;
            }
            let a = Ipv4Addr::from(0x0a00_0000 | (rand() & 0x00ff_ffff));
            if let Some(v) = r.lookup(a) {
                // The metric is the change that wrote the route; the rest derives from it.
                let want = route_for(u64::from(v.metric));
                if v != want {
                    return Err(format!("lookup({a}): torn route {v:?}, want {want:?}"));
                }
                if !v.dst.contains(a) {
                    return Err(format!("lookup({a}) returned {v:?}"));
                }
                reads += 1;
            }
        }
        if round % 16 == 0 {
            for v in r.entries() {
                check(&v)?;
                let idx = key_index(&v.entry.dst).ok_or("unknown key")?;
                check_key(&v, idx)?;
                reads += 1;
            }
        }
    }
    Ok(reads)
}

#[test]
fn torn_read_stress() {
    if let Ok(path) = std::env::var(ROLE_ENV) {
        match reader_main(Path::new(&path)) {
            Ok(reads) => {
                // The harness has already printed "test ... " on this line; the parent finds the mark.
                println!("READS {reads}");
                assert!(reads > 0, "no reads");
            }
            Err(e) => {
                eprintln!("reader {}: {e}", std::process::id());
                std::process::exit(3);
            }
        }
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes");
    let mut w = RouteWriter::create(&path, KEYS as usize, 0o644).unwrap();
    let mut n = 0u64;
    for _ in 0..KEYS {
        w.upsert(&route_for(n), n).unwrap();
        n += 1;
    }

    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
                .env(ROLE_ENV, &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    let start = Instant::now();
    let mut present = vec![true; KEYS as usize];
    let mut republished = 0;
    let mut next_republish = Duration::from_millis(300);
    while start.elapsed() < WRITE_FOR {
        for _ in 0..1000 {
            let i = (n % u64::from(KEYS)) as usize;
            // Every 5th change of a present key removes it; an absent key is re-added.
            if present[i] && n % 5 == 0 {
                assert!(w.remove(&key(i as u32), n));
                present[i] = false;
            } else {
                w.upsert(&route_for(n), n).unwrap();
                present[i] = true;
            }
            n += 1;
        }
        if start.elapsed() > next_republish {
            next_republish += Duration::from_millis(300);
            // Read back what we wrote (through a reader) and publish it as a new generation.
            let r = RouteReader::open(&path).unwrap();
            let entries = r.entries();
            assert_eq!(entries.len(), w.len());
            w.republish(entries).unwrap();
            republished += 1;
        }
    }
    w.set_table_seq(STOP);
    let writes = n;

    let deadline = Instant::now() + CHILD_TIMEOUT;
    for (k, child) in children.iter_mut().enumerate() {
        let reads = common::reap_reader(k, child, deadline, "READS ");
        println!("reader {k}: {reads} consistent reads");
    }
    println!(
        "writer: {writes} changes, {republished} republishes, final generation {}",
        w.generation()
    );
    assert!(republished > 0);
}
