//! docs/guarantees.md §2: every change reaches every registered client, in per-table sequence
//! order, with the entry read from shared memory.
#![forbid(unsafe_code)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn two_clients_see_the_same_changes_in_order() {
    let inst = Instance::start();
    let mut a = inst.client("a", &[]);
    let mut b = inst.client("b", &[]);
    let steps = [
        "route add 10.1.0.0/16 via 192.168.1.1 dev eth0 metric 10",
        "route add 10.2.0.0/16 dev eth1",
        "route change 10.1.0.0/16 via 192.168.1.2",
        "arp add AA-BB-CC-DD-EE-01 192.168.1.10 dev eth0",
        "route replace 10.2.0.0/16 via 192.168.2.1 metric 5",
        "route replace 10.3.0.0/16 dev eth3",
        "arp change aabb.ccdd.ee01 192.168.1.11",
        "route del 10.1.0.0/16",
        "arp del aa:bb:cc:dd:ee:01",
    ];
    let expected = [
        json!({"seq":1,"op":"create","table":"route","key":"10.1.0.0/16","entry":{"dst":"10.1.0.0/16","via":"192.168.1.1","dev":"eth0","metric":10}}),
        json!({"seq":2,"op":"create","table":"route","key":"10.2.0.0/16","entry":{"dst":"10.2.0.0/16","dev":"eth1","metric":0}}),
        json!({"seq":3,"op":"update","table":"route","key":"10.1.0.0/16","entry":{"dst":"10.1.0.0/16","via":"192.168.1.2","metric":0}}),
        json!({"seq":1,"op":"create","table":"arp","key":"aa:bb:cc:dd:ee:01","entry":{"mac":"aa:bb:cc:dd:ee:01","ip":"192.168.1.10","dev":"eth0"}}),
        json!({"seq":4,"op":"update","table":"route","key":"10.2.0.0/16","entry":{"dst":"10.2.0.0/16","via":"192.168.2.1","metric":5}}),
        json!({"seq":5,"op":"create","table":"route","key":"10.3.0.0/16","entry":{"dst":"10.3.0.0/16","dev":"eth3","metric":0}}),
        json!({"seq":2,"op":"update","table":"arp","key":"aa:bb:cc:dd:ee:01","entry":{"mac":"aa:bb:cc:dd:ee:01","ip":"192.168.1.11"}}),
        json!({"seq":6,"op":"delete","table":"route","key":"10.1.0.0/16"}),
        json!({"seq":3,"op":"delete","table":"arp","key":"aa:bb:cc:dd:ee:01"}),
    ];
    // One step at a time: a client reads the entry from shared memory when it handles the
    // event, so waiting for each event pins down which entry it must print.
    for (step, want) in steps.iter().zip(&expected) {
        inst.ctl_line(step);
        for c in [&mut a, &mut b] {
            assert_eq!(&c.next(), want, "after {step:?}");
        }
    }
    // Nothing more.
    inst.expect_markers_next(&["route", "arp"], &mut [&mut a, &mut b]);
}

#[test]
fn a_batch_reaches_every_client_in_sequence_order() {
    let inst = Instance::start();
    let mut clients: Vec<_> = (0..3)
        .map(|i| inst.client(&format!("c{i}"), &["--table", "route"]))
        .collect();
    let routes = varied_routes(2000);
    let text: String = routes.iter().map(|(l, _)| l.clone() + "\n").collect();
    let o = inst.batch(&text, false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for c in &mut clients {
        for (i, (_, want)) in routes.iter().enumerate() {
            let v = c.next();
            assert_eq!(v["seq"], i as u64 + 1);
            assert_eq!(v["op"], "create");
            assert_eq!(v["entry"], *want);
        }
    }
}
