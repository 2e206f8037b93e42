//! docs/guarantees.md §2, §3, §4: clients killed at random during a long batch leave nothing
//! behind; a stopped client costs bounded memory and gets one `resync` instead of an unbounded
//! queue, while healthy clients get every change; a subscriber without a SIGUSR1 handler is never
//! signalled.
#![forbid(unsafe_code)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use common::*;
use nix::sys::signal::Signal;
use rand::Rng;
use serde_json::{json, Value};

const MIB: u64 = 1024;

/// `rtmctl batch -` on `socket`, which must succeed.
fn batch_ok(socket: &std::path::Path, text: &str) {
    let mut cmd = Command::new(RTMCTL);
    cmd.arg("--socket").arg(socket).args(["batch", "-"]);
    let o = run(cmd, Some(text.as_bytes()), DEADLINE);
    assert_eq!(code(&o), 0, "batch: {}", stderr(&o));
}

/// The `rtmctl -j clients` record of the client with this name.
fn client_record(inst: &Instance, name: &str) -> Value {
    inst.ctl_json(&["clients"])
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
        .clone()
}

/// 40 `rtm-client`s SIGKILLed at random while batches of 3000 changes run: only live clients
/// stay listed, every session is closed, and the daemon's descriptors and memory stay flat.
#[test]
fn clients_killed_during_a_long_batch_leak_nothing() {
    // A queue longer than everything written: the steady client must get every change.
    let inst = Instance::start_with(&["--client-queue", "200000"]);
    let pid = inst.daemon_pid();
    let batch = |round: usize| -> String {
        (0..3000)
            .map(|i| {
                let k = (round * 3000 + i) % 2000;
                format!(
                    "route replace 10.{}.{}.0/24 dev eth{} metric {round}\n",
                    k >> 8,
                    k & 0xff,
                    k % 4
                )
            })
            .collect()
    };
    let mut steady = inst.client("steady", &[]);
    let mut pool: Vec<(String, ClientProc)> = (0..4)
        .map(|i| {
            let name = format!("k{i}");
            let c = inst.client(&name, &[]);
            (name, c)
        })
        .collect();

    // Warm-up: one batch, a few connect/kill cycles, then the baseline.
    batch_ok(&inst.socket, &batch(0));
    for i in 0..5 {
        let mut c = inst.client(&format!("warm{i}"), &[]);
        c.signal(Signal::SIGKILL);
        c.wait();
    }
    inst.eventually("warm-up clients gone", || inst.client_names().len() == 5);
    let fds_before = fd_count(pid);
    let (rss_before, anon_before) = (
        proc_status_kib(pid, "VmRSS"),
        proc_status_kib(pid, "RssAnon"),
    );

    // Batches in the background: at least 10 (30k changes), and on until the kills are done, so
    // that every kill lands during the batches however long the kills take. At most 60 rounds
    // (180k changes) stay under the steady client's queue; only kills far slower than batches
    // get there, and then the last kills merely come after the batches.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, rounds, socket) = (stop.clone(), rounds.clone(), inst.socket.clone());
        thread::spawn(move || {
            let mut round = 1;
            while round <= 10 || (round <= 60 && !stop.load(SeqCst)) {
                batch_ok(&socket, &batch(round));
                rounds.store(round, SeqCst);
                round += 1;
            }
            round - 1
        })
    };
    let t_kills = Instant::now();
    let kills_start_at = rounds.load(SeqCst);
    let mut rng = rand::rng();
    for kill in 0..40 {
        let i = rng.random_range(0..pool.len());
        let (_, mut victim) = pool.swap_remove(i);
        victim.signal(Signal::SIGKILL);
        let (st, _) = victim.wait();
        assert!(!st.success(), "kill {kill}: {st}");
        let name = format!("k{}", kill + 4);
        // Most replacements are still syncing when the next kill may hit them.
        let c = if kill % 4 == 0 {
            inst.client(&name, &[])
        } else {
            inst.client_unsynced(&name, &[])
        };
        pool.push((name, c));
    }
    let (kills_took, kills_done_at) = (t_kills.elapsed(), rounds.load(SeqCst));
    stop.store(true, SeqCst);
    let rounds_total = writer.join().expect("writer");
    eprintln!(
        "40 kills in {kills_took:?}, while batch rounds {kills_start_at}..={kills_done_at} of \
         1..={rounds_total} completed (3000 changes each)"
    );

    // Exactly the live clients are listed, with their pids.
    let mut live: BTreeMap<String, i64> = pool
        .iter()
        .map(|(n, c)| (n.clone(), c.pid().as_raw() as i64))
        .collect();
    live.insert("steady".into(), steady.pid().as_raw() as i64);
    inst.eventually("only the live clients listed", || {
        let listed: BTreeMap<String, i64> = inst
            .ctl_json(&["clients"])
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().into(),
                    c["pid"].as_i64().unwrap(),
                )
            })
            .collect();
        listed == live
    });
    // Every other session is closed: the open ones are the 5 clients and this request.
    inst.eventually("sessions balanced", || {
        let s = inst.status();
        let c = &s["counters"];
        s["clients"] == 5
            && c["sessions_opened"].as_u64().unwrap() - c["sessions_closed"].as_u64().unwrap() == 6
    });

    let fds_after = fd_count(pid);
    let (rss_after, anon_after) = (
        proc_status_kib(pid, "VmRSS"),
        proc_status_kib(pid, "RssAnon"),
    );
    eprintln!(
        "rtmd fds {fds_before} -> {fds_after}; VmRSS {rss_before} -> {rss_after} KiB; \
         RssAnon {anon_before} -> {anon_after} KiB"
    );
    // Each leaked session would keep its socket and its client's pidfd open.
    assert!(
        fds_after <= fds_before + 2,
        "descriptors grew from {fds_before} to {fds_after}"
    );
    // A leaked session holding queued notifications costs about 1 MiB per 30k changes.
    assert!(
        anon_after <= anon_before + 16 * MIB,
        "heap grew from {anon_before} to {anon_after} KiB"
    );
    assert!(
        rss_after <= rss_before + 32 * MIB,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );

    // The steady client got every change, in order, without a resync.
    let mut seen = EventModel::from_seen(&steady);
    inst.ctl_line("route add 99.0.0.0/8 dev marker");
    seen.follow(&mut steady, |v| v["key"] == "99.0.0.0/8");
    assert!(seen.resyncs.is_empty(), "{:?}", seen.resyncs);
    assert_eq!(seen.gaps, 0);
    assert_eq!(seen.routes, inst.routes());
    assert_eq!(
        seen.creates + seen.updates,
        (rounds_total as u64 + 1) * 3000 + 1,
        "changes seen by the steady client"
    );
}

/// The changes of round `round` (2000 keys): rounds ≡ 3 (mod 5) delete every key, the others
/// replace it (creating it in round 0 and after a delete round).
fn stop_round(round: usize) -> String {
    (0..2000)
        .map(|k| {
            let dst = format!("10.{}.{}.0/24", k >> 8, k & 0xff);
            if round % 5 == 3 {
                format!("route del {dst}\n")
            } else {
                format!("route replace {dst} dev eth{} metric {round}\n", k % 3)
            }
        })
        .collect()
}

/// One client SIGSTOPped during 100k changes with `--client-queue 1000`: healthy clients get
/// every change, the daemon's memory stays bounded, and the stopped client, once continued,
/// prints what its socket held, then one `resync` and the full current table, then later
/// changes in order.
#[test]
fn a_stopped_client_gets_a_resync_and_costs_bounded_memory() {
    const QUEUE: u64 = 1000;
    const CHUNK: usize = 800;
    let inst = Instance::start_with(&["--client-queue", "1000", "--route-capacity", "4096"]);
    let pid = inst.daemon_pid();
    let mut healthy = [inst.client("h1", &[]), inst.client("h2", &[])];
    let mut stopped = inst.client("stopped", &[]);
    let mut models: Vec<EventModel> = healthy.iter().map(EventModel::from_seen).collect();
    // Writes one round in chunks, paced by the healthy clients (a debug-build client is slower
    // than the daemon): a healthy client never falls a queue's length behind, so any resync it
    // got would be a daemon bug. Returns the last sequence number written.
    let mut seq = 0u64;
    let mut write_round = |round: usize, healthy: &mut [ClientProc], models: &mut [EventModel]| {
        let text = stop_round(round);
        let lines: Vec<&str> = text.lines().collect();
        for chunk in lines.chunks(CHUNK) {
            batch_ok(&inst.socket, &(chunk.join("\n") + "\n"));
            seq += chunk.len() as u64;
            for (c, m) in healthy.iter_mut().zip(models.iter_mut()) {
                m.follow(c, |v| {
                    v["seq"].as_u64() == Some(seq) && v["op"] != "sync-done"
                });
            }
        }
        seq
    };
    // Warm-up, then the baseline.
    write_round(0, &mut healthy, &mut models);
    let _ = stopped.expect(|v| v["seq"] == 2000 && v["op"] != "sync-done");
    let rss_before = proc_status_kib(pid, "VmRSS");
    let anon_before = proc_status_kib(pid, "RssAnon");

    stopped.signal(Signal::SIGSTOP);
    let started = Instant::now();
    let (mut rss_max, mut anon_max, mut queued_max, mut seq) = (rss_before, anon_before, 0, 0);
    for round in 1..50 {
        seq = write_round(round, &mut healthy, &mut models);
        rss_max = rss_max.max(proc_status_kib(pid, "VmRSS"));
        anon_max = anon_max.max(proc_status_kib(pid, "RssAnon"));
        if round % 10 == 0 {
            let rec = client_record(&inst, "stopped");
            let queued = rec["queued"].as_u64().unwrap();
            assert!(queued <= QUEUE, "queued {queued} > {QUEUE}: {rec}");
            queued_max = queued_max.max(queued);
        }
    }
    assert_eq!(seq, 100_000);
    eprintln!(
        "100k changes in {:?}; rtmd VmRSS {rss_before} KiB before, max {rss_max} KiB with a \
         stopped client; RssAnon {anon_before} -> max {anon_max} KiB; stopped client's queue \
         max {queued_max}",
        started.elapsed()
    );
    assert!(
        rss_max < rss_before + 64 * MIB,
        "rtmd RSS grew from {rss_before} to {rss_max} KiB"
    );

    let rec = client_record(&inst, "stopped");
    assert!(rec["queued"].as_u64().unwrap() <= QUEUE, "{rec}");
    assert!(rec["resyncs"].as_u64().unwrap() >= 1, "{rec}");
    // The daemon logged the collapse once, naming the client and the table.
    let id = format!("id={} ", rec["id"]);
    let log = inst.log_text();
    let fell: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("client fell behind"))
        .collect();
    assert!(
        fell.iter()
            .any(|l| l.contains(" INFO ") && l.contains(&id) && l.contains("table=\"route\"")),
        "{fell:?}"
    );
    assert!(
        fell.len() <= rec["resyncs"].as_u64().unwrap() as usize,
        "{fell:?}"
    );
    let table = inst.routes();
    assert_eq!(table.len(), 2000);
    for name in ["h1", "h2"] {
        let rec = client_record(&inst, name);
        assert_eq!(rec["resyncs"], 0, "{rec}");
        assert_eq!(rec["queued"], 0, "{rec}");
        assert_eq!(rec["sent"], 100_000, "{rec}");
    }
    // Healthy clients saw every change once, in order: 11 create rounds (0, 4, 9, ..., 49),
    // 10 delete rounds (3, 8, ..., 48), the rest updates.
    for m in &models {
        assert!(m.resyncs.is_empty(), "{:?}", m.resyncs);
        assert_eq!(m.gaps, 0);
        assert_eq!(m.creates, 11 * 2000);
        assert_eq!(m.deletes, 10 * 2000);
        assert_eq!(m.updates, 29 * 2000);
        assert_eq!(m.routes, table);
    }

    // The stopped client: what its socket held, in order; then one resync and the full table.
    stopped.signal(Signal::SIGCONT);
    let mut m = EventModel::from_seen(&stopped);
    let resync = m.follow(&mut stopped, |v| {
        v["op"] != "create" && v["op"] != "update" && v["op"] != "delete"
    });
    assert_eq!(resync, json!({"op": "resync", "table": "route"}));
    let held = m.last_seq[0];
    assert!(held > 2000 && held < 100_000, "held up to seq {held}");
    let done = m.follow(&mut stopped, |v| v["op"] == "sync-done");
    assert_eq!(done["table"], "route");
    assert_eq!(done["count"], 2000);
    assert_eq!(done["seq"], 100_000);
    assert_eq!(m.routes, table, "the resync printed the current table");
    // Then later changes, in order.
    inst.ctl_line("route add 99.0.0.0/8 dev marker");
    inst.ctl_line("route del 10.0.0.0/24");
    let v = stopped.next();
    assert_eq!(
        (v["op"].as_str(), v["seq"].as_u64()),
        (Some("create"), Some(100_001)),
        "{v}"
    );
    let v = stopped.next();
    assert_eq!(
        (v["op"].as_str(), v["seq"].as_u64()),
        (Some("delete"), Some(100_002)),
        "{v}"
    );
    let rec = client_record(&inst, "stopped");
    assert_eq!(rec["queued"], 0, "{rec}");
}

/// A subscriber that announced no SIGUSR1 handler (`rtmctl watch`) is never signalled: it
/// survives flushes and keeps printing, while `rtm-client` gets one SIGUSR1 per flush.
#[test]
fn a_watcher_without_a_sigusr1_handler_survives_flushes() {
    let inst = Instance::start();
    let mut client = inst.client("c", &[]);
    let mut watch = inst.watch();
    inst.eventually("both registered", || inst.client_names().len() == 2);
    let flushes = ["route flush", "arp flush", "flush", "route flush"];
    let mut seq = [0u64, 0];
    for (i, flush) in flushes.iter().enumerate() {
        inst.ctl_line(&format!("route add 10.{i}.0.0/16 dev eth0"));
        inst.ctl_line(&format!("arp add 00:11:22:33:44:{i:02x} 192.168.1.{i}"));
        seq[0] += 1;
        seq[1] += 1;
        inst.ctl_line(flush);
        let tables: &[&str] = match *flush {
            "route flush" => &["route"],
            "arp flush" => &["arp"],
            _ => &["route", "arp"],
        };
        // The watcher prints both creates and the flushes, and nothing else.
        let mut want: BTreeSet<String> = BTreeSet::new();
        want.insert(format!("create route {}", seq[0]));
        want.insert(format!("create arp {}", seq[1]));
        for t in tables {
            let s = if *t == "route" {
                &mut seq[0]
            } else {
                &mut seq[1]
            };
            *s += 1;
            want.insert(format!("flush {t} {s}"));
        }
        let mut got = BTreeSet::new();
        while got.len() < want.len() {
            let v = watch.next();
            got.insert(op_table_seq(&v));
        }
        assert_eq!(got, want, "after {flush}");
        // rtm-client prints the same and one signal.
        let mut signals = 0;
        let mut got = BTreeSet::new();
        while got.len() < want.len() || signals == 0 {
            let v = client.next();
            if v["op"] == "signal" {
                assert_eq!(v["signal"], "SIGUSR1");
                signals += 1;
            } else {
                got.insert(op_table_seq(&v));
            }
        }
        assert_eq!(got, want, "after {flush}");
        assert_eq!(signals, 1);
    }
    // Nothing more.
    inst.expect_markers_next(&["route", "arp"], &mut [&mut client, &mut watch]);
    assert!(
        watch.child.try_wait().unwrap().is_none(),
        "rtmctl watch died"
    );
    // Only rtm-client was signalled, once per flush.
    let status = inst.status();
    assert_eq!(
        status["counters"]["signals_sent"],
        flushes.len(),
        "{status}"
    );
    // The watcher still prints live events.
    inst.ctl_line("route add 10.9.0.0/16 dev eth9");
    let v = watch.next();
    assert_eq!(
        (v["op"].as_str(), v["key"].as_str()),
        (Some("create"), Some("10.9.0.0/16"))
    );
}

/// `"op table seq"` of an event line, to compare sets of events.
fn op_table_seq(v: &Value) -> String {
    format!(
        "{} {} {}",
        v["op"].as_str().unwrap(),
        v["table"].as_str().unwrap(),
        v["seq"]
    )
}
