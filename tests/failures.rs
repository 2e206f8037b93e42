//! docs/cli.md ("Exit codes") and docs/guarantees.md §10: refused requests change nothing and emit
//! nothing; bad CLI values exit 1 naming the value, and nothing is sent.
#![forbid(unsafe_code)]

mod common;

use common::*;

fn requests(inst: &Instance) -> u64 {
    inst.ctl_json(&["status"])["counters"]["requests"]
        .as_u64()
        .unwrap()
}

#[test]
fn refused_requests_change_nothing_and_emit_nothing() {
    let inst = Instance::start();
    inst.ctl_ok(&["route", "add", "10.0.0.0/8", "dev", "eth0"]);
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.168.1.10"]);
    let mut c = inst.client("observer", &[]);
    let before_routes = inst.ctl_json(&["route", "show"]);
    let before_arps = inst.ctl_json(&["arp", "show"]);

    for (args, needle) in [
        (
            &["route", "add", "10.0.0.0/8", "via", "1.2.3.4"][..],
            "10.0.0.0/8 already exists",
        ),
        (
            &["route", "del", "10.9.0.0/16"][..],
            "10.9.0.0/16 not found",
        ),
        (
            &["route", "change", "10.9.0.0/16", "dev", "eth1"][..],
            "10.9.0.0/16 not found",
        ),
        (
            &["arp", "add", "00-11-22-33-44-55", "192.168.1.11"][..],
            "00:11:22:33:44:55 already exists",
        ),
        (
            &["arp", "del", "00:11:22:33:44:66"][..],
            "00:11:22:33:44:66 not found",
        ),
        (
            &["arp", "change", "00:11:22:33:44:66", "192.168.1.1"][..],
            "00:11:22:33:44:66 not found",
        ),
        (
            &["route", "get", "11.1.1.1"][..],
            "route entry matching 11.1.1.1 not found",
        ),
        (
            &["arp", "get", "00:11:22:33:44:66"][..],
            "00:11:22:33:44:66",
        ),
    ] {
        let o = inst.ctl(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert_eq!(inst.ctl_json(&["route", "show"]), before_routes);
    assert_eq!(inst.ctl_json(&["arp", "show"]), before_arps);
    // No event for any refused request: the next line is the marker.
    inst.ctl_ok(&["route", "add", "99.0.0.0/8", "dev", "marker"]);
    let v = c.next();
    assert_eq!(v["key"], "99.0.0.0/8", "{v}");
    assert_eq!(v["seq"], 2);
}

#[test]
fn malformed_values_exit_1_naming_the_value_and_send_nothing() {
    let inst = Instance::start();
    let before = requests(&inst);
    let cases: &[(&[&str], &str)] = &[
        (&["route", "add", "10.0.0.1/8", "dev", "eth0"], "10.0.0.0/8"),
        (
            &["route", "add", "10.0.0.0/33", "dev", "eth0"],
            "10.0.0.0/33",
        ),
        (
            &["route", "add", "10.0.0.0/8", "via", "300.1.1.1"],
            "300.1.1.1",
        ),
        (
            &[
                "route",
                "add",
                "10.0.0.0/8",
                "dev",
                "waytoolonginterfacename",
            ],
            "waytoolonginterfacename",
        ),
        (
            &["route", "add", "10.0.0.0/8", "dev", "eth0", "metric", "x1"],
            "x1",
        ),
        (&["route", "add", "10.0.0.0/8"], "10.0.0.0/8"),
        (
            &["route", "add", "10.0.0.0/8", "dev", "eth0", "color", "red"],
            "color",
        ),
        (&["route", "get", "10.0.0.0/8"], "10.0.0.0/8"),
        (&["route", "frob"], "frob"),
        (
            &["arp", "add", "00:11:22:33:44", "10.0.0.1"],
            "00:11:22:33:44",
        ),
        (&["arp", "add", "00:11:22:33:44:55", "10.0.0"], "10.0.0"),
        (&["arp", "get", "0011.2233.44zz"], "0011.2233.44zz"),
        (&["teleport"], "teleport"),
    ];
    for (args, needle) in cases {
        let o = inst.ctl(args);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Only the status call itself reached the daemon.
    assert_eq!(requests(&inst), before + 1);
}

#[test]
fn batch_stops_at_the_first_failing_line() {
    let inst = Instance::start();
    // A line the daemon refuses: lines before stay applied, later lines are not sent.
    let o = inst.batch(
        "# comment\n\nroute add 10.1.0.0/16 dev eth0\nroute add 10.1.0.0/16 dev eth1\nroute add 10.2.0.0/16 dev eth0\n",
        false,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("line 4:"), "{}", stderr(&o));
    let shown = inst.ctl_ok(&["route", "show"]);
    assert_eq!(shown, "10.1.0.0/16 dev eth0\n");

    // A line that does not parse: exit 1, nothing after it applied.
    let o = inst.batch("route add 10.3.0.0/16 dev eth0\nroute add 10.4.0.1/16 dev eth0\nroute add 10.5.0.0/16 dev eth0\n", false);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("line 2:") && err.contains("10.4.0.0/16"),
        "{err}"
    );
    let shown = inst.ctl_ok(&["route", "show"]);
    assert_eq!(shown, "10.1.0.0/16 dev eth0\n10.3.0.0/16 dev eth0\n");

    // --force applies every good line and reports every bad one, in line order: here the
    // line that did not parse comes before the one the daemon refused.
    let o = inst.batch(
        "bogus line\nroute add 10.1.0.0/16 dev eth0\nroute add 10.6.0.0/16 dev eth0\n",
        true,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("rtmctl: line 1: "), "{err}");
    assert!(
        lines[1].starts_with("rtmctl: line 2: ") && lines[1].contains("10.1.0.0/16"),
        "{err}"
    );
    assert!(inst.ctl_ok(&["route", "show"]).contains("10.6.0.0/16"));
}

#[test]
fn full_table_refuses_new_keys_only() {
    let inst = Instance::start_with(&["--route-capacity", "3"]);
    for p in ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"] {
        inst.ctl_ok(&["route", "add", p, "dev", "eth0"]);
    }
    let o = inst.ctl(&["route", "add", "10.4.0.0/16", "dev", "eth0"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("full") && stderr(&o).contains("10.4.0.0/16"),
        "{}",
        stderr(&o)
    );
    // Updating an existing key still works; the table is unchanged otherwise.
    inst.ctl_ok(&["route", "replace", "10.1.0.0/16", "dev", "eth9"]);
    let shown = inst.ctl_ok(&["route", "show"]);
    assert_eq!(
        shown,
        "10.1.0.0/16 dev eth9\n10.2.0.0/16 dev eth0\n10.3.0.0/16 dev eth0\n"
    );
}

#[test]
fn daemon_unreachable_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        {
            let mut c = std::process::Command::new(RTMCTL);
            c.arg("--socket")
                .arg(dir.path().join("none.sock"))
                .args(["route", "show"]);
            c
        },
        None,
        DEADLINE,
    );
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("none.sock"), "{}", stderr(&o));
}
