//! Readers map only table files whose owner they trust (docs/shared-memory.md, "Who may have made a file"): registered
//! clients files of root, their own uid or the daemon's (its socket's `SO_PEERCRED`); one-shot
//! readers with `--shm-dir` (the daemon down) files of root, their own uid or the shm
//! directory's owner. A file of any other uid is refused with an error naming the path, its
//! owner and the uids expected (rtm-client exit 3). The tests plant files owned by uid 65534,
//! so they need root (they say so and pass without it).
#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use nix::unistd::{chown, geteuid, Uid};

const OTHER: u32 = 65534;

fn set_owner(p: &Path, uid: u32) {
    chown(p, Some(Uid::from_raw(uid)), None)
        .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
}

fn root_or_skip() -> bool {
    if geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: planting a file of another uid needs root (chown)");
    false
}

fn client(inst: &Instance, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(RTM_CLIENT);
    c.arg("--socket").arg(&inst.socket).args(args);
    run(c, None, DEADLINE)
}

fn dump_flags(inst: &Instance, instance: &str) -> std::process::Output {
    let dir = inst.shm_dir.to_str().unwrap();
    client(
        inst,
        &[
            "dump",
            "--table",
            "route",
            "--shm-dir",
            dir,
            "--instance",
            instance,
        ],
    )
}

fn assert_refused(o: &std::process::Output, path: &Path, what: &str) {
    let err = stderr(o);
    assert_eq!(code(o), 3, "{what}: {err}");
    assert!(
        err.contains(&format!(
            "shared-memory file {} is owned by uid {OTHER}, not by uid 0",
            path.display()
        )),
        "{what}: {err}"
    );
}

#[test]
fn a_one_shot_reader_refuses_a_planted_file_of_another_uid() {
    if !root_or_skip() {
        return;
    }
    let inst = Instance::start();
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "via", "192.0.2.1"]);
    // A copy of the table file under another instance name, owned by another uid, in a
    // directory root owns.
    let planted = inst.shm_dir.join("planted.route");
    std::fs::copy(inst.route_shm(), &planted).unwrap();
    set_owner(&planted, OTHER);

    assert_refused(
        &dump_flags(&inst, "planted"),
        &planted,
        "dump of the planted file",
    );
    let dir = inst.shm_dir.to_str().unwrap();
    let o = client(
        &inst,
        &[
            "lookup",
            "10.1.2.3",
            "--shm-dir",
            dir,
            "--instance",
            "planted",
        ],
    );
    assert_refused(&o, &planted, "lookup in the planted file");

    // The daemon's own file next to it is read; so is the copy once root owns it.
    let o = dump_flags(&inst, "t");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("10.1.0.0/16"), "{}", stdout(&o));
    set_owner(&planted, 0);
    let o = dump_flags(&inst, "planted");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("10.1.0.0/16"), "{}", stdout(&o));
}

#[test]
fn registered_clients_trust_the_daemons_uid_not_the_directorys_owner() {
    if !root_or_skip() {
        return;
    }
    let inst = Instance::start();
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "via", "192.0.2.1"]);
    // The directory and both files now belong to uid 65534, the daemon runs as root.
    for p in [&inst.shm_dir, &inst.route_shm(), &inst.arp_shm()] {
        set_owner(p, OTHER);
    }

    // With --shm-dir (no daemon asked) the directory's owner is trusted: read.
    let o = dump_flags(&inst, "t");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("10.1.0.0/16"), "{}", stdout(&o));

    // Asking the daemon, a one-shot reader trusts its uid (root) only: refused.
    let o = client(&inst, &["dump", "--table", "route"]);
    assert_refused(&o, &inst.route_shm(), "dump through the daemon");
    // So does a subscriber and `rtmctl watch`: nothing is mapped, exit 3.
    let o = client(&inst, &["--table", "route"]);
    assert_refused(&o, &inst.route_shm(), "rtm-client subscriber");
    let o = run(inst.ctl_cmd(&["watch"]), None, DEADLINE);
    assert_refused(&o, &inst.route_shm(), "rtmctl watch");

    // Owned by the daemon's uid again: a subscriber syncs the table.
    for p in [&inst.shm_dir, &inst.route_shm(), &inst.arp_shm()] {
        set_owner(p, 0);
    }
    let mut c = inst.client_unsynced("after", &["--table", "route"]);
    let synced = c.collect_until(|v| v["op"] == "sync-done");
    assert!(
        synced
            .iter()
            .any(|v| v["op"] == "sync" && v["key"] == "10.1.0.0/16"),
        "{synced:?}"
    );
}
