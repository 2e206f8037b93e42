//! `rtmd --kernel import` mirrors the kernel's IPv4 neighbours, keyed as the kernel keys them
//! (IP, device), into a table of their own that clients read by IP and by MAC from shared
//! memory. Each test makes a network namespace of its own (`common::netns`); they need root
//! and iproute2, and say why and pass without checking anything where they cannot run.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::netns::{converge_on, needs_netns, Netns};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

/// The kernel's neighbours as the mirror keeps them: `"IP dev DEV"` → MAC, for the entries with
/// a MAC (not proxies, not INCOMPLETE/FAILED, not the all-zero MAC).
fn kernel_neighbours(ns: &Netns) -> BTreeMap<String, String> {
    let v: Value =
        serde_json::from_str(&ns.ip_ok(&["-j", "-4", "neigh", "show"], true)).expect("ip -j neigh");
    let mut out = BTreeMap::new();
    for n in v.as_array().expect("array") {
        let (Some(ip), Some(dev), Some(mac)) = (
            n["dst"].as_str(),
            n["dev"].as_str(),
            n.get("lladdr").and_then(Value::as_str),
        ) else {
            continue;
        };
        let states: Vec<&str> = n["state"]
            .as_array()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if states.iter().any(|s| ["INCOMPLETE", "FAILED"].contains(s)) || mac == "00:00:00:00:00:00"
        {
            continue;
        }
        out.insert(format!("{ip} dev {dev}"), mac.to_string());
    }
    out
}

/// rtm's neighbour table, read from shared memory (`rtm-client dump --table neigh --json`).
fn rtm_neighbours(inst: &Instance) -> BTreeMap<String, String> {
    let o = inst.client_oneshot(&["dump", "--table", "neigh", "--json"], None);
    assert_eq!(code(&o), 0, "dump: {}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("dump --json");
    v["neighs"]
        .as_array()
        .expect("neighs")
        .iter()
        .map(|n| {
            assert_eq!(n["origin"], "kernel", "{n}");
            (
                format!(
                    "{} dev {}",
                    n["ip"].as_str().unwrap(),
                    n["dev"].as_str().unwrap()
                ),
                n["mac"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits (bounded) until rtm's neighbours equal the kernel's.
fn neighbours_converge(ns: &Netns, inst: &Instance) {
    converge_on(
        "neighbours",
        inst,
        || rtm_neighbours(inst),
        || kernel_neighbours(ns),
    );
}

fn neigh(ns: &Netns, args: &str) {
    let mut a = vec!["neigh"];
    a.extend(args.split_whitespace());
    ns.ip_ok(&a, true);
}

/// Neighbours present at start and changed later reach a client as events and shared memory;
/// one MAC answering for several IPs keeps them all, found by IP and by MAC; what has no MAC
/// to send to (a proxy entry) is left out.
#[test]
fn neighbours_follow_ip_neigh() {
    needs_netns!();
    let ns = Netns::new();
    let mac = "02:00:00:00:00:07";
    neigh(
        &ns,
        &format!("add 192.0.2.7 lladdr {mac} dev va nud permanent"),
    );
    neigh(
        &ns,
        &format!("add 192.0.2.8 lladdr {mac} dev va nud reachable"),
    );
    neigh(
        &ns,
        &format!("add 198.51.100.7 lladdr {mac} dev vb nud permanent"),
    );
    neigh(&ns, "add proxy 192.0.2.50 dev va");
    let inst = ns.start_import(&[]);
    inst.eventually("the three neighbours mirrored", || {
        rtm_neighbours(&inst).len() == 3
    });
    neighbours_converge(&ns, &inst);

    // By MAC: every IP it answers for; by IP: the one entry; absent: exit 2.
    let o = inst.client_oneshot(&["neigh", mac], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            format!("192.0.2.7 dev va lladdr {mac}"),
            format!("192.0.2.8 dev va lladdr {mac}"),
            format!("198.51.100.7 dev vb lladdr {mac}"),
        ],
        "by MAC"
    );
    let o = inst.client_oneshot(&["neigh", "198.51.100.7", "--json"], None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).expect("json");
    assert_eq!(
        v,
        serde_json::json!({"ip":"198.51.100.7","dev":"vb","mac":mac,"origin":"kernel"})
    );
    let o = inst.client_oneshot(&["neigh", "192.0.2.50"], None);
    assert_eq!(code(&o), 2, "a proxy entry is no neighbour: {}", stdout(&o));
    assert!(
        stderr(&o).contains("no neighbour 192.0.2.50"),
        "{}",
        stderr(&o)
    );
    let o = inst.client_oneshot(&["neigh", "192.0.2.300"], None);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stderr(&o).contains("192.0.2.300"), "{}", stderr(&o));

    // Live: a create, an update (new MAC), a state change alone (nothing), a delete.
    let mut c = inst.client("n", &["--table", "neigh"]);
    neigh(
        &ns,
        "add 192.0.2.10 lladdr 02:00:00:00:00:0a dev va nud reachable",
    );
    let ev = c.expect(|v| v["key"] == "192.0.2.10 dev va");
    assert_eq!(ev["op"], "create", "{ev}");
    assert_eq!(ev["table"], "neigh", "{ev}");
    assert_eq!(ev["entry"]["mac"], "02:00:00:00:00:0a", "{ev}");
    neigh(
        &ns,
        "change 192.0.2.10 lladdr 02:00:00:00:00:0a dev va nud stale",
    );
    neigh(
        &ns,
        "replace 192.0.2.10 lladdr 02:00:00:00:00:0b dev va nud reachable",
    );
    let ev = c.expect(|v| v["key"] == "192.0.2.10 dev va");
    assert_eq!(ev["op"], "update", "{ev}");
    assert_eq!(
        ev["entry"]["mac"], "02:00:00:00:00:0b",
        "the MAC change, not the state's: {ev}"
    );
    neigh(&ns, "del 192.0.2.10 dev va");
    let ev = c.expect(|v| v["key"] == "192.0.2.10 dev va");
    assert_eq!(ev["op"], "delete", "{ev}");

    // `rtmctl watch` tells them too, where rtmd mirrors them.
    let mut w = inst.watch();
    inst.eventually("the watch registered", || {
        inst.client_names().iter().any(|n| n == "rtmctl-watch")
    });
    neigh(
        &ns,
        "add 192.0.2.12 lladdr 02:00:00:00:00:0c dev va nud permanent",
    );
    let ev = w.expect(|v| v["key"] == "192.0.2.12 dev va");
    assert_eq!(ev["op"], "create", "{ev}");
    neigh(&ns, "del 192.0.2.12 dev va");
    c.expect(|v| v["key"] == "192.0.2.12 dev va" && v["op"] == "delete");

    let st = inst.status();
    assert_eq!(st["neighs"], 3, "{st}");
    assert_eq!(st["restarts"]["neigh"], 0, "{st}");

    // A link set down loses its neighbours (the permanent ones too); the other link's stay.
    ns.ip_ok(&["link", "set", "va", "down"], true);
    inst.eventually("va's neighbours gone", || {
        rtm_neighbours(&inst).keys().all(|k| !k.ends_with("dev va"))
    });
    neighbours_converge(&ns, &inst);
    assert!(rtm_neighbours(&inst).contains_key("198.51.100.7 dev vb"));
    ns.ip_ok(&["link", "del", "vb"], true);
    inst.eventually("every neighbour gone", || rtm_neighbours(&inst).is_empty());
}

/// A burst of neighbours larger than a tiny receive buffer holds, while rtmd is stopped, makes
/// the kernel drop events (ENOBUFS): the mirror dumps again and ends equal to the kernel.
#[test]
fn neighbour_burst_with_enobufs_ends_equal() {
    needs_netns!();
    let ns = Netns::new();
    // Permanent entries do not count against the neighbour table's garbage-collection
    // thresholds (gc_thresh3 is 1024 by default), so the burst fits.
    let inst = ns.start_import(&["--kernel-rcvbuf", "65536", "--arp-capacity", "4096"]);
    inst.signal_daemon(Signal::SIGSTOP);
    let mut batch = String::new();
    for i in 0..3000u32 {
        batch += &format!(
            "neigh add 10.9.{}.{} lladdr 02:00:00:00:{:02x}:{:02x} dev va nud permanent\n",
            i / 250,
            i % 250 + 1,
            i / 256,
            i % 256
        );
    }
    let mut cmd = ns.ip_cmd(&["-batch", "-"], true);
    cmd.stdin(std::process::Stdio::piped());
    let o = run(cmd, Some(batch.as_bytes()), DEADLINE);
    assert_eq!(code(&o), 0, "ip -batch: {}", stderr(&o));
    inst.signal_daemon(Signal::SIGCONT);
    assert_eq!(kernel_neighbours(&ns).len(), 3000, "the kernel's own count");
    neighbours_converge(&ns, &inst);
    assert!(
        inst.log_text().contains("neighbour events (ENOBUFS)"),
        "the buffer did not overflow, so the re-dump was not tested: {}",
        inst.log_text()
    );
}

/// `rtmctl kernel-neigh show` lists them as `ip neigh` does, all or by IP, and the dashboard
/// too; the table's actor
/// is supervised on its own: a panic in it restarts it alone, and the mirror goes on.
#[test]
fn rtmctl_shows_them_and_the_table_restarts_alone() {
    needs_netns!();
    let ns = Netns::new();
    neigh(
        &ns,
        "add 192.0.2.7 lladdr 02:00:00:00:00:07 dev va nud permanent",
    );
    neigh(
        &ns,
        "add 198.51.100.7 lladdr 02:00:00:00:00:08 dev vb nud permanent",
    );
    let dash_dir = tempfile::tempdir().unwrap();
    let dash = dash_dir.path().join("dash.sock");
    let inst = ns.start_import(&["--http-socket", dash.to_str().unwrap()]);
    inst.eventually("both mirrored", || rtm_neighbours(&inst).len() == 2);
    // The dashboard lists them, searched by MAC, with their origin.
    let page = common::http::request_uds(&dash, "GET", "/neigh?q=02:00:00:00:00:08", &[], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(
            "<tr><td>198.51.100.7</td><td>vb</td><td>02:00:00:00:00:08</td><td>kernel</td></tr>"
        ) && !page.body.contains("192.0.2.7"),
        "{}",
        page.body
    );
    assert_eq!(
        inst.ctl_line("kernel-neigh show"),
        "192.0.2.7 dev va lladdr 02:00:00:00:00:07\n198.51.100.7 dev vb lladdr 02:00:00:00:00:08\n"
    );
    // The dashboard's event stream tells of their changes (the page reloads on them).
    let mut stream = std::os::unix::net::UnixStream::connect(&dash).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /events/stream HTTP/1.1\r\nHost: rtm\r\n\r\n")
        .unwrap();
    let mut r = std::io::BufReader::new(stream);
    let mut seen = String::new();
    let mut added = false;
    let mut line = String::new();
    while !seen.contains(r#""key":"192.0.2.8 dev va","kind":"change","op":"create""#) {
        line.clear();
        let n = std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0);
        assert!(n > 0, "the stream ended or went quiet: {seen}");
        seen.push_str(&line);
        if !added && seen.contains(r#""table":"neigh""#) {
            neigh(
                &ns,
                "add 192.0.2.8 lladdr 02:00:00:00:00:08 dev va nud permanent",
            );
            added = true;
        }
    }
    neigh(&ns, "del 192.0.2.8 dev va");
    inst.eventually("192.0.2.8 gone", || rtm_neighbours(&inst).len() == 2);

    let v = inst.ctl_json(&["kernel-neigh", "show", "198.51.100.7"]);
    assert_eq!(
        v,
        serde_json::json!([{"ip":"198.51.100.7","dev":"vb","mac":"02:00:00:00:00:08","origin":"kernel"}])
    );
    let o = inst.ctl(&["kernel-neigh", "show", "198.51.100.300"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("198.51.100.300"), "{}", stderr(&o));

    let mut c = inst.client("n", &["--table", "every"]);
    let o = inst.debug("panic neigh");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    inst.eventually("the neighbour table restarted", || {
        inst.status()["restarts"]["neigh"] == 1
    });
    let st = inst.status();
    assert_eq!(st["restarts"]["route"], 0, "{st}");
    assert_eq!(st["restarts"]["kernel"], 0, "{st}");
    neigh(
        &ns,
        "add 192.0.2.9 lladdr 02:00:00:00:00:09 dev va nud permanent",
    );
    let ev = c.expect(|v| v["key"] == "192.0.2.9 dev va");
    assert_eq!(ev["op"], "create", "{ev}");
    neighbours_converge(&ns, &inst);

    // The kernel mirror restarted (it waits 3 s, dumps again and reconciles): the neighbours
    // it already had are no change, and the one added meanwhile arrives.
    let o = inst.debug("panic kernel");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    neigh(
        &ns,
        "add 192.0.2.11 lladdr 02:00:00:00:00:0b dev va nud permanent",
    );
    let seen = c.collect_until(|v| v["key"] == "192.0.2.11 dev va");
    assert_eq!(seen.last().unwrap()["op"], "create", "{seen:?}");
    assert_eq!(seen.len(), 1, "nothing else changed: {seen:?}");
    assert_eq!(inst.status()["restarts"]["kernel"], 1);
    neighbours_converge(&ns, &inst);
}

/// Without `--kernel import` there is no neighbour table: no file (one left by an importing
/// rtmd is removed, not served), no status keys, and a client that asks for it is told why.
#[test]
fn without_the_import_there_is_no_neighbour_table() {
    let mut inst = Instance::unstarted();
    let stale = inst.route_shm().with_extension("neigh");
    std::fs::write(&stale, b"left by an earlier rtmd").unwrap();
    inst.spawn_daemon(&[]);
    assert!(
        !path_exists(&stale),
        "the stale neighbour file is still there"
    );
    assert!(inst.log_text().contains("removed the neighbour table file"));
    let st = inst.status();
    assert!(st.get("neighs").is_none(), "{st}");
    assert!(st["restarts"].get("neigh").is_none(), "{st}");
    assert!(!path_exists(&inst.route_shm().with_extension("neigh")));
    let o = inst.ctl(&["kernel-neigh", "show"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("--kernel import"), "{}", stderr(&o));
    let o = inst.client_oneshot(&["neigh", "192.0.2.7"], None);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("--kernel import"), "{}", stderr(&o));
    let mut c = inst.client_unsynced("n", &["--table", "neigh"]);
    let (status, err) = c.wait();
    assert!(!status.success(), "{err}");
    assert!(err.contains("--kernel import"), "{err}");
}

/// Asked by hand (the client library refuses these itself): without `--kernel import` a
/// subscription or flush that names the neighbours is refused whole, before anything is
/// subscribed or emptied; and a session at version 7 cannot ask for them at all.
#[test]
fn requests_for_a_missing_neighbour_table_are_refused_whole() {
    use common::raw::{frame, read_msg, welcomed};
    use rtm::wire::{ClientMsg, Failure, Op, Request, ServerMsg, Tables};
    let inst = Instance::start();
    inst.ctl_line("route add 10.1.0.0/16 via 192.0.2.1");
    let ask = |version: u16, req: Request| {
        let mut s = welcomed(&inst, "raw", version);
        s.write_all(&frame(&ClientMsg::Request { id: 1, req }))
            .unwrap();
        (read_msg(&mut s), s)
    };
    let refused = |m: &ServerMsg, words: &str| match m {
        ServerMsg::Reply {
            result: Err(Failure::Unsupported(why)),
            ..
        } => assert!(why.contains(words), "{why}"),
        other => panic!("not refused: {other:?}"),
    };
    let (m, mut s) = ask(
        8,
        Request::Subscribe {
            tables: Tables::Every,
        },
    );
    refused(&m, "--kernel import");
    // Nothing was subscribed: a change made now is not told to this session. The change is
    // committed (and told to subscribers) before rtmctl returns, so the next thing the session
    // gets is the answer to a request sent after it.
    inst.ctl_line("route add 10.2.0.0/16 via 192.0.2.1");
    s.write_all(&frame(&ClientMsg::Request {
        id: 2,
        req: Request::Status,
    }))
    .unwrap();
    match read_msg(&mut s) {
        ServerMsg::Reply { id: 2, .. } => {}
        other => panic!("the refused session was sent {other:?}"),
    }
    assert!(inst.client_names().is_empty(), "{:?}", inst.client_names());

    let (m, _) = ask(8, Request::ApplyOverriding(Op::Flush(Tables::Every)));
    refused(&m, "--kernel import");
    assert_eq!(inst.routes().len(), 2, "the route table was flushed anyway");

    let (m, _) = ask(7, Request::NeighShow(None));
    refused(&m, "needs protocol version 8");
}
