//! docs/configuration.md: `rtmd --check-config` says whether a config file would start the
//! daemon and where its first error is (file, line, column, key); SIGHUP logs each key it
//! applied and warns for each changed key that needs a restart, without applying it.
#![forbid(unsafe_code)]

mod common;

use std::process::Command;

use common::*;
use nix::sys::signal::Signal;

fn check(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(RTMD);
    cmd.arg("--check-config").args(args);
    run(cmd, None, DEADLINE)
}

#[test]
fn check_config_exit_codes_and_places() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    // The shipped example is good.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rtmd.toml");
    let o = check(&[shipped]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{shipped}: ok\n"));

    for (text, expect) in [
        (
            "# limits\nmax-clients = \"ten\"\n",
            ":2:15: max-clients: invalid type: string \"ten\", expected u32",
        ),
        (
            "max-client = 3\n",
            ":1:1: max-client: unknown field `max-client`",
        ),
        (
            "instance = \"t\"\nroute-capacity = 0\n",
            ":2:1: route-capacity: \"0\": must be at least 1",
        ),
        (
            "handshake-timeout = \"soon\"\n",
            ":1:1: handshake-timeout: \"soon\": ",
        ),
        (
            "max-clients = 3\nmax-clients = 4\n",
            ":2:1: max-clients: duplicate key",
        ),
    ] {
        let p = file("bad.toml", text);
        let o = check(&[&p]);
        assert_eq!(code(&o), 1, "{text:?} passed the check");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("rtmd: {p}{expect}")),
            "{text:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        // A start with the same file fails the same way, before anything is created.
        let inst = Instance::unstarted();
        let mut cmd = Command::new(RTMD);
        cmd.arg("--socket")
            .arg(&inst.socket)
            .arg("--shm-dir")
            .arg(&inst.shm_dir)
            .args(["--config", &p]);
        let o = run(cmd, None, DEADLINE);
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains(&format!("{p}{expect}")),
            "{}",
            stderr(&o)
        );
        assert!(!inst.socket.exists());
    }
    // A flag that fixes the bad value makes the file start; --config names the file too.
    let p = file("cap.toml", "route-capacity = 0\n");
    assert_eq!(code(&check(&[&p, "--route-capacity", "10"])), 0);
    let o = check(&["--config", &p]);
    assert_eq!(code(&o), 1);
    let o = check(&[]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("needs a FILE"), "{}", stderr(&o));
    let o = check(&["/nonexistent/rtmd.toml"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("/nonexistent/rtmd.toml"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sighup_applies_limits_and_warns_for_restart_keys() {
    let mut inst = Instance::unstarted();
    let cfg = inst.dir.path().join("rtmd.toml");
    std::fs::write(&cfg, "max-clients = 3\n").unwrap();
    // No --route-capacity flag, so the file's value is the one that would change.
    let mut cmd = Command::new(RTMD);
    cmd.arg("--socket")
        .arg(&inst.socket)
        .arg("--shm-dir")
        .arg(&inst.shm_dir)
        .args([
            "--instance",
            "t",
            "--arp-capacity",
            "1024",
            "--max-batch",
            "50",
        ])
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info");
    std::fs::write(&cfg, "max-clients = 3\nroute-capacity = 4096\n").unwrap();
    inst.spawn_daemon_cmd(cmd);
    assert_eq!(inst.ctl_json(&["status"])["route_capacity"], 4096);

    std::fs::write(
        &cfg,
        "max-clients = 5\nroute-capacity = 5000\nmax-batch = 10\n",
    )
    .unwrap();
    inst.signal_daemon(Signal::SIGHUP);
    inst.eventually("the reload is logged", || {
        inst.log_text().contains("config reloaded")
    });
    let log = inst.log_text();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"))
            .to_string()
    };
    let applied = line("key=max-clients");
    assert!(
        applied.contains("INFO") && applied.contains("old=3 new=5") && applied.contains("applied"),
        "{applied}"
    );
    let restart = line("key=route-capacity");
    assert!(
        restart.contains("WARN")
            && restart.contains("next start")
            && restart.contains("not applied"),
        "{restart}"
    );
    let flag = line("key=max-batch");
    assert!(flag.contains("WARN") && flag.contains("flag"), "{flag}");
    assert!(line("config reloaded").contains("applied=1 need_restart=1"));
    // Not applied: the table keeps its capacity.
    assert_eq!(inst.ctl_json(&["status"])["route_capacity"], 4096);

    // A bad file changes nothing and the log says where the error is.
    std::fs::write(&cfg, "max-clients = 9\nroute-capacity = 0\n").unwrap();
    inst.signal_daemon(Signal::SIGHUP);
    inst.eventually("the failed reload is logged", || {
        inst.log_text().contains("config reload failed")
    });
    let log = inst.log_text();
    let failed = log
        .lines()
        .find(|l| l.contains("config reload failed"))
        .unwrap();
    assert!(
        failed.contains(&format!("{}:2:1: route-capacity", cfg.display())),
        "{failed}"
    );
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success());
}
