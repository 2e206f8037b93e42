//! Each table actor runs on a thread of its own: while the route table is busy (a journal sync,
//! a compaction, a republish — here a fault-injection stall of its thread), ARP changes,
//! ARP reads, `rtmctl clients` and `rtmctl status` are answered.
#![cfg(feature = "fault-injection")]
#![forbid(unsafe_code)]

mod common;

use std::process::Stdio;

use common::*;

#[test]
fn a_busy_route_table_holds_up_neither_the_arp_table_nor_status() {
    let inst = Instance::start();
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    let _sub = inst.client("sub", &["--table", "arp"]);
    // The route table's thread is stuck for 10 s.
    let mut stall = KillOnDrop(
        inst.ctl_cmd(&["debug", "stall", "route", "10000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    inst.eventually("the stall has begun", || {
        inst.log_text().contains("stalling this actor's thread")
    });
    inst.ctl_ok(&[
        "arp",
        "add",
        "00:11:22:33:44:55",
        "192.168.1.10",
        "dev",
        "eth0",
    ]);
    assert_eq!(
        inst.ctl_ok(&["arp", "show"]),
        "192.168.1.10 lladdr 00:11:22:33:44:55 dev eth0\n"
    );
    assert_eq!(inst.client_names(), ["sub"]);
    let st = inst.status();
    assert_eq!(
        (st["routes"].as_u64(), st["arps"].as_u64()),
        (Some(1), Some(1)),
        "{st}"
    );
    // All of that was answered while the route table was still stalled.
    assert!(
        stall.0.try_wait().unwrap().is_none(),
        "the route stall ended before the ARP requests were answered"
    );
    drop(stall);
}
