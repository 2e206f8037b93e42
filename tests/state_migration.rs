//! docs/guarantees.md §7: a state directory written by an older rtmd (journal format 1, in
//! tests/fixtures/state-v1; format 2, in tests/fixtures/state-v2) is read by this one,
//! rewritten in the current format at the first start, and holds the same tables after it; a
//! state directory of a newer format is refused with an error naming the file and both
//! versions.
#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

/// The table files of a fixture (the `.lock` files are made by rtmd).
const FILES: [&str; 4] = ["route.snap", "route.journal", "arp.snap", "arp.journal"];

/// The journal format this rtmd writes.
const CURRENT: u32 = 3;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of fixture `name`'s table files in `inst`'s directory.
fn copy_fixture(inst: &Instance, name: &str) -> PathBuf {
    let state = inst.dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    for f in FILES {
        std::fs::copy(fixture(name).join(f), state.join(f)).unwrap();
    }
    state
}

fn fixture_text(name: &str, file: &str) -> String {
    let path = fixture(name).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected(name: &str, file: &str) -> Value {
    serde_json::from_str(&fixture_text(name, file)).unwrap_or_else(|e| panic!("{name}/{file}: {e}"))
}

/// The format version in a table file's header: bytes 8..12 after the 8-byte magic.
fn header_version(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

fn state_flags(state: &Path) -> [String; 2] {
    ["--state-dir".into(), state.display().to_string()]
}

/// The tables equal what the older rtmd showed for fixture `name` (its JSON; its text too
/// where the fixture has it).
fn check_tables(inst: &Instance, name: &str) {
    assert_eq!(
        inst.ctl_json(&["route", "show"]),
        expected(name, "route-show.json"),
        "{name}: route show"
    );
    assert_eq!(
        inst.ctl_json(&["arp", "show"]),
        expected(name, "arp-show.json"),
        "{name}: arp show"
    );
    for (table, file) in [("route", "route-show.txt"), ("arp", "arp-show.txt")] {
        if fixture(name).join(file).exists() {
            assert_eq!(
                inst.ctl_ok(&[table, "show"]),
                fixture_text(name, file),
                "{name}: {table} show"
            );
        }
    }
}

fn migration_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("older journal format"))
        .collect()
}

/// Starts this rtmd on a copy of fixture `name` (all its files of format `version`): the
/// tables are the fixture's, the start rewrote them in the current format and said so; a
/// second start reads the rewritten files and shows the same.
fn read_and_rewritten_at_the_first_start(name: &str, version: u32) {
    let mut inst = Instance::unstarted();
    let state = copy_fixture(&inst, name);
    for f in FILES {
        assert_eq!(
            header_version(&state.join(f)),
            version,
            "fixture {name}/{f}"
        );
    }
    let flags = state_flags(&state);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();

    inst.spawn_daemon(&flags);
    check_tables(&inst, name);
    // The start rewrote both tables in the current format (a fresh snapshot and an empty
    // journal each), and said so once per table, naming the directory and both versions.
    for f in FILES {
        assert_eq!(
            header_version(&state.join(f)),
            CURRENT,
            "{f} after the start"
        );
    }
    let log = inst.log_text();
    let lines = migration_lines(&log);
    assert_eq!(lines.len(), 2, "{log}");
    for (line, table) in lines.iter().zip(["route", "arp"]) {
        assert!(
            line.contains(&format!("table={table}"))
                && line.contains(&format!("dir={}", state.display()))
                && line.contains(&format!("from_version={version}"))
                && line.contains(&format!("to_version={CURRENT}")),
            "{line}"
        );
    }

    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());

    // The second start reads the rewritten files: the same tables, nothing left to migrate.
    inst.spawn_daemon(&flags);
    check_tables(&inst, name);
    let log = inst.log_text();
    assert_eq!(migration_lines(&log).len(), 2, "{log}");
    for f in FILES {
        assert_eq!(header_version(&state.join(f)), CURRENT, "{f}");
    }
    inst.signal_daemon(Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
}

#[test]
fn a_format_1_state_dir_is_read_and_rewritten_at_the_first_start() {
    read_and_rewritten_at_the_first_start("state-v1", 1);
}

#[test]
fn a_format_2_state_dir_is_read_and_rewritten_at_the_first_start() {
    read_and_rewritten_at_the_first_start("state-v2", 2);
}

/// CRC-32C (Castagnoli, reflected), bit by bit: enough for one 36-byte header.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_state_dir_of_a_newer_format_is_refused() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    let inst = Instance::unstarted();
    let state = copy_fixture(&inst, "state-v2");
    let snap = state.join("route.snap");
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[8..12].copy_from_slice(&(CURRENT + 1).to_le_bytes());
    let crc = crc32c(&bytes[0..36]);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&snap, &bytes).unwrap();

    let flags = state_flags(&state);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let cmd = inst.daemon_cmd(&flags);
    let out = run(cmd, None, DEADLINE);
    assert_ne!(code(&out), 0, "rtmd started on a newer state dir");
    let err = stderr(&out);
    assert!(
        err.contains(&snap.display().to_string())
            && err.contains(&format!("format version {}", CURRENT + 1))
            && err.contains(&format!("versions 1 to {CURRENT}")),
        "{err}"
    );
    // Refused, not rewritten.
    assert_eq!(std::fs::read(&snap).unwrap(), bytes);
    assert!(inst.daemon.is_none());
}
