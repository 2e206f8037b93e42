//! `rtmd --kernel import|export` with multipath routes and with several kernel routes at one
//! key: the paths and weights of `ip route … nexthop …` both ways, links taking paths with them,
//! next-hop objects (`ip nexthop`, `nhid`) and `ip route append|prepend`. Each test makes a network
//! namespace of its own with a veth pair in it, as `kernel_mirror.rs` does; needs root and
//! iproute2, and says why and checks nothing where it cannot run.

mod common;

use common::netns::{converges, needs_netns, Netns};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

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
    let inst = ns.start_import(&[]);
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
    let o = inst.client_oneshot(&["--json", "lookup", "10.50.0.9"], None);
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

/// `ip nexthop` objects and `nhid` routes: a route through a group is mirrored with the
/// members' next hops and weights (from the start dump and from events), one through a
/// single object as an ordinary route; `ip nexthop replace` changes the routes through the
/// object with no route command; a blackhole object leaves rtm without the route; a link
/// going down takes the objects over it (the kernel says nothing) and their routes.
#[test]
fn nhid_routes_follow_ip_nexthop() {
    needs_netns!();
    let ns = Netns::new();
    if !ns.has_nexthop_objects() {
        eprintln!("skipped: this kernel has no next-hop objects");
        return;
    }
    let nexthop = |args: &str| {
        let mut a = vec!["nexthop"];
        a.extend(args.split_whitespace());
        ns.ip_ok(&a, true);
    };
    nexthop("add id 1 via 192.0.2.2 dev va");
    nexthop("add id 2 via 198.51.100.2 dev vb");
    nexthop("add id 10 group 1/2,3");
    ns.route("add 10.52.0.0/24 nhid 10");
    let inst = ns.start_import(&[]);
    inst.eventually("the start dump's nhid route", || {
        inst.routes().contains_key("10.52.0.0/24")
    });
    let both = [path("192.0.2.2", "va", 1), path("198.51.100.2", "vb", 3)];
    let r = &inst.routes()["10.52.0.0/24"];
    assert_eq!(paths(r), both, "{r}");
    assert_eq!(r["origin"], "kernel", "{r}");

    let mut c = inst.client("k", &["--table", "route"]);
    ns.route("add 10.53.0.0/24 nhid 1");
    let ev = c.expect(|v| v["key"] == "10.53.0.0/24");
    assert_eq!(ev["op"], "create", "{ev}");
    assert_eq!(
        (&ev["entry"]["via"], &ev["entry"]["dev"]),
        (&"192.0.2.2".into(), &"va".into()),
        "{ev}"
    );

    // One object replaced: the group's route follows, without any route command.
    nexthop("replace id 2 via 198.51.100.3 dev vb");
    let ev = c.expect(|v| v["key"] == "10.52.0.0/24");
    assert_eq!(ev["op"], "update", "{ev}");
    let moved = [path("192.0.2.2", "va", 1), path("198.51.100.3", "vb", 3)];
    assert_eq!(paths(&ev["entry"]), moved, "{ev}");
    assert_eq!(
        paths(&kernel_route(&ns, "10.52.0.0/24", None).unwrap()),
        moved,
        "the kernel's own view"
    );
    let o = inst.client_oneshot(&["--json", "lookup", "10.52.0.9"], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let looked: Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    assert_eq!(paths(&looked), moved, "{looked}");

    // `ip route replace` with a route through an object (the same one already appended
    // behind): a replace, not one of the kernel's copies for a replaced object.
    ns.route("add 10.56.0.0/24 via 192.0.2.9");
    c.expect(|v| v["key"] == "10.56.0.0/24");
    ns.route("append 10.56.0.0/24 nhid 1 src 192.0.2.1");
    ns.route("replace 10.56.0.0/24 nhid 1");
    let ev = c.expect(|v| v["key"] == "10.56.0.0/24");
    assert_eq!(
        (&ev["op"], &ev["entry"]["via"]),
        (&"update".into(), &"192.0.2.2".into()),
        "{ev}"
    );

    // A blackhole object (it lives on the loopback link): the kernel drops, rtm holds
    // nothing for the prefix.
    ns.ip_ok(&["link", "set", "lo", "up"], true);
    nexthop("add id 7 blackhole");
    ns.route("replace 10.53.0.0/24 nhid 7");
    let ev = c.expect(|v| v["key"] == "10.53.0.0/24");
    assert_eq!(ev["op"], "delete", "{ev}");

    // A blackhole route through object 2 in front of another: rtm holds nothing for its
    // prefix until object 2 is deleted, which flushes the blackhole without a route event
    // (and takes object 2 out of group 10).
    ns.route("add 10.57.0.0/24 via 192.0.2.8 metric 10");
    let ev = c.expect(|v| v["key"] == "10.57.0.0/24");
    assert_eq!(ev["op"], "create", "{ev}");
    ns.route("add blackhole 10.57.0.0/24 nhid 2 metric 3");
    let ev = c.expect(|v| v["key"] == "10.57.0.0/24");
    assert_eq!(ev["op"], "delete", "{ev}");
    nexthop("del id 2");
    let ev = c.expect(|v| v["key"] == "10.57.0.0/24");
    assert_eq!(
        (&ev["op"], &ev["entry"]["via"]),
        (&"create".into(), &"192.0.2.8".into()),
        "{ev}"
    );
    let r = &inst.routes()["10.52.0.0/24"];
    assert_eq!(
        (&r["via"], &r["dev"]),
        (&"192.0.2.2".into(), &"va".into()),
        "{r}"
    );

    // va down: the kernel flushes object 1 (object 2 is gone already, and would go with
    // vb's carrier, its veth peer being down), so group 10 and its route go; no route
    // event says so.
    ns.ip_ok(&["link", "set", "va", "down"], true);
    c.expect(|v| v["key"] == "10.52.0.0/24" && v["op"] == "delete");
    assert!(kernel_route(&ns, "10.52.0.0/24", None).is_none());
    converges(&ns, &inst);
    let st = inst.status();
    assert_eq!(st["counters"]["kernel_refused"], 0, "{st}");
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
/// (rtm takes it), and deleting either leaves rtm with the one the kernel forwards with. A
/// route through a blackhole object prepended takes the prefix out of rtm (not the next
/// metric: the kernel drops by it); an nhid route prepended before it is mirrored, and
/// their deletion gives back the route behind them.
#[test]
fn append_and_prepend_at_one_metric() {
    needs_netns!();
    let ns = Netns::new();
    let inst = ns.start_import(&[]);
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
    // A route for one tos only, even at a lower metric: packets without it never take it.
    ns.route(&format!("add {P} tos 0x10 via 192.0.2.9 metric 1"));
    barrier(&mut c);
    assert_eq!(rtm_p(&inst).expect("mirrored")["metric"], 5);
    converges(&ns, &inst);

    if !ns.has_nexthop_objects() {
        eprintln!("nhid part skipped: this kernel has no next-hop objects");
        return;
    }
    ns.ip_ok(
        &["nexthop", "add", "id", "7", "via", "192.0.2.7", "dev", "va"],
        true,
    );
    // A blackhole object lives on the loopback link.
    ns.ip_ok(&["link", "set", "lo", "up"], true);
    ns.ip_ok(&["nexthop", "add", "id", "8", "blackhole"], true);
    ns.route(&format!("prepend {P} nhid 8 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["op"], "delete", "{ev}");
    barrier(&mut c);
    assert_eq!(rtm_p(&inst), None, "not the metric 9 route either");
    ns.route(&format!("prepend {P} nhid 7 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["entry"]["via"], "192.0.2.7", "{ev}");
    ns.route(&format!("del {P} nhid 7 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["op"], "delete", "{ev}");
    ns.route(&format!("del {P} nhid 8 metric 5"));
    let ev = c.expect(|v| v["key"] == P);
    assert_eq!(ev["entry"]["via"], "198.51.100.2", "{ev}");
    assert_eq!(ev["entry"]["metric"], 5, "{ev}");
    converges(&ns, &inst);
}

/// Routes through next-hop objects with a tiny netlink buffer: a burst of them, one object
/// replaced under all of them (the kernel adds a route event per route, which overflows the
/// buffer), then that object deleted (the kernel flushes its routes without a word). After
/// each, rtm's table equals the kernel's: the re-dumps reconcile objects and routes.
#[test]
fn nhid_routes_survive_overflows() {
    needs_netns!();
    let ns = Netns::new();
    if !ns.has_nexthop_objects() {
        eprintln!("skipped: this kernel has no next-hop objects");
        return;
    }
    ns.ip_ok(
        &["nexthop", "add", "id", "1", "via", "192.0.2.2", "dev", "va"],
        true,
    );
    ns.ip_ok(
        &[
            "nexthop",
            "add",
            "id",
            "2",
            "via",
            "198.51.100.2",
            "dev",
            "vb",
        ],
        true,
    );
    let inst = ns.start_import(&["--kernel-rcvbuf", "1024"]);
    let n = 2000;
    let mut batch = String::new();
    for i in 0..n {
        batch += &format!(
            "route add 10.{}.{}.0/24 nhid {}\n",
            100 + i / 256,
            i % 256,
            1 + i % 2
        );
    }
    let mut cmd = ns.ip_cmd(&["-batch", "-"], true);
    cmd.stdin(std::process::Stdio::piped());
    let o = run(cmd, Some(batch.as_bytes()), DEADLINE);
    assert_eq!(code(&o), 0, "ip -batch: {}", stderr(&o));
    converges(&ns, &inst);

    ns.ip_ok(
        &[
            "nexthop",
            "replace",
            "id",
            "1",
            "via",
            "192.0.2.7",
            "dev",
            "va",
        ],
        true,
    );
    converges(&ns, &inst);
    assert_eq!(
        inst.routes()["10.100.0.0/24"]["via"],
        "192.0.2.7",
        "the replaced object's routes"
    );
    ns.ip_ok(&["nexthop", "del", "id", "2"], true);
    converges(&ns, &inst);
    assert_eq!(
        inst.routes().len(),
        2 + n / 2,
        "the connected routes and object 1's"
    );
    let st = inst.status();
    assert!(
        st["counters"]["kernel_overflows"].as_u64() >= Some(1),
        "the tiny buffer did not overflow, so no re-dump was tested: {st}"
    );
}
