//! docs/guarantees.md §3: a flush empties shared memory, is announced in-band per table and with
//! one SIGUSR1 to each client that handles it; later changes flow as before.
#![forbid(unsafe_code)]

mod common;

use common::*;
use nix::sys::signal::Signal;

#[test]
fn flush_reaches_every_client_and_empties_the_tables() {
    let inst = Instance::start();
    let routes = varied_routes(300);
    let mut text: String = routes.iter().map(|(l, _)| l.clone() + "\n").collect();
    text += "arp add 00:11:22:33:44:55 192.168.1.10 dev eth0\n";
    assert_eq!(code(&inst.batch(&text, false)), 0);
    let mut clients = vec![inst.client("a", &[]), inst.client("b", &[])];
    // rtmctl watch registers without a SIGUSR1 handler: it must not be signalled.
    let mut watch = inst.watch();
    inst.eventually("3 registered clients", || inst.client_names().len() == 3);

    inst.ctl_ok(&["flush"]);

    for c in &mut clients {
        let (mut route_flush, mut arp_flush, mut signalled) = (false, false, false);
        while !(route_flush && arp_flush && signalled) {
            let v = c.next();
            match (v["op"].as_str().unwrap(), v["table"].as_str()) {
                ("flush", Some("route")) => {
                    assert_eq!(v["seq"], 301);
                    route_flush = true;
                }
                ("flush", Some("arp")) => {
                    assert_eq!(v["seq"], 2);
                    arp_flush = true;
                }
                ("signal", _) => {
                    assert_eq!(v["signal"], "SIGUSR1");
                    signalled = true;
                }
                _ => panic!("unexpected {v}"),
            }
        }
        // The mirror is empty.
        c.signal(Signal::SIGUSR2);
        let done = c.expect(|v| v["op"] == "mirror-done");
        assert_eq!(done["routes"], 0);
        assert_eq!(done["arps"], 0);
    }
    assert_eq!(watch.next()["op"], "flush");
    assert_eq!(watch.next()["op"], "flush");

    // Shared memory is empty too (read without the daemon's help).
    let dump = run(
        {
            let mut c = std::process::Command::new(RTM_CLIENT);
            c.args(["dump", "--json", "--shm-dir"])
                .arg(&inst.shm_dir)
                .args(["--instance", "t"]);
            c
        },
        None,
        DEADLINE,
    );
    assert_eq!(stdout(&dump).trim(), r#"{"arps":[],"routes":[]}"#);

    // Changes flow again, to every client, the watcher included.
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    for c in clients.iter_mut().chain(std::iter::once(&mut watch)) {
        let v = c.next();
        assert_eq!(v["op"], "create");
        assert_eq!(v["seq"], 302);
        assert_eq!(v["entry"]["dst"], "10.1.0.0/16");
    }
    assert!(
        watch.child.try_wait().unwrap().is_none(),
        "rtmctl watch died"
    );
    inst.expect_markers_next(&["route", "arp"], &mut [&mut watch]);
}

#[test]
fn route_flush_leaves_arp_alone() {
    let inst = Instance::start();
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.168.1.10"]);
    let mut c = inst.client("a", &[]);
    inst.ctl_ok(&["route", "flush"]);
    let mut ops = [c.next(), c.next()];
    ops.sort_by_key(|v| v["op"].as_str().unwrap().to_string());
    assert_eq!(ops[0]["op"], "flush");
    assert_eq!(ops[0]["table"], "route");
    assert_eq!(ops[1]["op"], "signal");
    assert_eq!(inst.ctl_ok(&["route", "show"]), "");
    assert_eq!(
        inst.ctl_ok(&["arp", "show"]),
        "192.168.1.10 lladdr 00:11:22:33:44:55\n"
    );
    c.signal(Signal::SIGUSR2);
    let done = c.expect(|v| v["op"] == "mirror-done");
    assert_eq!(done["routes"], 0);
    assert_eq!(done["arps"], 1);
}

/// SIGUSR1 is a doorbell that can overtake queued notifications: the re-read it triggers must
/// not swallow the creates and deletes still on their way.
#[test]
fn sigusr1_reread_keeps_in_flight_changes() {
    let inst = Instance::start();
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.168.1.10"]);
    let mut c = inst.client("a", &[]);
    let keys: Vec<String> = (0..16).map(|i| format!("10.{i}.0.0/16")).collect();
    for (op, seq0) in [("add", 0), ("del", 16)] {
        // Hold the client so that the notifications queue up behind the signal.
        c.signal(Signal::SIGSTOP);
        for k in &keys {
            let mut args = vec!["route", op, k.as_str()];
            if op == "add" {
                args.extend(["dev", "eth0"]);
            }
            inst.ctl_ok(&args);
        }
        inst.ctl_ok(&["arp", "flush"]);
        c.signal(Signal::SIGCONT);
        let want = if op == "add" { "create" } else { "delete" };
        let mut got = Vec::new();
        let mut signalled = false;
        while got.len() < keys.len() || !signalled {
            let v = c.next();
            match v["op"].as_str().unwrap() {
                "signal" => signalled = true,
                "flush" => assert_eq!(v["table"], "arp"),
                o => {
                    assert_eq!(o, want, "{v}");
                    assert_eq!(v["seq"], seq0 + got.len() as u64 + 1, "{v}");
                    got.push(v["key"].as_str().unwrap().to_string());
                }
            }
        }
        assert_eq!(got, keys);
        c.signal(Signal::SIGUSR2);
        let done = c.expect(|v| v["op"] == "mirror-done");
        assert_eq!(done["routes"], if op == "add" { 16 } else { 0 });
        assert_eq!(done["arps"], 0);
    }
}
