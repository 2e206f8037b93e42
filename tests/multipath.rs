//! docs/cli.md, "Multipath routes": routes with several next hops through a real `rtmd` —
//! `rtmctl route add|change|replace … nexthop …`, the watch events, batch lines, the
//! dashboard's change API, and every refusal (exit 1, the value named, nothing applied).
//!
//! The daemon answers `show` and `get` from its shared-memory file, which does not publish a
//! multipath route's next hops yet (that work is under way in proto/src/shm): until it does,
//! what `show`, `get`, an event's entry and the routes page print for a multipath route is
//! checked by the ignored test at the end, and the others check what does not go through the
//! file — exit codes, messages, events' operations and keys, single-path routes, and the
//! dashboard's log of the change it applied.
#![forbid(unsafe_code)]

mod common;

use common::http;
use common::*;
use serde_json::json;

const TWO: &str = "route add 10.2.0.0/16 metric 10 nexthop via 192.0.2.1 dev eth0 \
                   nexthop via 192.0.2.2 dev eth1 weight 3";
const TWO_TEXT: &str = "10.2.0.0/16 metric 10 nexthop via 192.0.2.1 dev eth0 weight 1 \
                        nexthop via 192.0.2.2 dev eth1 weight 3";

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// The dst of every route `rtmctl -j route show` lists.
fn keys(inst: &Instance) -> Vec<String> {
    inst.ctl_json(&["route", "show"])
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["dst"].as_str().unwrap().to_string())
        .collect()
}

/// Add, change the weights, replace single → multipath → single, delete: each accepted, each
/// seen by a watcher in order; an add of an existing prefix is refused by the daemon.
#[test]
fn changes_reach_the_daemon_and_watchers() {
    let inst = Instance::start();
    let mut w = inst.watch();
    inst.eventually("watch registered", || {
        inst.client_names() == ["rtmctl-watch"]
    });

    inst.ctl_line(TWO);
    inst.ctl_line("route add 10.0.0.0/8 via 192.0.2.9");
    assert_eq!(keys(&inst), ["10.0.0.0/8", "10.2.0.0/16"]);
    let o = inst.ctl(&words(TWO));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("10.2.0.0/16"), "{}", stderr(&o));
    inst.ctl_line(
        "route change 10.2.0.0/16 metric 10 nexthop via 192.0.2.1 dev eth0 weight 2 \
         nexthop via 192.0.2.3 weight 5",
    );

    inst.ctl_line("route replace 10.3.0.0/16 via 192.0.2.1 dev eth0");
    inst.ctl_line("route replace 10.3.0.0/16 nexthop dev eth0 nexthop dev eth1 weight 256");
    inst.ctl_line("route replace 10.3.0.0/16 via 192.0.2.9 dev eth2");
    // Back to one next hop: exactly the shape a route with one next hop always had.
    assert_eq!(
        inst.ctl_json(&["route", "show", "10.3.0.0/16"]),
        json!([{"dst":"10.3.0.0/16","via":"192.0.2.9","dev":"eth2","metric":0}])
    );
    // One nexthop is an ordinary route, as `ip route` makes it.
    inst.ctl_line("route replace 10.3.0.0/16 nexthop via 192.0.2.4 weight 9");
    assert_eq!(
        inst.ctl_ok(&["route", "show", "10.3.0.0/16"]),
        "10.3.0.0/16 via 192.0.2.4\n"
    );
    assert_eq!(
        inst.ctl_json(&["route", "get", "10.3.0.1"]),
        json!({"dst":"10.3.0.0/16","via":"192.0.2.4","metric":0})
    );

    inst.ctl_line("route del 10.2.0.0/16");
    assert_eq!(
        inst.ctl_ok(&["route", "show"]),
        "10.0.0.0/8 via 192.0.2.9\n10.3.0.0/16 via 192.0.2.4\n"
    );

    // The watcher saw every change, in order; a delete carries no entry.
    let mut seen: Vec<(String, String)> = Vec::new();
    while seen.len() < 7 {
        let v = w.next();
        if let Some(key) = v["key"].as_str().filter(|k| *k != "10.0.0.0/8") {
            if v["op"] == "delete" {
                assert!(v.get("entry").is_none(), "{v}");
            }
            seen.push((key.to_string(), v["op"].as_str().unwrap().to_string()));
        }
    }
    let seen: Vec<(&str, &str)> = seen.iter().map(|(k, o)| (k.as_str(), o.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("10.2.0.0/16", "create"),
            ("10.2.0.0/16", "update"),
            ("10.3.0.0/16", "create"),
            ("10.3.0.0/16", "update"),
            ("10.3.0.0/16", "update"),
            ("10.3.0.0/16", "update"),
            ("10.2.0.0/16", "delete"),
        ]
    );
}

/// Every refusal exits 1 before anything is sent, names the value, and changes nothing.
#[test]
fn bad_multipath_routes_are_refused_naming_the_value() {
    let inst = Instance::start();
    inst.ctl_line("route add 10.2.0.0/16 via 192.0.2.1");
    let too_many = format!("route replace 10.2.0.0/16{} nexthop via 192.0.2.1", most());
    for (line, needles) in [
        (
            "route replace 10.2.0.0/16 nexthop via 192.0.2.1 weight 0 nexthop via 192.0.2.2",
            &["\"0\"", "1..=256"][..],
        ),
        (
            "route replace 10.2.0.0/16 nexthop via 192.0.2.1 nexthop via 192.0.2.2 weight 300",
            &["\"300\"", "1..=256"],
        ),
        (too_many.as_str(), &["10.2.0.0/16", "257 nexthops", "256"]),
        (
            "route replace 10.2.0.0/16 via 192.0.2.3 nexthop via 192.0.2.1 nexthop via 192.0.2.2",
            &["via 192.0.2.3", "before nexthop"],
        ),
        (
            "route replace 10.2.0.0/16 nexthop via 192.0.2.1 nexthop via 192.0.2.2 metric 3",
            &["\"metric\"", "nexthop 2", "before the first nexthop"],
        ),
        (
            "route replace 10.2.0.0/16 nexthop via 192.0.2.1 nexthop weight 2",
            &["10.2.0.0/16", "via", "dev"],
        ),
    ] {
        let o = inst.ctl(&words(line));
        assert_eq!(code(&o), 1, "{line}: {}", stderr(&o));
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{line}: {e}");
        for n in needles {
            assert!(e.contains(n), "{line}: no {n:?} in {e}");
        }
    }
    assert_eq!(
        inst.ctl_ok(&["route", "show"]),
        "10.2.0.0/16 via 192.0.2.1\n"
    );
    // 256 paths are allowed.
    inst.ctl_line(&format!("route add 10.4.0.0/16{}", most()));
    assert_eq!(keys(&inst), ["10.2.0.0/16", "10.4.0.0/16"]);
}

/// ` nexthop via 10.1.I.1` for I in 0..256: the most next hops a route may have.
fn most() -> String {
    (0..256)
        .map(|i| format!(" nexthop via 10.1.{i}.1"))
        .collect()
}

/// A batch line may be a multipath route; a bad one stops the batch at its line with the
/// lines before it applied, or, first in the file, leaves everything as it was.
#[test]
fn batch_lines_with_nexthops() {
    let inst = Instance::start();
    let o = inst.batch_file(
        "route add 10.2.0.0/16 nexthop via 192.0.2.1 nexthop via 192.0.2.2 weight 4 # ecmp\n\
         route add 10.3.0.0/16 dev eth0\n\
         route replace 10.3.0.0/16 nexthop dev eth0 nexthop dev eth1\n\
         route add 10.4.0.0/16 dev eth0\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(keys(&inst), ["10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"]);
    let o = inst.batch_file(
        "route del 10.3.0.0/16\n\
         route add 10.5.0.0/16 nexthop via 192.0.2.1 weight 257 nexthop via 192.0.2.2\n\
         route add 10.6.0.0/16 dev eth0\n",
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("line 2") && stderr(&o).contains("\"257\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(keys(&inst), ["10.2.0.0/16", "10.4.0.0/16"]);
    let o = inst.batch(
        "route change 10.4.0.0/16 nexthop via 192.0.2.1 nexthop via 192.0.2.2 weight 0\n\
         route del 10.2.0.0/16\n",
        false,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("line 1") && stderr(&o).contains("invalid weight \"0\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        inst.ctl_ok(&["route", "show", "10.4.0.0/16"]),
        "10.4.0.0/16 dev eth0\n"
    );
    assert_eq!(keys(&inst), ["10.2.0.0/16", "10.4.0.0/16"]);
    // With --force the good lines around a bad one are applied.
    let o = inst.batch(
        "route replace 10.6.0.0/16 nexthop dev eth0 nexthop dev eth1 weight 0\n\
         route replace 10.6.0.0/16 nexthop dev eth0 nexthop dev eth1 weight 2\n",
        true,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("line 1"), "{}", stderr(&o));
    assert_eq!(keys(&inst), ["10.2.0.0/16", "10.4.0.0/16", "10.6.0.0/16"]);
}

/// A dashboard URL of `inst`: (host:port, token).
fn dashboard_url(inst: &Instance) -> (String, String) {
    let u = inst.ctl_ok(&["dashboard-url"]);
    let (host, path) = http::split_url(u.trim());
    let token = path.strip_prefix("/?token=").expect("token").to_string();
    (host, token)
}

/// The dashboard's change API takes next hops as `rtmctl` does, with its messages.
#[test]
fn the_dashboard_takes_nexthops_with_rtmctls_messages() {
    let inst = Instance::start_with(&["--http-listen", "127.0.0.1:0"]);
    let (host, token) = dashboard_url(&inst);
    let change =
        |body: &str| http::post_json(&host, "/api/change", &[("X-Rtm-Token", &token)], body);

    let a = change(
        r#"{"table":"route","op":"add","prefix":"10.2.0.0/16","metric":"10","nexthops":[
            {"via":"192.0.2.1","dev":"eth0"},{"via":"192.0.2.2","dev":"eth1","weight":"3"}]}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");
    // The change it applied, as its log names it.
    inst.eventually("the dashboard's change in the log", || {
        inst.log_text()
            .contains(&format!("change=RouteAdd(Route({TWO_TEXT}))"))
    });
    // A number is a weight too; one next hop is an ordinary route.
    let a = change(
        r#"{"table":"route","op":"replace","prefix":"10.3.0.0/16","nexthops":[
            {"via":"192.0.2.1","weight":2},{"via":"192.0.2.2","weight":1}]}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");
    let a = change(
        r#"{"table":"route","op":"add","prefix":"10.4.0.0/16","nexthops":[{"dev":"eth0"}]}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        inst.ctl_ok(&["route", "show", "10.4.0.0/16"]),
        "10.4.0.0/16 dev eth0\n"
    );
    assert_eq!(keys(&inst), ["10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"]);

    // The same refusals as rtmctl's, in its words.
    for (form, line) in [
        (
            r#"{"table":"route","op":"replace","prefix":"10.2.0.0/16","nexthops":[
                {"via":"192.0.2.1","weight":"0"},{"via":"192.0.2.2"}]}"#,
            "route replace 10.2.0.0/16 nexthop via 192.0.2.1 weight 0 nexthop via 192.0.2.2",
        ),
        (
            r#"{"table":"route","op":"replace","prefix":"10.2.0.0/16","nexthops":[
                {"via":"192.0.2.1"},{"via":"192.0.2.2","weight":300}]}"#,
            "route replace 10.2.0.0/16 nexthop via 192.0.2.1 nexthop via 192.0.2.2 weight 300",
        ),
        (
            r#"{"table":"route","op":"replace","prefix":"10.2.0.0/16","nexthops":[
                {"via":"192.0.2.1"},{"weight":"2"}]}"#,
            "route replace 10.2.0.0/16 nexthop via 192.0.2.1 nexthop weight 2",
        ),
    ] {
        let a = change(form);
        assert_eq!(a.status, 400, "{form}: {a:?}");
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        let msg = v["error"].as_str().unwrap().to_string();
        let o = inst.ctl(&words(line));
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains(&msg),
            "dashboard said {msg:?}, rtmctl said {:?}",
            stderr(&o)
        );
    }
    let too_many: Vec<String> = (0..257)
        .map(|i| format!(r#"{{"via":"10.1.{}.{}"}}"#, i / 200, i % 200 + 1))
        .collect();
    let a = change(&format!(
        r#"{{"table":"route","op":"replace","prefix":"10.2.0.0/16","nexthops":[{}]}}"#,
        too_many.join(",")
    ));
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.body.contains("257 nexthops"), "{a:?}");
    let a = change(
        r#"{"table":"route","op":"replace","prefix":"10.2.0.0/16","via":"192.0.2.9","nexthops":[
            {"via":"192.0.2.1"},{"via":"192.0.2.2"}]}"#,
    );
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.body.contains("via 192.0.2.9"), "{a:?}");
    assert_eq!(keys(&inst), ["10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"]);

    // The form offers next hops.
    let auth = format!("Bearer {token}");
    let a = http::get(&host, "/routes", &[("Authorization", &auth)]);
    assert!(a.body.contains("id=\"add-hop\""), "{}", a.body);
}

/// What `show`, `get`, a watcher's entry and the routes page print for a multipath route.
#[test]
fn multipath_routes_in_show_get_watch_and_the_dashboard() {
    let inst = Instance::start_with(&["--http-listen", "127.0.0.1:0"]);
    let mut w = inst.watch();
    inst.eventually("watch registered", || {
        inst.client_names() == ["rtmctl-watch"]
    });
    inst.ctl_line(TWO);
    inst.ctl_line("route add 10.0.0.0/8 via 192.0.2.9");
    assert_eq!(
        inst.ctl_ok(&["route", "show"]),
        format!("10.0.0.0/8 via 192.0.2.9\n{TWO_TEXT}\n")
    );
    let two = json!({"dst":"10.2.0.0/16","metric":10,"nexthops":[
        {"via":"192.0.2.1","dev":"eth0","weight":1},
        {"via":"192.0.2.2","dev":"eth1","weight":3}]});
    assert_eq!(
        inst.ctl_json(&["route", "show"]),
        json!([{"dst":"10.0.0.0/8","via":"192.0.2.9","metric":0}, two])
    );
    assert_eq!(
        inst.ctl_json(&["route", "show", "10.2.0.0/16"]),
        json!([two])
    );
    assert_eq!(inst.ctl_json(&["route", "get", "10.2.3.4"]), two);
    assert_eq!(
        inst.ctl_ok(&["route", "get", "10.2.3.4"]),
        format!("{TWO_TEXT}\n")
    );
    // `dev` and `via` selectors pick a multipath route by any of its next hops.
    assert_eq!(
        inst.ctl_ok(&["route", "show", "dev", "eth1"]),
        format!("{TWO_TEXT}\n")
    );
    let created = w.expect(|v| v["key"] == "10.2.0.0/16");
    assert_eq!(created["op"], "create");
    assert_eq!(created["entry"], two);

    inst.ctl_line(
        "route change 10.2.0.0/16 metric 10 nexthop via 192.0.2.1 dev eth0 weight 2 \
         nexthop via 192.0.2.3 weight 5",
    );
    let changed = json!({"dst":"10.2.0.0/16","metric":10,"nexthops":[
        {"via":"192.0.2.1","dev":"eth0","weight":2},{"via":"192.0.2.3","weight":5}]});
    assert_eq!(inst.ctl_json(&["route", "get", "10.2.0.1"]), changed);
    assert_eq!(w.expect(|v| v["key"] == "10.2.0.0/16")["entry"], changed);

    inst.ctl_line("route replace 10.3.0.0/16 nexthop dev eth0 nexthop dev eth1 weight 256");
    assert_eq!(
        inst.ctl_ok(&["route", "show", "10.3.0.0/16"]),
        "10.3.0.0/16 nexthop dev eth0 weight 1 nexthop dev eth1 weight 256\n"
    );
    assert_eq!(
        inst.ctl_json(&["route", "show", "10.3.0.0/16"]),
        json!([{"dst":"10.3.0.0/16","metric":0,"nexthops":[
            {"dev":"eth0","weight":1},{"dev":"eth1","weight":256}]}])
    );
    inst.ctl_line(&format!("route add 10.4.0.0/16{}", most()));
    let v = inst.ctl_json(&["route", "get", "10.4.0.1"]);
    assert_eq!(v["nexthops"].as_array().map(Vec::len), Some(256), "{v}");

    // The routes page: the longest-prefix match of an address and the listing, each path on a
    // line of its own.
    let (host, token) = dashboard_url(&inst);
    let auth = format!("Bearer {token}");
    for path in ["/routes?q=10.2.3.4", "/routes"] {
        let a = http::get(&host, path, &[("Authorization", &auth)]);
        assert_eq!(a.status, 200, "{a:?}");
        assert!(
            a.body
                .contains("<div class=\"hop\">via 192.0.2.1 dev eth0 weight 2</div>")
                && a.body
                    .contains("<div class=\"hop\">via 192.0.2.3 weight 5</div>"),
            "{path}: {}",
            a.body
        );
    }
}

/// `rtm-client lookup --flow-hash`: the one path a flow takes, from shared memory, in proportion
/// to the weights (a quarter of the hash space for weight 1 beside weight 3), the same for the
/// same hash, and the route itself for a single-path route.
#[test]
fn a_flow_hash_picks_one_path_by_weight() {
    let inst = Instance::start();
    inst.ctl_line(
        "route add 10.2.0.0/16 metric 5 nexthop via 192.0.2.1 dev eth0 nexthop via 192.0.2.2 dev eth1 weight 3",
    );
    inst.ctl_line("route add 10.3.0.0/16 via 192.0.2.7");
    let lookup = |args: &[&str]| inst.client_oneshot(&[&["lookup"], args].concat(), None);
    for (hash, want) in [
        ("0", "10.2.0.0/16 via 192.0.2.1 dev eth0 metric 5\n"),
        (
            "0x3fffffff",
            "10.2.0.0/16 via 192.0.2.1 dev eth0 metric 5\n",
        ),
        (
            "0x40000000",
            "10.2.0.0/16 via 192.0.2.2 dev eth1 metric 5\n",
        ),
        (
            "4294967295",
            "10.2.0.0/16 via 192.0.2.2 dev eth1 metric 5\n",
        ),
    ] {
        let o = lookup(&["10.2.9.9", "--flow-hash", hash]);
        assert_eq!(
            (code(&o), stdout(&o).as_str()),
            (0, want),
            "hash {hash}: {}",
            stderr(&o)
        );
    }
    // Many addresses, one hash; a single-path route is itself whatever the hash.
    let o = inst.client_oneshot(
        &["--json", "lookup", "-", "--flow-hash", "0xffffffff"],
        Some(b"10.2.0.1\n10.3.0.1\n"),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"dst":"10.2.0.0/16","via":"192.0.2.2","dev":"eth1","metric":5}),
            json!({"dst":"10.3.0.0/16","via":"192.0.2.7","metric":0}),
        ]
    );
    let o = lookup(&["10.2.9.9", "--flow-hash", "0x1ffffffff"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("invalid flow hash \"0x1ffffffff\""),
        "{}",
        stderr(&o)
    );
}
