//! `rtmd --kernel import`: rtm follows the kernel's IPv4 routes. Each test makes a network
//! namespace of its own (`ip netns add`, removed at the end) with a veth pair in it, runs rtmd
//! inside it and changes the kernel's routes with `ip`. Needs root and iproute2; the tests say
//! why and pass without checking anything where they cannot run.

mod common;

use std::process::Command;

use common::netns::{comparable, converges, needs_netns, rtm_table, Netns};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

/// Routes present at start, added and deleted later appear and vanish in rtm, as events to a
/// client and in shared memory.
#[test]
fn routes_follow_ip_route() {
    needs_netns!();
    let ns = Netns::new();
    ns.route("add 10.1.0.0/16 via 192.0.2.2");
    let inst = ns.start_import(&[]);
    let before = rtm_table(&inst);
    assert_eq!(before["10.1.0.0/16"]["via"], "192.0.2.2", "{before:?}");
    assert_eq!(before["10.1.0.0/16"]["dev"], "va", "{before:?}");
    assert_eq!(before["192.0.2.0/24"]["dev"], "va", "{before:?}");

    let mut c = inst.client("k", &["--table", "route"]);
    ns.route("add 10.2.0.0/24 dev vb metric 7");
    let ev = c.expect(|v| v["key"] == "10.2.0.0/24");
    assert_eq!(ev["op"], "create", "{ev}");
    assert_eq!(ev["entry"]["dev"], "vb", "{ev}");
    assert_eq!(ev["entry"]["metric"], 7, "{ev}");
    let o = run(
        {
            let mut l = Command::new(RTM_CLIENT);
            l.arg("--socket")
                .arg(&inst.socket)
                .args(["lookup", "10.2.0.9"]);
            l
        },
        None,
        DEADLINE,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("10.2.0.0/24"), "lookup: {}", stdout(&o));

    // The mirror is a supervised actor of its own: `status` counts its restarts.
    let st = inst.status();
    assert_eq!(st["restarts"]["kernel"], 0, "{st}");
    assert!(st["counters"].get("kernel_restarts").is_none(), "{st}");
    // And what it did: one dump, the routes it put into rtm (the two at start, then one).
    let n = &st["counters"];
    assert_eq!(n["kernel_dumps"], 1, "{n}");
    assert_eq!(n["kernel_overflows"], 0, "{n}");
    assert_eq!(n["kernel_changes"], before.len() as u64 + 1, "{n}");
    assert_eq!(n["kernel_refused"], 0, "{n}");
    assert!(
        n.get("kernel_export_writes").is_none(),
        "export is off: {n}"
    );

    ns.route("del 10.2.0.0/24 dev vb metric 7");
    let ev = c.expect(|v| v["key"] == "10.2.0.0/24");
    assert_eq!(ev["op"], "delete", "{ev}");
    converges(&ns, &inst);
}

/// The kernel keys by (prefix, tos, priority), rtm by prefix: the lowest metric is mirrored and
/// the next one is promoted when it goes.
#[test]
fn next_metric_is_promoted() {
    needs_netns!();
    let ns = Netns::new();
    let inst = ns.start_import(&[]);
    let mut c = inst.client("k", &["--table", "route"]);
    ns.route("add 10.3.0.0/24 via 192.0.2.2 metric 20");
    ns.route("add 10.3.0.0/24 via 198.51.100.2 metric 10");
    let ev = c.expect(|v| v["key"] == "10.3.0.0/24" && v["entry"]["metric"] == 10);
    assert_eq!(ev["entry"]["via"], "198.51.100.2", "{ev}");
    // A higher metric than the mirrored one changes nothing in rtm.
    ns.route("add 10.3.0.0/24 via 192.0.2.3 metric 30");
    ns.route("del 10.3.0.0/24 metric 10");
    let ev = c.expect(|v| v["key"] == "10.3.0.0/24");
    assert_eq!(ev["op"], "update", "{ev}");
    assert_eq!(ev["entry"]["metric"], 20, "{ev}");
    assert_eq!(ev["entry"]["via"], "192.0.2.2", "{ev}");
    ns.route("del 10.3.0.0/24 metric 20");
    let ev = c.expect(|v| v["key"] == "10.3.0.0/24");
    assert_eq!(ev["entry"]["metric"], 30, "{ev}");
    converges(&ns, &inst);
}

/// The kernel drops a downed or deleted link's routes without telling route listeners: rtm
/// drops them too, and keeps the other link's.
#[test]
fn link_down_and_delete_remove_its_routes() {
    needs_netns!();
    let ns = Netns::new();
    ns.route("add 10.4.0.0/24 via 192.0.2.2");
    ns.route("add 10.5.0.0/24 dev vb");
    let inst = ns.start_import(&[]);
    inst.eventually("both routes mirrored", || rtm_table(&inst).len() == 4);
    ns.ip_ok(&["link", "set", "va", "down"], true);
    inst.eventually("va's routes gone", || {
        let t = rtm_table(&inst);
        !t.contains_key("10.4.0.0/24") && !t.contains_key("192.0.2.0/24")
    });
    assert!(rtm_table(&inst).contains_key("10.5.0.0/24"));
    converges(&ns, &inst);
    ns.ip_ok(&["link", "set", "va", "up"], true);
    ns.route("add 10.4.0.0/24 via 192.0.2.2");
    inst.eventually("va's route back", || {
        rtm_table(&inst).contains_key("10.4.0.0/24")
    });
    // Deleting one end of the pair deletes both.
    ns.ip_ok(&["link", "del", "vb"], true);
    inst.eventually("all routes gone", || rtm_table(&inst).is_empty());
    converges(&ns, &inst);
}

/// A burst of a few thousand routes into a deliberately tiny event buffer: the kernel drops
/// events (ENOBUFS), rtmd dumps again, and rtm's table ends equal to the kernel's.
#[test]
fn burst_with_enobufs_ends_equal() {
    needs_netns!();
    let ns = Netns::new();
    let inst = ns.start_import(&["--kernel-rcvbuf", "1024"]);
    let mut c = inst.client("k", &["--table", "route"]);
    let n = 3000;
    let mut batch = String::new();
    for i in 0..n {
        let dev = if i % 2 == 0 { "va" } else { "vb" };
        batch += &format!(
            "route add 10.{}.{}.0/24 dev {dev} metric {}\n",
            100 + i / 256,
            i % 256,
            i % 3
        );
    }
    // A few with a second metric, so that promotion takes part in the reconcile.
    for i in 0..50 {
        batch += &format!(
            "route add 10.{}.{}.0/24 via 192.0.2.9 metric 100\n",
            100 + i / 256,
            i % 256
        );
    }
    let mut cmd = ns.ip_cmd(&["-batch", "-"], true);
    cmd.stdin(std::process::Stdio::piped());
    let o = run(cmd, Some(batch.as_bytes()), DEADLINE);
    assert_eq!(code(&o), 0, "ip -batch: {}", stderr(&o));
    // Half of them again, out, so that the re-dump has something to sweep.
    let mut del = String::new();
    for i in (0..n).step_by(2) {
        del += &format!(
            "route del 10.{}.{}.0/24 metric {}\n",
            100 + i / 256,
            i % 256,
            i % 3
        );
    }
    let mut cmd = ns.ip_cmd(&["-batch", "-"], true);
    cmd.stdin(std::process::Stdio::piped());
    let o = run(cmd, Some(del.as_bytes()), DEADLINE);
    assert_eq!(code(&o), 0, "ip -batch: {}", stderr(&o));

    let kernel = ns.kernel_table();
    assert_eq!(kernel.len(), 2 + n / 2 + 25, "the kernel's own count");
    converges(&ns, &inst);
    assert!(
        inst.log_text().contains("ENOBUFS"),
        "the tiny buffer did not overflow, so the re-dump was not tested: {}",
        inst.log_text()
    );
    // One dump at start and one after each overflow (the last may still be on its way).
    inst.eventually("a dump after each overflow", || {
        let c = &inst.status()["counters"];
        c["kernel_overflows"].as_u64() >= Some(1)
            && c["kernel_dumps"].as_u64() > c["kernel_overflows"].as_u64()
    });
    // The client heard the same table as ordinary changes (it reads until it has; a line
    // missing for DEADLINE fails the test).
    let mut model = EventModel::from_seen(&c);
    let mut quiet = 0;
    loop {
        match c.next_within(std::time::Duration::from_millis(200)) {
            Some(v) => model.feed(&v),
            // Compared only once the client has nothing more to say for a moment.
            None if comparable(model.routes.clone()) == kernel => break,
            None => {
                quiet += 1;
                assert!(quiet < 100, "the client's table never became the kernel's");
            }
        }
    }
}

/// A long burst into a buffer that overflows now and then: after each re-dump the kernel must
/// be told the queue is empty again (only a read that empties it does), or it goes on
/// dropping events without another ENOBUFS and the routes added meanwhile never reach rtm.
#[test]
fn a_long_burst_past_an_overflow_loses_nothing() {
    needs_netns!();
    let ns = Netns::new();
    let inst = ns.start_import(&["--kernel-rcvbuf", "262144", "--route-capacity", "65536"]);
    let burst = |from: usize, n: usize| {
        let mut batch = String::new();
        for i in from..from + n {
            batch += &format!("route add 10.{}.{}.0/24 dev va\n", 64 + i / 256, i % 256);
        }
        let mut cmd = ns.ip_cmd(&["-batch", "-"], true);
        cmd.stdin(std::process::Stdio::piped());
        let o = run(cmd, Some(batch.as_bytes()), DEADLINE);
        assert_eq!(code(&o), 0, "ip -batch: {}", stderr(&o));
    };
    // rtmd stopped while 20,000 routes go in: far more events than its buffer holds, so the
    // kernel drops some, whatever the machine's speed. Then, as it drains, dumps and
    // reconciles, 20,000 more.
    inst.signal_daemon(Signal::SIGSTOP);
    burst(0, 20_000);
    inst.signal_daemon(Signal::SIGCONT);
    burst(20_000, 20_000);
    assert_eq!(
        ns.kernel_table().len(),
        2 + 40_000,
        "the kernel's own count"
    );
    converges(&ns, &inst);
    assert!(
        inst.log_text().contains("ENOBUFS"),
        "the buffer did not overflow, so nothing after a re-dump was tested: {}",
        inst.log_text()
    );
}

/// A mirrored route is marked as the kernel's (JSON, text, a client's events), and `rtmctl`
/// leaves it alone unless told `--override-kernel`: a refused change, delete, batch or flush
/// changes nothing at all.
#[test]
fn kernel_routes_are_marked_and_rtmctl_overrides_them_only_when_told() {
    needs_netns!();
    let ns = Netns::new();
    ns.route("add 10.1.0.0/16 via 192.0.2.2");
    let dash_dir = tempfile::tempdir().unwrap();
    let dash = dash_dir.path().join("dash.sock");
    let inst = ns.start_import(&["--http-socket", dash.to_str().unwrap()]);
    inst.eventually("10.1.0.0/16 mirrored", || {
        inst.routes().contains_key("10.1.0.0/16")
    });
    inst.ctl_line("route add 10.7.0.0/16 via 192.0.2.3");
    inst.ctl_line("arp add 02:00:00:00:00:01 192.0.2.3");
    let t = inst.routes();
    assert_eq!(t["10.1.0.0/16"]["origin"], "kernel", "{t:?}");
    assert!(t["10.7.0.0/16"].get("origin").is_none(), "rtm's own: {t:?}");
    let text = inst.ctl_line("route show");
    assert!(
        text.contains("10.1.0.0/16 via 192.0.2.2 dev va origin kernel\n")
            && text.contains("10.7.0.0/16 via 192.0.2.3\n"),
        "{text}"
    );
    // A client reads the origin from shared memory.
    let c = inst.client("k", &["--table", "route"]);
    let sync: Vec<Value> = c
        .seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ev = sync
        .iter()
        .find(|v| v["key"] == "10.1.0.0/16")
        .expect("synced");
    assert_eq!(ev["entry"]["origin"], "kernel", "{ev}");

    // The dashboard shows the origin, and offers no delete for the kernel's route; a change
    // sent anyway is refused with the reason.
    let page = common::http::request_uds(&dash, "GET", "/routes", &[], "").body;
    let row = |key: &str| {
        let at = page.find(&format!("data-key=\"{key}\"")).expect(key);
        page[at..at + page[at..].find("</tr>").unwrap()].to_string()
    };
    assert!(row("10.1.0.0/16").contains("<td>kernel</td>"), "{page}");
    assert!(!row("10.1.0.0/16").contains("data-del-route"), "{page}");
    assert!(row("10.7.0.0/16").contains("<td>rtm</td>"), "{page}");
    assert!(row("10.7.0.0/16").contains("data-del-route"), "{page}");
    let a = common::http::request_uds(
        &dash,
        "POST",
        "/api/change",
        &[("Content-Type", "application/json")],
        r#"{"table":"route","op":"del","prefix":"10.1.0.0/16"}"#,
    );
    assert!(a.body.contains("--override-kernel"), "{a:?}");

    let before = (inst.routes(), inst.arps());
    for args in [
        &["route", "del", "10.1.0.0/16"][..],
        &["route", "replace", "10.1.0.0/16", "dev", "vb"],
        &[
            "route",
            "change",
            "10.1.0.0/16",
            "via",
            "192.0.2.2",
            "metric",
            "5",
        ],
        &["route", "flush"],
        &["flush"],
    ] {
        let o = inst.ctl(args);
        assert_eq!(
            code(&o),
            2,
            "rtmctl {args:?} must be refused: {}",
            stdout(&o)
        );
        let e = stderr(&o);
        assert!(
            e.contains("kernel") && e.contains("--override-kernel"),
            "rtmctl {args:?}: {e}"
        );
        if args[0] == "route" && args.len() > 2 {
            assert!(e.contains("10.1.0.0/16"), "names the route: {e}");
        }
    }
    let o = inst.batch(
        "route add 10.8.0.0/16 via 192.0.2.3\nroute del 10.1.0.0/16\n",
        false,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
    inst.ctl_line("route del 10.8.0.0/16");
    assert_eq!(
        (inst.routes(), inst.arps()),
        before,
        "a refusal changed something"
    );

    // Told to, it changes them; the kernel keeps its own.
    inst.ctl_line("--override-kernel route del 10.1.0.0/16");
    inst.ctl_line("route del 192.0.2.0/24 --override-kernel");
    let t = inst.routes();
    assert!(
        !t.contains_key("10.1.0.0/16") && !t.contains_key("192.0.2.0/24"),
        "{t:?}"
    );
    assert!(ns.kernel_table().contains_key("10.1.0.0/16"));
    let o = inst.ctl(&["route", "flush"]);
    assert_eq!(code(&o), 2, "198.51.100.0/24 is still the kernel's");
    inst.ctl_line("--override-kernel flush");
    assert!(inst.routes().is_empty() && inst.arps().is_empty());
    // A kernel event for a prefix puts the kernel's route back.
    ns.route("replace 10.1.0.0/16 via 192.0.2.4");
    inst.eventually("10.1.0.0/16 back", || {
        inst.routes()
            .get("10.1.0.0/16")
            .is_some_and(|r| r["via"] == "192.0.2.4" && r["origin"] == "kernel")
    });
}

/// With `--state-dir`, the kernel routes rtm kept across a restart are reconciled with the
/// kernel's: one the kernel lost while rtmd was down goes, one it gained comes, and rtm's own
/// routes stay.
#[test]
fn routes_the_kernel_lost_while_rtmd_was_down_are_swept() {
    needs_netns!();
    let ns = Netns::new();
    ns.route("add 10.1.0.0/16 via 192.0.2.2");
    ns.route("add 10.2.0.0/16 via 192.0.2.2");
    let mut inst = Instance::unstarted();
    let state = inst.dir.path().join("state");
    let args = ["--kernel", "import", "--state-dir", state.to_str().unwrap()];
    ns.start_rtmd(&mut inst, &args);
    inst.eventually("both mirrored", || {
        let t = inst.routes();
        t.contains_key("10.1.0.0/16") && t.contains_key("10.2.0.0/16")
    });
    inst.ctl_line("route add 10.9.0.0/16 via 192.0.2.9");
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());

    ns.route("del 10.2.0.0/16");
    ns.route("add 10.3.0.0/16 via 192.0.2.2");
    ns.start_rtmd(&mut inst, &args);
    inst.eventually("the kernel's changes while down are mirrored", || {
        let t = inst.routes();
        !t.contains_key("10.2.0.0/16") && t.contains_key("10.3.0.0/16")
    });
    let t = inst.routes();
    assert_eq!(t["10.1.0.0/16"]["origin"], "kernel", "{t:?}");
    assert_eq!(t["10.9.0.0/16"]["via"], "192.0.2.9", "{t:?}");
    assert!(t["10.9.0.0/16"].get("origin").is_none(), "{t:?}");
    let mut kernel = ns.kernel_table();
    kernel.insert("10.9.0.0/16".into(), Value::Null);
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        kernel.keys().collect::<Vec<_>>(),
        "rtm holds the kernel's routes and its own"
    );
}
