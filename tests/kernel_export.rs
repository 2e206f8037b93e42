//! `rtmd --kernel export`: rtm writes its own routes into the kernel with a route protocol of
//! its own. Each test runs rtmd in a network namespace of its own (`common::netns`) and reads
//! the kernel's table with `ip -j route show`. Needs root and iproute2; the tests say why and
//! pass without checking anything where they cannot run.

mod common;

use std::collections::BTreeMap;

use common::netns::{needs_netns, Netns};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

/// The kernel's main-table routes of protocol `proto`, by prefix, as `ip -j` gives them.
fn kernel_proto(ns: &Netns, proto: &str) -> BTreeMap<String, Value> {
    let v: Value = serde_json::from_str(&ns.ip_ok(
        &["-j", "route", "show", "table", "main", "proto", proto],
        true,
    ))
    .expect("ip -j");
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| (r["dst"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

fn started(ns: &Netns, args: &[&str]) -> Instance {
    let mut inst = Instance::unstarted();
    ns.start_rtmd(&mut inst, args);
    inst.eventually("rtmd answers", || code(&inst.ctl(&["status"])) == 0);
    inst
}

/// Adds, changes and deletes go into the kernel as proto 200 routes; a stale one of that
/// protocol goes at start; a route over a link the kernel lacks is refused with its reason;
/// a clean stop removes what rtm wrote and nothing else.
#[test]
fn rtm_routes_go_into_the_kernel_and_leave_at_a_clean_stop() {
    needs_netns!();
    let ns = Netns::new();
    // Left by an earlier rtmd that crashed, and somebody else's route.
    ns.route("add 203.0.113.0/24 via 192.0.2.7 proto 200");
    ns.route("add 203.0.113.128/25 via 192.0.2.7 proto static");
    let mut inst = started(&ns, &["--kernel", "export"]);
    inst.eventually("the stale route removed", || {
        !kernel_proto(&ns, "200").contains_key("203.0.113.0/24")
    });

    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "via", "192.0.2.9"]);
    inst.ctl_ok(&["route", "add", "10.2.0.0/16", "dev", "vb", "metric", "5"]);
    inst.ctl_ok(&["route", "add", "10.3.0.0/16", "dev", "nosuch0"]);
    inst.eventually("both exported", || kernel_proto(&ns, "200").len() == 2);
    let k = kernel_proto(&ns, "200");
    assert_eq!(k["10.1.0.0/16"]["gateway"], "192.0.2.9", "{k:?}");
    assert_eq!(k["10.1.0.0/16"]["dev"], "va", "{k:?}");
    assert_eq!(k["10.2.0.0/16"]["dev"], "vb", "{k:?}");
    assert_eq!(k["10.2.0.0/16"]["metric"], 5, "{k:?}");
    inst.eventually("the refusal logged", || {
        inst.log_text()
            .contains("not written into the kernel: it has no link named nosuch0")
    });
    // `status` counts what the export did; the import is off, so its counters are absent.
    let c = &inst.status()["counters"];
    assert!(c["kernel_export_reconciles"].as_u64() >= Some(1), "{c}");
    assert!(
        c["kernel_export_writes"].as_u64() >= Some(3),
        "the stale delete and 2 adds: {c}"
    );
    assert!(
        c["kernel_export_failures"].as_u64() >= Some(1),
        "nosuch0: {c}"
    );
    assert!(c.get("kernel_dumps").is_none(), "{c}");

    // A new metric is a new kernel route: the old one goes.
    inst.ctl_ok(&["route", "change", "10.2.0.0/16", "dev", "vb", "metric", "9"]);
    inst.ctl_ok(&["route", "change", "10.1.0.0/16", "via", "198.51.100.3"]);
    inst.ctl_ok(&["route", "del", "10.3.0.0/16"]);
    inst.eventually("the changes in the kernel", || {
        let k = kernel_proto(&ns, "200");
        k.len() == 2
            && k["10.2.0.0/16"]["metric"] == 9
            && k["10.1.0.0/16"]["gateway"] == "198.51.100.3"
    });
    inst.ctl_ok(&["route", "del", "10.1.0.0/16"]);
    inst.eventually("the delete in the kernel", || {
        kernel_proto(&ns, "200").keys().collect::<Vec<_>>() == ["10.2.0.0/16"]
    });

    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
    assert!(kernel_proto(&ns, "200").is_empty(), "{}", inst.log_text());
    // Somebody else's route is untouched.
    assert!(kernel_proto(&ns, "static").contains_key("203.0.113.128/25"));
}

/// With import and export both on, each route lives once: rtm's own go into the kernel and
/// do not come back as imports, the kernel's come in and are not written back. With
/// `--kernel-keep` the exported routes outlive a clean stop; the next rtmd, whose table no
/// longer has them, removes them at its start.
#[test]
fn import_and_export_together_make_no_loop_and_keep_keeps() {
    needs_netns!();
    let ns = Netns::new();
    let mut inst = started(&ns, &["--kernel", "import,export", "--kernel-keep"]);
    let mut c = inst.client("k", &["--table", "route"]);
    inst.ctl_ok(&[
        "route",
        "add",
        "10.9.0.0/16",
        "via",
        "192.0.2.9",
        "metric",
        "3",
    ]);
    ns.route("add 10.8.0.0/16 via 192.0.2.8");
    inst.eventually("both in rtm and in the kernel", || {
        let rtm = inst.routes();
        rtm.contains_key("10.9.0.0/16")
            && rtm.contains_key("10.8.0.0/16")
            && kernel_proto(&ns, "200").contains_key("10.9.0.0/16")
    });
    // The kernel's route is not written back as rtm's (nor tried: the kernel would refuse
    // the copy, and rtmd would say so).
    assert!(!kernel_proto(&ns, "200").contains_key("10.8.0.0/16"));
    // rtm's own route is still rtm's: the import did not take the exported copy back in.
    // A kernel route added after the export was written is a barrier: the import hears the
    // kernel's events in order, so by the barrier's event the client has heard everything
    // the import would have made of the exported copy.
    ns.route("add 10.7.0.0/16 via 192.0.2.7");
    let heard = c.collect_until(|v| v["key"] == "10.7.0.0/16");
    let about_own: Vec<_> = heard.iter().filter(|v| v["key"] == "10.9.0.0/16").collect();
    assert_eq!(about_own.len(), 1, "one change (the add): {heard:?}");
    assert_eq!(inst.routes()["10.9.0.0/16"]["metric"], 3);
    assert!(
        !inst.log_text().contains("not written into the kernel"),
        "{}",
        inst.log_text()
    );

    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
    assert!(
        kernel_proto(&ns, "200").contains_key("10.9.0.0/16"),
        "kernel-keep left nothing: {}",
        inst.log_text()
    );
    drop(c);

    let inst = started(&ns, &["--kernel", "export"]);
    inst.eventually("the kept route removed by the next rtmd", || {
        kernel_proto(&ns, "200").is_empty()
    });
    assert!(inst.log_text().contains("adopted=1"), "{}", inst.log_text());
}

/// Each kernel actor is supervised on its own: a panic in the export or in the import restarts
/// that actor (counted in `restarts.kernel`), which reconciles again and goes on; the tables,
/// their subscribers and the other kernel actor are not touched.
#[cfg(feature = "fault-injection")]
#[test]
fn a_failing_kernel_actor_is_restarted_and_the_tables_are_not() {
    needs_netns!();
    let ns = Netns::new();
    let inst = started(&ns, &["--kernel", "import,export"]);
    let mut c = inst.client("k", &["--table", "route"]);
    inst.ctl_ok(&["route", "add", "10.9.0.0/16", "via", "192.0.2.9"]);
    ns.route("add 10.8.0.0/16 via 192.0.2.8");
    inst.eventually("both sides hold both", || {
        inst.routes().contains_key("10.8.0.0/16")
            && kernel_proto(&ns, "200").contains_key("10.9.0.0/16")
    });

    inst.ctl_ok(&["debug", "panic", "kernel-export"]);
    inst.eventually("the export restarted", || {
        inst.status()["restarts"]["kernel"] == 1
    });
    // It works again: a new rtm route reaches the kernel (after its restart pause).
    inst.ctl_ok(&["route", "add", "10.10.0.0/16", "via", "192.0.2.10"]);
    inst.eventually("the restarted export writes", || {
        kernel_proto(&ns, "200").contains_key("10.10.0.0/16")
    });
    inst.eventually("it reconciled again after its restart", || {
        let log = inst.log_text();
        log.find("kernel export restarting")
            .is_some_and(|at| log[at..].contains("kernel export reconciled"))
    });
    let before = c.collect_until(|v| v["key"] == "10.10.0.0/16");
    assert!(before.iter().all(|v| v["op"] != "resync"), "{before:?}");

    inst.ctl_ok(&["debug", "panic", "kernel"]);
    inst.eventually("the import restarted", || {
        inst.status()["restarts"]["kernel"] == 2
    });
    ns.route("add 10.7.0.0/16 via 192.0.2.7");
    let heard = c.collect_until(|v| v["key"] == "10.7.0.0/16");
    // The restarted import's dump found rtm as it had left it: no change of the routes it
    // had mirrored, and the subscriber was not resynced.
    assert!(
        heard
            .iter()
            .all(|v| v["key"] != "10.8.0.0/16" && v["op"] != "resync"),
        "{heard:?}"
    );
    // (10.7 may have come with the restarted import's dump, counted once that is applied.)
    inst.eventually("the restarted import's dump counted", || {
        inst.status()["counters"]["kernel_dumps"] == 2
    });
    let st = inst.status();
    let log = inst.log_text();
    assert_eq!(
        log.matches("kernel export restarting").count(),
        1,
        "the export was left alone when the import failed: {log}"
    );
    for table in ["route", "arp"] {
        assert_eq!(st["restarts"][table], 0, "{st}");
    }
    let rtm = inst.routes();
    for p in ["10.7.0.0/16", "10.8.0.0/16", "10.9.0.0/16", "10.10.0.0/16"] {
        assert!(rtm.contains_key(p), "{p} missing: {rtm:?}");
    }
    assert_eq!(
        kernel_proto(&ns, "200").len(),
        2,
        "rtm's two routes, once each"
    );
}
