//! docs/operations.md "Logs": `rtmd --log-format text|json|journald`, an invalid `RUST_LOG`
//! refused at start, and the lines an operator looks for: a flush (info), each change (debug),
//! clients registering and leaving, an actor restart.
#![forbid(unsafe_code)]

mod common;

use std::process::Command;

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

fn start(format: &str, filter: &str) -> Instance {
    let mut inst = Instance::unstarted();
    let mut cmd = inst.daemon_cmd(&["--log-format", format]);
    cmd.env("RUST_LOG", filter);
    inst.spawn_daemon_cmd(cmd);
    inst
}

/// Routes, a registered client, a flush, a clean stop.
fn exercise(inst: &mut Instance) {
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "10.1.0.9"]);
    let mut c = inst.client("logger", &[]);
    inst.ctl_ok(&["flush"]);
    nix::sys::signal::kill(c.pid(), Signal::SIGTERM).unwrap();
    c.expect(|v| v["op"] == "bye");
    inst.eventually("the client is gone", || inst.client_names().is_empty());
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
}

#[test]
fn json_lines_carry_level_message_and_fields() {
    let mut inst = start("json", "debug");
    exercise(&mut inst);
    let lines: Vec<Value> = inst
        .log_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find =
        |msg: &str| -> Vec<&Value> { lines.iter().filter(|v| v["message"] == msg).collect() };
    let change = find("change");
    assert_eq!(change.len(), 2, "{lines:#?}");
    assert_eq!(change[0]["level"], "DEBUG");
    assert_eq!(change[0]["table"], "route");
    assert_eq!(change[0]["op"], "create");
    assert_eq!(change[0]["key"], "10.1.0.0/16");
    assert_eq!(change[1]["key"], "00:11:22:33:44:55");
    let flushed = find("table flushed");
    assert_eq!(flushed.len(), 2, "one line per table flushed: {flushed:#?}");
    assert!(flushed.iter().all(|v| v["level"] == "INFO"));
    let reg = find("client registered");
    assert_eq!(reg.len(), 1);
    assert_eq!(reg[0]["name"], "logger");
    assert!(reg[0]["timestamp"].is_string() && reg[0]["pid"].is_u64());
    assert_eq!(find("client deregistered").len(), 1);
}

#[test]
fn journald_lines_start_with_their_priority() {
    let mut inst = start("journald", "debug");
    exercise(&mut inst);
    let log = inst.log_text();
    for l in log.lines() {
        let p = l.strip_prefix('<').and_then(|r| r.split_once('>'));
        assert!(
            matches!(p, Some(("3" | "4" | "6" | "7", rest)) if rest.starts_with("rtm_actors::")),
            "{l}"
        );
    }
    assert!(
        log.contains("<6>rtm_actors::table::apply: table flushed table=\"route\""),
        "{log}"
    );
    assert!(
        log.contains("<7>rtm_actors::table::apply: change table=\"route\""),
        "{log}"
    );
    assert!(
        log.contains("<6>rtm_actors::registry: client registered"),
        "{log}"
    );
}

/// Info is the default and hides the per-change lines; text has a timestamp.
#[test]
fn text_at_info_logs_flushes_not_changes() {
    let mut inst = start("text", "info");
    exercise(&mut inst);
    let log = inst.log_text();
    assert!(log.lines().all(|l| l.starts_with("20")), "{log}");
    assert_eq!(log.matches("table flushed").count(), 2, "{log}");
    assert!(!log.contains(" change "), "{log}");
    assert!(log.contains("client registered") && log.contains("client deregistered"));
}

#[test]
fn an_invalid_rust_log_or_format_stops_the_start() {
    let inst = Instance::unstarted();
    for (filter, format, expect) in [
        (
            "info,rtm_actors=loud",
            "text",
            "invalid RUST_LOG \"info,rtm_actors=loud\"",
        ),
        ("info", "xml", "xml"),
    ] {
        let mut cmd: Command = inst.daemon_cmd(&["--log-format", format]);
        cmd.env("RUST_LOG", filter);
        let o = run(cmd, None, DEADLINE);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains(expect), "{}", stderr(&o));
        assert!(!inst.socket.exists());
    }
}

/// An actor restart is logged: the failure at error, the restart at info.
#[cfg(feature = "fault-injection")]
#[test]
fn an_actor_restart_is_logged() {
    let mut inst = start("json", "info");
    inst.ctl_ok(&["debug", "panic", "route"]);
    inst.eventually("the route actor restarted", || {
        inst.ctl_json(&["status"])["restarts"]["route"] == 1
    });
    inst.signal_daemon(Signal::SIGTERM);
    inst.wait_daemon();
    let lines: Vec<Value> = inst
        .log_text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|v| v["level"] == "ERROR"
        && v["actor"] == "route"
        && v["message"].as_str().unwrap().contains("restarting it")));
    assert!(lines.iter().any(|v| v["level"] == "INFO"
        && v["table"] == "route"
        && v["message"].as_str().unwrap().contains("restarting")));
}
