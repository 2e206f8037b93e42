//! docs/cli.md, "JSON (-j)": the JSON shapes other programs parse.
#![forbid(unsafe_code)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn show_get_clients_status_and_watch_shapes() {
    let inst = Instance::start();
    let mut w = inst.watch();
    inst.eventually("watch registered", || {
        inst.client_names() == ["rtmctl-watch"]
    });
    inst.ctl_line("route add 10.1.0.0/16 via 192.168.1.1 dev eth0 metric 10");
    inst.ctl_ok(&["route", "add", "10.0.0.0/8", "via", "192.168.1.254"]);
    inst.ctl_ok(&[
        "arp",
        "add",
        "00:11:22:33:44:55",
        "192.168.1.10",
        "dev",
        "eth0",
    ]);

    assert_eq!(
        inst.ctl_json(&["route", "show"]),
        json!([
            {"dst":"10.0.0.0/8","via":"192.168.1.254","metric":0},
            {"dst":"10.1.0.0/16","via":"192.168.1.1","dev":"eth0","metric":10}
        ])
    );
    assert_eq!(
        inst.ctl_json(&["route", "show", "10.1.0.0/16"]),
        json!([{"dst":"10.1.0.0/16","via":"192.168.1.1","dev":"eth0","metric":10}])
    );
    assert_eq!(
        inst.ctl_json(&["route", "get", "10.1.2.3"]),
        json!({"dst":"10.1.0.0/16","via":"192.168.1.1","dev":"eth0","metric":10})
    );
    assert_eq!(
        inst.ctl_json(&["route", "get", "10.200.0.1"]),
        json!({"dst":"10.0.0.0/8","via":"192.168.1.254","metric":0})
    );
    assert_eq!(
        inst.ctl_json(&["arp", "get", "00-11-22-33-44-55"]),
        json!({"mac":"00:11:22:33:44:55","ip":"192.168.1.10","dev":"eth0"})
    );
    // Text follows iproute2, metric 0 omitted.
    assert_eq!(
        inst.ctl_ok(&["route", "show"]),
        "10.0.0.0/8 via 192.168.1.254\n10.1.0.0/16 via 192.168.1.1 dev eth0 metric 10\n"
    );
    assert_eq!(
        inst.ctl_ok(&["arp", "show"]),
        "192.168.1.10 lladdr 00:11:22:33:44:55 dev eth0\n"
    );

    let clients = inst.ctl_json(&["clients"]);
    let c = &clients[0];
    assert_eq!(c["name"], "rtmctl-watch");
    assert_eq!(c["pid"], w.child.id());
    assert_eq!(c["uid"], nix::unistd::geteuid().as_raw());
    assert!(c["id"].is_u64() && c["queued"].is_u64() && c["resyncs"].is_u64());
    assert_eq!(c["sent"], 3, "{c}");
    let at = c["connected_at"].as_str().unwrap();
    assert!(
        at.len() >= 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );

    let st = inst.ctl_json(&["status"]);
    for k in [
        "version",
        "uptime_s",
        "routes",
        "arps",
        "route_capacity",
        "arp_capacity",
        "clients",
        "restarts",
        "counters",
    ] {
        assert!(st.get(k).is_some(), "status lacks {k}: {st}");
    }
    assert_eq!(st["routes"], 2);
    assert_eq!(st["arps"], 1);
    assert_eq!(st["route_capacity"], 8192);
    assert_eq!(st["arp_capacity"], 1024);
    assert_eq!(st["clients"], 1);
    assert_eq!(
        st["restarts"],
        json!({"route":0,"arp":0,"broker":0,"listener":0,"registry":0})
    );
    assert_eq!(st["last_failure"], serde_json::Value::Null);
    assert!(st["counters"]["requests"].as_u64().unwrap() >= 4, "{st}");

    // watch prints live events only (no sync), with the entry read from shared memory.
    assert_eq!(
        w.next(),
        json!({"seq":1,"op":"create","table":"route","key":"10.1.0.0/16","entry":{"dst":"10.1.0.0/16","via":"192.168.1.1","dev":"eth0","metric":10}})
    );
    assert_eq!(w.next()["key"], "10.0.0.0/8");
    assert_eq!(
        w.next(),
        json!({"seq":1,"op":"create","table":"arp","key":"00:11:22:33:44:55","entry":{"mac":"00:11:22:33:44:55","ip":"192.168.1.10","dev":"eth0"}})
    );
}
