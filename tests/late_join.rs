//! docs/guarantees.md §1: a client that registers after many changes sees exactly the current
//! tables, then every later change once, in order.
#![forbid(unsafe_code)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;

use common::*;
use serde_json::Value;

#[test]
fn late_joiner_gets_exact_tables_then_live_changes() {
    let inst = Instance::start();
    let routes = varied_routes(1200);
    let mut text: Vec<String> = routes.iter().map(|(l, _)| l.clone()).collect();
    // History before the join: updates and deletes, not just creates.
    text.push("route replace 10.0.1.0/25 via 10.9.9.9 metric 77".into());
    text.push("route del 10.0.2.0/26".into());
    text.push("route add 0.0.0.0/0 via 192.168.0.1".into());
    for i in 0..40 {
        let dev = if i % 2 == 0 { " dev eth0" } else { "" };
        text.push(format!(
            "arp add 02:00:00:00:00:{i:02x} 192.168.7.{}{dev}",
            i + 1
        ));
    }
    text.push("arp del 02:00:00:00:00:05".into());
    let o = inst.batch(&text.join("\n"), false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let mut c = inst.client_unsynced("late", &[]);
    let mut sync = |table: &str| -> (Vec<Value>, Value) {
        let lines = c.collect_until(|v| v["op"] == "sync-done");
        let done = lines.last().unwrap().clone();
        assert_eq!(done["table"], table);
        let entries = lines[..lines.len() - 1]
            .iter()
            .map(|v| {
                assert_eq!(v["op"], "sync", "{v}");
                assert_eq!(v["table"], table);
                v["entry"].clone()
            })
            .collect();
        (entries, done)
    };
    let (synced_routes, route_done) = sync("route");
    let (synced_arps, arp_done) = sync("arp");

    let shown_routes = inst.ctl_json(&["route", "show"]);
    let shown_arps = inst.ctl_json(&["arp", "show"]);
    assert_eq!(Value::Array(synced_routes.clone()), shown_routes);
    assert_eq!(Value::Array(synced_arps.clone()), shown_arps);
    assert_eq!(synced_routes.len(), 1200);
    assert_eq!(synced_arps.len(), 39);
    assert_eq!(route_done["count"], 1200);
    assert_eq!(arp_done["count"], 39);
    // 1200 adds + replace + del + default route; 40 adds + 1 del.
    assert_eq!(route_done["seq"], 1203);
    assert_eq!(arp_done["seq"], 41);

    // What was written is what is read, field by field.
    let by_dst = |dst: &str| {
        synced_routes
            .iter()
            .find(|r| r["dst"] == dst)
            .cloned()
            .unwrap_or(Value::Null)
    };
    for (line, want) in routes.iter().skip(3).take(50) {
        assert_eq!(by_dst(want["dst"].as_str().unwrap()), *want, "{line}");
    }
    assert_eq!(
        by_dst("10.0.1.0/25"),
        serde_json::json!({"dst":"10.0.1.0/25","via":"10.9.9.9","metric":77})
    );
    assert_eq!(by_dst("10.0.2.0/26"), Value::Null);

    // Then live changes, once each, continuing the sequence.
    inst.ctl_ok(&["route", "add", "11.0.0.0/8", "dev", "eth9"]);
    inst.ctl_ok(&["arp", "replace", "02-00-00-00-00-01", "192.168.7.200"]);
    let a = c.next();
    assert_eq!(a["op"], "create");
    assert_eq!(a["seq"], 1204);
    assert_eq!(
        a["entry"],
        serde_json::json!({"dst":"11.0.0.0/8","dev":"eth9","metric":0})
    );
    let b = c.next();
    assert_eq!(b["op"], "update");
    assert_eq!(b["table"], "arp");
    assert_eq!(b["seq"], 42);
    assert_eq!(b["key"], "02:00:00:00:00:01");
    assert_eq!(
        b["entry"],
        serde_json::json!({"mac":"02:00:00:00:00:01","ip":"192.168.7.200"})
    );
    // Nothing more.
    inst.expect_markers_next(&["route", "arp"], &mut [&mut c]);
}

/// A client that joins while a large batch is being applied: every key appears exactly once,
/// either in the sync or as a later create, and the creates come in sequence order.
#[test]
fn joining_during_writes_gives_no_gap_and_no_duplicate() {
    /// Routes the writer has at most.
    const N: usize = 64_000;
    /// The first batch, which the client most likely joins during: the daemon applies a batch in
    /// pieces, and a join between two batches would read a table at rest.
    const FIRST: usize = 40_000;
    /// The later batches, until the joiner has synced and one more.
    const LATER: usize = 4_000;
    let inst = Instance::start_with(&["--route-capacity", "65536"]);
    let routes = varied_routes(N);
    let synced = AtomicBool::new(false);
    thread::scope(|s| {
        // The writer goes on until one batch after the sync, so that creates follow the sync
        // whatever the machine's speed (only a sync slower than N - FIRST routes outruns it).
        let writer = s.spawn(|| {
            let (mut written, mut size) = (0, FIRST);
            while written < N {
                let after_the_sync = synced.load(SeqCst);
                let chunk = &routes[written..N.min(written + size)];
                let text: String = chunk.iter().map(|(l, _)| l.clone() + "\n").collect();
                let o = inst.batch(&text, false);
                assert_eq!(code(&o), 0, "{}", stderr(&o));
                written += chunk.len();
                size = LATER;
                if after_the_sync {
                    break;
                }
            }
            written
        });
        // Join once the writes have started.
        inst.eventually("the writes have started", || {
            inst.ctl_json(&["status"])["routes"].as_u64().unwrap() > 0
        });
        let mut c = inst.client_unsynced("joiner", &["--table", "route"]);
        let lines = c.collect_until(|v| v["op"] == "sync-done");
        synced.store(true, SeqCst);
        let done = lines.last().unwrap().clone();
        let mut seen: HashMap<String, Value> = lines[..lines.len() - 1]
            .iter()
            .map(|v| (v["key"].as_str().unwrap().to_string(), v["entry"].clone()))
            .collect();
        assert_eq!(seen.len() as u64, done["count"].as_u64().unwrap());
        let written = writer.join().expect("writer");
        assert!(
            seen.len() < written,
            "the client synced only after all {N} routes were written: this run did not test a \
             join during writes"
        );
        let mut last_seq = done["seq"].as_u64().unwrap();
        while seen.len() < written {
            let v = c.next();
            assert_eq!(v["op"], "create", "{v}");
            let seq = v["seq"].as_u64().unwrap();
            assert!(seq > last_seq, "out of order: {seq} after {last_seq}");
            last_seq = seq;
            let key = v["key"].as_str().unwrap().to_string();
            let again = seen.insert(key.clone(), v["entry"].clone());
            assert!(
                again.is_none(),
                "{key} shown twice (sync had {})",
                done["count"]
            );
        }
        for (_, want) in &routes[..written] {
            assert_eq!(seen[want["dst"].as_str().unwrap()], *want);
        }
        // Nothing more.
        inst.expect_markers_next(&["route"], &mut [&mut c]);
    });
}
