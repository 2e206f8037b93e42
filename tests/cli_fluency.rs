//! docs/cli.md: help at every level, completions, man pages, `-p`, ip's neigh grammar, show
//! and flush selectors, next hops that cannot be one, `default` in text.
#![forbid(unsafe_code)]

mod common;

use std::process::Command;

use common::*;

fn bare(bin: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin);
    cmd.args(args).env_remove("RTM_SOCKET");
    run(cmd, None, DEADLINE)
}

#[test]
fn help_at_every_level() {
    for (args, first, usage) in [
        (
            vec!["--help"],
            "Administer and inspect the rtm daemon",
            "Usage: rtmctl [--socket PATH]",
        ),
        (
            vec!["help"],
            "Administer and inspect the rtm daemon",
            "Objects:",
        ),
        (
            vec!["route", "help"],
            "The routing table",
            "Usage: rtmctl route COMMAND [ARGS]",
        ),
        (
            vec!["route", "--help"],
            "The routing table",
            "add      Add a route; fails if PREFIX exists",
        ),
        (vec!["help", "route"], "The routing table", "flush"),
        (
            vec!["route", "add", "--help"],
            "Add a route; fails if PREFIX exists",
            "Usage: rtmctl route add PREFIX [via GW] [dev IFNAME] [metric N]",
        ),
        (
            vec!["route", "add", "help"],
            "Add a route",
            "Usage: rtmctl route add",
        ),
        (
            vec!["route", "delete", "-h"],
            "Delete the route of PREFIX",
            "Usage: rtmctl route del PREFIX",
        ),
        (
            vec!["neigh", "add", "--help"],
            "As arp add, in ip neigh's order",
            "Usage: rtmctl neigh add IP lladdr MAC [dev IFNAME]",
        ),
        (
            vec!["help", "batch"],
            "One change per line",
            "Usage: rtmctl batch FILE|- [--force]",
        ),
        (
            vec!["arp", "show", "help"],
            "List ARP entries",
            "Usage: rtmctl arp show [MAC] [dev IFNAME]",
        ),
    ] {
        let o = bare(RTMCTL, &args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.starts_with(first), "{args:?}:\n{out}");
        assert!(out.contains(usage), "{args:?}:\n{out}");
        assert!(!out.contains("[env: RTM_SOCKET]"), "{out}");
    }
    // Every binary's about line is its own, and its env note appears once.
    for (bin, about) in [
        (RTMD, "The rtm daemon: owns the routing and ARP tables"),
        (RTM_CLIENT, "A ready rtm client"),
    ] {
        let o = bare(bin, &["--help"]);
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).starts_with(about), "{}", stdout(&o));
        assert_eq!(
            stdout(&o).matches("RTM_SOCKET").count(),
            1,
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn completions_and_man_pages_generate() {
    for (shell, marker) in [
        ("bash", "complete -F _rtmctl"),
        ("zsh", "#compdef rtmctl"),
        ("fish", "complete -c rtmctl"),
    ] {
        let o = bare(RTMCTL, &["completions", shell]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains(marker), "{shell}: {script}");
        // The completions know the objects, commands and keywords from the table.
        for word in ["route", "neigh", "replace"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        // clap_complete's fish script completes subcommands only.
        if shell != "fish" {
            for word in ["metric", "lladdr", "root"] {
                assert!(script.contains(word), "{shell} completion lacks {word}");
            }
        }
    }
    let o = bare(RTMCTL, &["completions", "tcsh"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("\"tcsh\""), "{}", stderr(&o));

    for (bin, name, section, must) in [
        (
            RTMCTL,
            "rtmctl",
            "1",
            "route add PREFIX [via GW] [dev IFNAME] [metric N]",
        ),
        (RTMD, "rtmd", "8", "check\\-config"),
        (RTM_CLIENT, "rtm-client", "1", "lookup"),
    ] {
        let o = bare(bin, &["--print-man-page"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let page = stdout(&o);
        assert!(page.contains(&format!(".TH {name} {section}")), "{page}");
        assert!(
            page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"),
            "{page}"
        );
        assert!(page.contains(must), "{name}: no {must:?} in\n{page}");
    }
}

#[test]
fn neigh_in_ip_order_and_delete_by_ip() {
    let inst = Instance::start();
    inst.ctl_line("neigh add 10.0.0.1 lladdr 00:11:22:33:44:55 dev eth0");
    inst.ctl_line("neigh replace 10.0.0.2 dev eth1 lladdr 00:11:22:33:44:66");
    inst.ctl_line("neigh add 00:11:22:33:44:77 10.0.0.2");
    assert_eq!(
        inst.ctl_ok(&["arp", "show"]),
        "10.0.0.1 lladdr 00:11:22:33:44:55 dev eth0\n10.0.0.2 lladdr 00:11:22:33:44:66 dev eth1\n10.0.0.2 lladdr 00:11:22:33:44:77\n"
    );
    // One entry with that IP: deleted.
    inst.ctl_line("neigh del 10.0.0.1");
    // Several: refused, naming them; nothing deleted.
    let o = inst.ctl(&["neigh", "del", "10.0.0.2"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("2 neighbours have IP 10.0.0.2")
            && err.contains("00:11:22:33:44:66")
            && err.contains("00:11:22:33:44:77"),
        "{err}"
    );
    // None: not found.
    let o = inst.ctl(&["neigh", "del", "10.0.0.9"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("10.0.0.9"));
    // ip's habit of naming the device picks one of them.
    let o = inst.ctl(&["neigh", "del", "10.0.0.2", "dev", "eth9"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("10.0.0.2 on eth9"), "{}", stderr(&o));
    inst.ctl_line("neigh del 10.0.0.2 dev eth1");
    assert_eq!(
        inst.ctl_ok(&["neigh", "show"]),
        "10.0.0.2 lladdr 00:11:22:33:44:77\n"
    );
    inst.ctl_line("neigh add 10.0.0.2 lladdr 00:11:22:33:44:66 dev eth1");
    inst.ctl_line("neigh del 00:11:22:33:44:77");
    assert_eq!(
        inst.ctl_ok(&["neigh", "show"]),
        "10.0.0.2 lladdr 00:11:22:33:44:66 dev eth1\n"
    );
    // Missing lladdr is named.
    let o = inst.ctl(&["neigh", "add", "10.0.0.3", "dev", "eth0"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("lladdr"), "{}", stderr(&o));
}

#[test]
fn addresses_that_cannot_be_a_next_hop_are_refused() {
    let inst = Instance::start();
    for (line, value) in [
        ("route add 10.0.0.0/8 via 224.0.0.1", "224.0.0.1"),
        (
            "route add 10.0.0.0/8 via 255.255.255.255",
            "255.255.255.255",
        ),
        ("route replace 10.0.0.0/8 via 0.0.0.0 dev eth0", "0.0.0.0"),
        ("arp add 00:11:22:33:44:55 239.1.1.1", "239.1.1.1"),
        ("arp add 00:11:22:33:44:55 0.0.0.0", "0.0.0.0"),
        ("arp add 01:00:5e:00:00:01 10.0.0.1", "01:00:5e:00:00:01"),
        ("arp add ff:ff:ff:ff:ff:ff 10.0.0.1", "ff:ff:ff:ff:ff:ff"),
        (
            "neigh add 10.0.0.1 lladdr 33:33:00:00:00:01",
            "33:33:00:00:00:01",
        ),
    ] {
        let o = inst.ctl(&line.split_whitespace().collect::<Vec<_>>());
        assert_eq!(code(&o), 1, "{line}: {}", stderr(&o));
        assert!(stderr(&o).contains(value), "{line}: {}", stderr(&o));
        // In a batch too: nothing applied.
        let o = inst.batch(&format!("{line}\n"), false);
        assert_eq!(code(&o), 1, "{line}");
    }
    assert_eq!(inst.ctl_ok(&["route", "show"]), "");
    assert_eq!(inst.ctl_ok(&["arp", "show"]), "");
}

#[test]
fn default_selectors_and_pretty() {
    let inst = Instance::start();
    let o = inst.batch(
        "route add default via 192.168.1.1\n\
         route add 10.1.0.0/16 via 192.168.1.1 dev eth0\n\
         route add 10.1.2.0/24 dev eth1\n\
         route add 10.2.0.0/16 dev eth0 metric 5\n\
         route add 172.16.0.0/12 via 192.168.1.2\n",
        false,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Text prints default as ip does; JSON keeps 0.0.0.0/0.
    assert!(inst
        .ctl_ok(&["route", "show"])
        .starts_with("default via 192.168.1.1\n"));
    assert_eq!(
        inst.ctl_ok(&["route", "get", "8.8.8.8"]),
        "default via 192.168.1.1\n"
    );
    assert_eq!(
        inst.ctl_json(&["route", "get", "8.8.8.8"])["dst"],
        "0.0.0.0/0"
    );
    let show = |sel: &str| inst.ctl_line(&format!("route show {sel}"));
    assert_eq!(
        show("dev eth0"),
        "10.1.0.0/16 via 192.168.1.1 dev eth0\n10.2.0.0/16 dev eth0 metric 5\n"
    );
    assert_eq!(
        show("via 192.168.1.1"),
        "default via 192.168.1.1\n10.1.0.0/16 via 192.168.1.1 dev eth0\n"
    );
    assert_eq!(show("root 10.0.0.0/8"), "10.1.0.0/16 via 192.168.1.1 dev eth0\n10.1.2.0/24 dev eth1\n10.2.0.0/16 dev eth0 metric 5\n");
    assert_eq!(
        show("match 10.1.2.3/32"),
        "default via 192.168.1.1\n10.1.0.0/16 via 192.168.1.1 dev eth0\n10.1.2.0/24 dev eth1\n"
    );
    assert_eq!(
        show("root 10.0.0.0/8 dev eth0 via 192.168.1.1"),
        "10.1.0.0/16 via 192.168.1.1 dev eth0\n"
    );
    assert_eq!(show("exact default"), "default via 192.168.1.1\n");

    // -p: indented JSON, the same document as -j.
    let o = inst.ctl(&["-p", "route", "show", "dev", "eth1"]);
    assert_eq!(code(&o), 0);
    let pretty = stdout(&o);
    assert!(
        pretty.starts_with("[\n  {\n    \"dst\": \"10.1.2.0/24\""),
        "{pretty}"
    );
    let v: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(v, inst.ctl_json(&["route", "show", "dev", "eth1"]));

    // A selective flush is the deletes of what it picks, each with its delete event, and no
    // flush event; a bare flush stays a flush.
    let mut watch = inst.watch();
    inst.eventually("watch is registered", || inst.client_names().len() == 1);
    inst.ctl_line("route flush root 10.0.0.0/8 dev eth0");
    let mut deleted = vec![
        watch.expect(|v| v["op"] == "delete")["key"]
            .as_str()
            .unwrap()
            .to_string(),
        watch.expect(|v| v["op"] == "delete")["key"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    deleted.sort();
    assert_eq!(deleted, ["10.1.0.0/16", "10.2.0.0/16"]);
    assert_eq!(
        show(""),
        "default via 192.168.1.1\n10.1.2.0/24 dev eth1\n172.16.0.0/12 via 192.168.1.2\n"
    );
    inst.ctl_line("route flush dev eth9");
    inst.ctl_line("route flush");
    let ev = watch.next();
    assert_eq!(ev["op"], "flush", "{ev}");
    assert_eq!(show(""), "");

    inst.ctl_line("arp add 00:11:22:33:44:55 10.0.0.1 dev eth0");
    inst.ctl_line("arp add 00:11:22:33:44:66 10.0.0.2 dev eth1");
    assert_eq!(
        inst.ctl_line("arp show dev eth1"),
        "10.0.0.2 lladdr 00:11:22:33:44:66 dev eth1\n"
    );
    inst.ctl_line("neigh flush dev eth0");
    assert_eq!(
        inst.ctl_line("arp show"),
        "10.0.0.2 lladdr 00:11:22:33:44:66 dev eth1\n"
    );
}

/// `batch -` applies lines as they arrive (stdin still open), and stops at a refused line:
/// what was written after it is not applied.
#[test]
fn batch_from_stdin_applies_lines_as_they_arrive() {
    use std::io::Write;
    use std::process::Stdio;
    let inst = Instance::start();
    inst.ctl_line("route add 10.9.0.0/16 dev eth0");
    let mut cmd = inst.ctl_cmd(&["batch", "-"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn().expect("spawn rtmctl"));
    let mut stdin = child.0.stdin.take().unwrap();
    writeln!(
        stdin,
        "route add 10.1.0.0/16 dev eth0\n# a comment\narp add 00:11:22:33:44:55 10.1.0.9"
    )
    .unwrap();
    stdin.flush().unwrap();
    inst.eventually("the first lines are applied while stdin is open", || {
        inst.ctl_ok(&["route", "show", "10.1.0.0/16"]) == "10.1.0.0/16 dev eth0\n"
            && inst.ctl_ok(&["arp", "show"]).contains("00:11:22:33:44:55")
    });
    // Refused (exists): stop; the line after it, written together, is not applied.
    writeln!(
        stdin,
        "route add 10.9.0.0/16 dev eth1\nroute add 10.2.0.0/16 dev eth0"
    )
    .unwrap();
    stdin.flush().unwrap();
    let status = wait_deadline(&mut child.0, DEADLINE)
        .expect("rtmctl batch - did not stop at the refused line");
    drop(stdin);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("rtmctl: line 4: ") && err.contains("10.9.0.0/16"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(inst.ctl_ok(&["route", "show", "10.2.0.0/16"]), "");

    // A bad line: everything before it is applied, nothing after; exit 1.
    let o = inst.batch("route add 10.3.0.0/16 dev eth0\nroute add 10.4.0.0/33 dev eth0\nroute add 10.5.0.0/16 dev eth0\n", false);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).starts_with("rtmctl: line 2: "), "{}", stderr(&o));
    assert_eq!(
        inst.ctl_ok(&["route", "show", "10.3.0.0/16"]),
        "10.3.0.0/16 dev eth0\n"
    );
    assert_eq!(inst.ctl_ok(&["route", "show", "10.5.0.0/16"]), "");
    // --force: every good line, every bad one reported.
    let o = inst.batch("route add 10.6.0.0/16 dev eth0\nbogus\nroute add 10.6.0.0/16 dev eth0\nroute add 10.7.0.0/16 dev eth0\n", true);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("line 2: ") && err.contains("line 3: "),
        "{err}"
    );
    assert_eq!(
        inst.ctl_ok(&["route", "show", "10.7.0.0/16"]),
        "10.7.0.0/16 dev eth0\n"
    );
}

/// `rtm-client lookup -` and `arp -`: one answer per line of keys, for scripts.
#[test]
fn client_lookups_from_stdin() {
    let inst = Instance::start();
    inst.ctl_line("route add default via 192.168.1.1");
    inst.ctl_line("route add 10.1.0.0/16 dev eth0");
    inst.ctl_line("arp add 00:11:22:33:44:55 10.1.0.9 dev eth0");
    let client = |args: &[&str], input: &str| {
        let mut cmd = Command::new(RTM_CLIENT);
        cmd.arg("--socket").arg(&inst.socket).args(args);
        run(cmd, Some(input.as_bytes()), DEADLINE)
    };
    let o = client(&["lookup", "-"], "10.1.2.3\n8.8.8.8\n\n10.1.0.0\n");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "10.1.0.0/16 dev eth0\ndefault via 192.168.1.1\n10.1.0.0/16 dev eth0\n"
    );
    let o = client(&["--json", "lookup", "-"], "10.1.2.3\n");
    assert_eq!(
        stdout(&o),
        "{\"dst\":\"10.1.0.0/16\",\"dev\":\"eth0\",\"metric\":0}\n"
    );
    let o = client(
        &["arp", "-"],
        "00-11-22-33-44-55\n00:11:22:33:44:66\nnope\n",
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        [
            "10.1.0.9 lladdr 00:11:22:33:44:55 dev eth0",
            "no ARP entry for 00:11:22:33:44:66",
            "error: invalid MAC address \"nope\": expected aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff",
        ]
    );
    assert!(
        stderr(&o).contains("line 3: invalid MAC address \"nope\""),
        "{}",
        stderr(&o)
    );
    let o = client(&["--json", "arp", "-"], "00:11:22:33:44:66\n");
    assert_eq!((code(&o), stdout(&o).as_str()), (2, "null\n"));
}
