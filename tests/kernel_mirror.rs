//! `rtmd --kernel import`: rtm follows the kernel's IPv4 routes. Each test makes a network
//! namespace of its own (`ip netns add`, removed at the end) with a veth pair in it, runs rtmd
//! inside it and changes the kernel's routes with `ip`. Needs root and iproute2; the tests say
//! why and pass without checking anything where they cannot run.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::netns::{needs_netns, Netns};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

/// rtm's route table as `rtmctl -j route show` prints it, without the origin field.
fn rtm_table(inst: &Instance) -> BTreeMap<String, Value> {
    comparable(inst.routes())
}

/// Routes as rtm shows them, in the shape [`Netns::kernel_table`] gives.
fn comparable(routes: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    routes
        .into_iter()
        .map(|(k, mut v)| {
            if let Some(o) = v.as_object_mut() {
                o.remove("origin");
                o.entry("metric").or_insert(0.into());
            }
            (k, v)
        })
        .collect()
}

fn started(ns: &Netns, extra: &[&str]) -> Instance {
    let mut inst = Instance::unstarted();
    let mut args = vec!["--kernel", "import"];
    args.extend_from_slice(extra);
    ns.start_rtmd(&mut inst, &args);
    // The start dump: at least the connected routes of the two addresses.
    inst.eventually("the connected routes are mirrored", || {
        let t = rtm_table(&inst);
        t.contains_key("192.0.2.0/24") && t.contains_key("198.51.100.0/24")
    });
    inst
}

/// Waits (bounded) until rtm's table equals the kernel's; on failure says how they differ.
fn converges(ns: &Netns, inst: &Instance) {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let (rtm, kernel) = (rtm_table(inst), ns.kernel_table());
        if rtm == kernel {
            return;
        }
        if std::time::Instant::now() > end {
            let only_rtm: Vec<_> = rtm
                .iter()
                .filter(|(k, v)| kernel.get(*k) != Some(v))
                .take(5)
                .collect();
            let only_kernel: Vec<_> = kernel
                .iter()
                .filter(|(k, v)| rtm.get(*k) != Some(v))
                .take(5)
                .collect();
            panic!(
                "rtm has {} routes, the kernel {}; rtm differs at {only_rtm:?}, the kernel at {only_kernel:?}\nlog: {}",
                rtm.len(),
                kernel.len(),
                inst.log_text()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Routes present at start, added and deleted later appear and vanish in rtm, as events to a
/// client and in shared memory.
#[test]
fn routes_follow_ip_route() {
    needs_netns!();
    let ns = Netns::new();
    ns.route("add 10.1.0.0/16 via 192.0.2.2");
    let inst = started(&ns, &[]);
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
    let inst = started(&ns, &[]);
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
    let inst = started(&ns, &[]);
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
    let inst = started(&ns, &["--kernel-rcvbuf", "1024"]);
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
    let inst = started(
        &ns,
        &["--kernel-rcvbuf", "262144", "--route-capacity", "65536"],
    );
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
    let inst = started(&ns, &["--http-socket", dash.to_str().unwrap()]);
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

/// A route's paths as `(via, dev, weight)`: rtm's `nexthops` (`rtmctl -j`, `rtm-client
/// --json`) or the kernel's (`ip -j route`, where the gateway is `gateway`).
fn paths(r: &Value) -> Vec<(String, String, u64)> {
    let s = |h: &Value, k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    r.get("nexthops")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|h| {
                    let via = if h.get("gateway").is_some() {
                        s(h, "gateway")
                    } else {
                        s(h, "via")
                    };
                    (via, s(h, "dev"), h["weight"].as_u64().unwrap_or(0))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn path(via: &str, dev: &str, weight: u64) -> (String, String, u64) {
    (via.to_string(), dev.to_string(), weight)
}

/// The kernel's main-table route for `dst` (of protocol `proto` if given), as `ip -j` gives
/// it.
fn kernel_route(ns: &Netns, dst: &str, proto: Option<&str>) -> Option<Value> {
    let mut args = vec!["-j", "route", "show", "table", "main"];
    if let Some(p) = proto {
        args.extend(["proto", p]);
    }
    let v: Value = serde_json::from_str(&ns.ip_ok(&args, true)).expect("ip -j");
    v.as_array()
        .expect("array")
        .iter()
        .find(|r| r["dst"] == dst)
        .cloned()
}

/// `ip route add … nexthop … nexthop …`: rtm mirrors the route with both paths and their
/// weights, in the kernel's order (from the start dump and from events); a replace with other
/// weights updates it; a link going down takes its path out (one path left: an ordinary
/// route) and coming up puts it back, as the kernel does; `ip route del` deletes it, and a
/// deleted link takes a multipath route over it whole.
#[test]
fn multipath_routes_follow_ip_route() {
    needs_netns!();
    let ns = Netns::new();
    // At start: one path by gateway alone (the kernel finds the link), one by link alone.
    ns.route("add 10.51.0.0/24 nexthop via 192.0.2.3 weight 2 nexthop dev vb");
    let inst = started(&ns, &[]);
    inst.eventually("the start dump's multipath route", || {
        inst.routes().contains_key("10.51.0.0/24")
    });
    let r = &inst.routes()["10.51.0.0/24"];
    assert_eq!(
        paths(r),
        [path("192.0.2.3", "va", 2), path("", "vb", 1)],
        "{r}"
    );
    assert_eq!(r["origin"], "kernel", "{r}");
    assert!(r.get("via").is_none() && r.get("dev").is_none(), "{r}");

    let mut c = inst.client("k", &["--table", "route"]);
    ns.route(
        "add 10.50.0.0/24 nexthop via 192.0.2.2 dev va weight 1 nexthop via 198.51.100.2 dev vb weight 3",
    );
    let both = [path("192.0.2.2", "va", 1), path("198.51.100.2", "vb", 3)];
    let ev = c.expect(|v| v["key"] == "10.50.0.0/24");
    assert_eq!(ev["op"], "create", "{ev}");
    assert_eq!(paths(&ev["entry"]), both, "{ev}");
    assert_eq!(ev["entry"]["origin"], "kernel", "{ev}");
    let r = &inst.routes()["10.50.0.0/24"];
    assert_eq!(paths(r), both, "{r}");
    assert_eq!(
        paths(&kernel_route(&ns, "10.50.0.0/24", None).unwrap()),
        both,
        "the kernel's own view"
    );
    // And straight from shared memory, as a data plane reads it.
    let o = run(
        {
            let mut l = Command::new(RTM_CLIENT);
            l.arg("--socket")
                .arg(&inst.socket)
                .args(["--json", "lookup", "10.50.0.9"]);
            l
        },
        None,
        DEADLINE,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let looked: Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    assert_eq!(looked["dst"], "10.50.0.0/24", "{looked}");
    assert_eq!(paths(&looked), both, "{looked}");

    // The same path twice, as the kernel takes it.
    ns.route("add 10.54.0.0/24 nexthop via 192.0.2.2 dev va nexthop via 192.0.2.2 dev va weight 2");
    let ev = c.expect(|v| v["key"] == "10.54.0.0/24");
    assert_eq!(
        paths(&ev["entry"]),
        [path("192.0.2.2", "va", 1), path("192.0.2.2", "va", 2)],
        "{ev}"
    );
    ns.route("del 10.54.0.0/24");
    let ev = c.expect(|v| v["key"] == "10.54.0.0/24");
    assert_eq!(ev["op"], "delete", "{ev}");

    ns.route(
        "replace 10.50.0.0/24 nexthop via 192.0.2.2 dev va weight 2 nexthop via 198.51.100.2 dev vb weight 5",
    );
    let ev = c.expect(|v| v["key"] == "10.50.0.0/24");
    assert_eq!(ev["op"], "update", "{ev}");
    let reweighted = [path("192.0.2.2", "va", 2), path("198.51.100.2", "vb", 5)];
    assert_eq!(paths(&ev["entry"]), reweighted, "{ev}");

    // va down: the kernel marks its path dead (no route event) and forwards over vb alone.
    ns.ip_ok(&["link", "set", "va", "down"], true);
    let ev = c.expect(|v| v["key"] == "10.50.0.0/24");
    assert_eq!(ev["op"], "update", "{ev}");
    assert_eq!(ev["entry"]["via"], "198.51.100.2", "{ev}");
    assert_eq!(ev["entry"]["dev"], "vb", "{ev}");
    assert!(paths(&ev["entry"]).is_empty(), "{ev}");
    // 10.51.0.0/24 keeps its vb path too.
    inst.eventually("10.51.0.0/24 over vb alone", || {
        inst.routes()
            .get("10.51.0.0/24")
            .is_some_and(|r| r["dev"] == "vb" && r.get("nexthops").is_none())
    });
    // va up: the kernel revives the path.
    ns.ip_ok(&["link", "set", "va", "up"], true);
    let ev = c.expect(|v| v["key"] == "10.50.0.0/24");
    assert_eq!(paths(&ev["entry"]), reweighted, "{ev}");
    assert_eq!(
        paths(&kernel_route(&ns, "10.50.0.0/24", None).unwrap()),
        reweighted,
        "the kernel revived the path too"
    );

    ns.route("del 10.50.0.0/24");
    let ev = c.expect(|v| v["key"] == "10.50.0.0/24");
    assert_eq!(ev["op"], "delete", "{ev}");
    assert!(!inst.routes().contains_key("10.50.0.0/24"));
    let st = inst.status();
    assert_eq!(st["counters"]["kernel_refused"], 0, "{st}");

    // Deleting the pair deletes every route with a path over it.
    ns.ip_ok(&["link", "del", "vb"], true);
    inst.eventually("the multipath route gone with its link", || {
        inst.routes().is_empty()
    });
    assert!(kernel_route(&ns, "10.51.0.0/24", None).is_none());
}

/// Routes rtm does not carry are left out with their reason in the log: one using a
/// next-hop object (nhid) and, replacing a mirrored route, it takes that one out of rtm.
#[test]
fn nhid_routes_are_skipped_with_a_reason() {
    needs_netns!();
    let ns = Netns::new();
    if code(&run(ns.ip_cmd(&["nexthop", "show"], true), None, DEADLINE)) != 0 {
        eprintln!("skipped: this kernel has no next-hop objects");
        return;
    }
    ns.ip_ok(
        &["nexthop", "add", "id", "5", "via", "192.0.2.2", "dev", "va"],
        true,
    );
    ns.route("add 10.52.0.0/24 nhid 5");
    ns.route("add 10.53.0.0/24 via 198.51.100.2");
    let inst = started(&ns, &[]);
    inst.eventually("10.53.0.0/24 mirrored", || {
        inst.routes().contains_key("10.53.0.0/24")
    });
    assert!(!inst.routes().contains_key("10.52.0.0/24"));
    inst.eventually("the dump's skip logged", || {
        inst.log_text().contains("kernel routes not mirrored") && inst.log_text().contains("nhid")
    });
    let mut c = inst.client("k", &["--table", "route"]);
    ns.route("replace 10.53.0.0/24 nhid 5");
    let ev = c.expect(|v| v["key"] == "10.53.0.0/24");
    assert_eq!(ev["op"], "delete", "{ev}");
}

/// `rtmd --kernel export`: rtm's multipath route goes into the kernel with both paths and
/// their weights; a replace with other weights follows. With `--kernel-keep` and a state
/// directory, a restart's reconcile compares the paths: the kernel's copy left as rtm wrote
/// it is adopted as it is, one changed meanwhile is written back; a clean stop removes it.
#[test]
fn multipath_routes_are_exported() {
    needs_netns!();
    let ns = Netns::new();
    let mut inst = Instance::unstarted();
    let state = inst.dir.path().join("state");
    let args = [
        "--kernel",
        "export",
        "--kernel-keep",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    ns.start_rtmd(&mut inst, &args);
    inst.eventually("rtmd answers", || code(&inst.ctl(&["status"])) == 0);
    inst.ctl_line(
        "route add 10.60.0.0/24 metric 7 nexthop via 192.0.2.2 dev va weight 1 nexthop via 198.51.100.2 dev vb weight 3",
    );
    let both = [path("192.0.2.2", "va", 1), path("198.51.100.2", "vb", 3)];
    inst.eventually("the multipath route in the kernel", || {
        kernel_route(&ns, "10.60.0.0/24", Some("200")).is_some_and(|r| paths(&r) == both)
    });
    assert_eq!(
        kernel_route(&ns, "10.60.0.0/24", Some("200")).unwrap()["metric"],
        7
    );

    inst.ctl_line(
        "route replace 10.60.0.0/24 metric 7 nexthop via 192.0.2.2 dev va weight 4 nexthop via 198.51.100.3 dev vb weight 1",
    );
    let replaced = [path("192.0.2.2", "va", 4), path("198.51.100.3", "vb", 1)];
    inst.eventually("the replaced paths in the kernel", || {
        kernel_route(&ns, "10.60.0.0/24", Some("200")).is_some_and(|r| paths(&r) == replaced)
    });

    // Kept at a clean stop; the next rtmd finds it as it wrote it and leaves it alone.
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
    assert!(kernel_route(&ns, "10.60.0.0/24", Some("200")).is_some());
    ns.start_rtmd(&mut inst, &args);
    inst.eventually("reconciled", || {
        inst.status()["counters"]["kernel_export_reconciles"].as_u64() >= Some(1)
    });
    let c = &inst.status()["counters"];
    assert_eq!(c["kernel_export_writes"], 0, "adopted as it is: {c}");
    assert_eq!(
        paths(&kernel_route(&ns, "10.60.0.0/24", Some("200")).unwrap()),
        replaced
    );

    // Changed in the kernel while rtmd is down: the restart writes rtm's paths back.
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
    ns.route(
        "replace 10.60.0.0/24 metric 7 proto 200 nexthop via 192.0.2.2 dev va weight 1 nexthop via 198.51.100.3 dev vb weight 1",
    );
    // Without --kernel-keep this time: the clean stop below removes it.
    let unkept: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "--kernel-keep")
        .collect();
    ns.start_rtmd(&mut inst, &unkept);
    inst.eventually("rtm's paths written back", || {
        kernel_route(&ns, "10.60.0.0/24", Some("200")).is_some_and(|r| paths(&r) == replaced)
    });
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
    assert!(
        kernel_route(&ns, "10.60.0.0/24", Some("200")).is_none(),
        "removed at the clean stop: {}",
        inst.log_text()
    );
}

/// Several kernel routes at one (prefix, metric): `ip route append` puts one after the first
/// (the kernel goes on forwarding with the first, and rtm holds it), `prepend` one before it
/// (rtm takes it), and deleting either leaves rtm with the one the kernel forwards with. An
/// nhid route prepended takes the prefix out of rtm (not the next metric: the kernel forwards
/// with the nhid route), and its deletion gives back the route behind it.
#[test]
fn append_and_prepend_at_one_metric() {
    needs_netns!();
    let ns = Netns::new();
    let inst = started(&ns, &[]);
    let mut c = inst.client("k", &["--table", "route"]);
    const P: &str = "10.70.0.0/24";
    let rtm_p = |inst: &Instance| inst.routes().get(P).cloned();
    // A change at another prefix, heard after those before it: everything before is done.
    let mut sentinel = 0;
    let mut barrier = |c: &mut ClientProc| {
        sentinel += 1;
        let s = format!("10.71.{sentinel}.0/24");
        ns.route(&format!("add {s} via 192.0.2.2"));
        c.expect(|v| v["key"] == s.as_str());
    };
    ns.route(&format!("add {P} via 192.0.2.2 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["entry"]["via"], "192.0.2.2", "{ev}");
    ns.route(&format!("add {P} via 198.51.100.9 metric 9"));
    ns.route(&format!("append {P} via 198.51.100.2 metric 5"));
    barrier(&mut c);
    let r = rtm_p(&inst).expect("mirrored");
    assert_eq!(
        (&r["via"], &r["metric"]),
        (&"192.0.2.2".into(), &5.into()),
        "{r}"
    );

    ns.route(&format!("prepend {P} via 192.0.2.3 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(
        (&ev["op"], &ev["entry"]["via"]),
        (&"update".into(), &"192.0.2.3".into()),
        "{ev}"
    );
    ns.route(&format!("del {P} via 192.0.2.3 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["entry"]["via"], "192.0.2.2", "{ev}");
    // The second deleted: nothing changes. Then the first: the appended one is promoted.
    ns.route(&format!("append {P} via 192.0.2.4 metric 5"));
    ns.route(&format!("del {P} via 192.0.2.4 metric 5"));
    barrier(&mut c);
    assert_eq!(rtm_p(&inst).expect("mirrored")["via"], "192.0.2.2");
    ns.route(&format!("del {P} via 192.0.2.2 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["entry"]["via"], "198.51.100.2", "{ev}");
    assert_eq!(ev["entry"]["metric"], 5, "{ev}");
    converges(&ns, &inst);

    if code(&run(ns.ip_cmd(&["nexthop", "show"], true), None, DEADLINE)) != 0 {
        eprintln!("nhid part skipped: this kernel has no next-hop objects");
        return;
    }
    ns.ip_ok(
        &["nexthop", "add", "id", "7", "via", "192.0.2.7", "dev", "va"],
        true,
    );
    ns.route(&format!("prepend {P} nhid 7 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["op"], "delete", "{ev}");
    barrier(&mut c);
    assert_eq!(rtm_p(&inst), None, "not the metric 9 route either");
    ns.route(&format!("del {P} nhid 7 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["entry"]["via"], "198.51.100.2", "{ev}");
    assert_eq!(ev["entry"]["metric"], 5, "{ev}");
    converges(&ns, &inst);
}
