//! docs/cli.md ("rtmctl") and docs/guarantees.md §10: a catalogue of bad `rtmctl` input. Every
//! grammar position (object, command, each argument, each keyword, missing values, extra tokens)
//! and every value type (prefix, address, MAC, interface name, metric, file), empty, overlong and
//! non-UTF-8, gets exit code 1, the exact one-line message it gives today, and provably sends
//! nothing: the daemon's `requests`, `changes` and `sessions_opened` counters move only by the
//! `status` call that reads them. Bad `batch` lines report `line N: ...`, exit 1, and leave every
//! line before them applied.
//!
//! Messages that list the commands are matched up to that list, so that adding a command does
//! not break the catalogue.
#![forbid(unsafe_code)]

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use common::*;

/// What stderr must be.
enum Expect {
    /// Exactly this one line.
    Line(String),
    /// One line starting with this (the rest lists commands, which may grow).
    Starts(&'static str),
    /// clap's own report: its first line is this (more lines follow).
    Clap(&'static str),
}

struct Case {
    args: Vec<OsString>,
    expect: Expect,
}

fn words(line: &str) -> Vec<OsString> {
    line.split_whitespace().map(OsString::from).collect()
}

/// A case whose arguments are `line` split on whitespace.
fn line(args: &str, expect: impl Into<String>) -> Case {
    Case {
        args: words(args),
        expect: Expect::Line(format!("rtmctl: {}", expect.into())),
    }
}

/// A case with explicit arguments (empty, containing spaces, overlong).
fn argv(args: &[&str], expect: impl Into<String>) -> Case {
    Case {
        args: args.iter().map(OsString::from).collect(),
        expect: Expect::Line(format!("rtmctl: {}", expect.into())),
    }
}

fn starts(args: &str, prefix: &'static str) -> Case {
    Case {
        args: words(args),
        expect: Expect::Starts(prefix),
    }
}

/// `prefix` + one non-UTF-8 word + `suffix`.
fn non_utf8(prefix: &str, bytes: &[u8], suffix: &str) -> Case {
    let mut args = words(prefix);
    args.push(OsStr::from_bytes(bytes).to_os_string());
    args.extend(words(suffix));
    Case {
        args,
        expect: Expect::Clap("error: invalid UTF-8 was detected in one or more arguments"),
    }
}

const MAC_HINT: &str = "expected aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff";
const PREFIX_HINT: &str = "expected a.b.c.d/len with len 0..=32";
const METRIC_HINT: &str = "expected an integer 0..=4294967295 without leading zeros";

/// How messages show an overlong ASCII value: its first 64 characters, then its length.
fn cut(v: &str) -> String {
    if v.len() <= 64 {
        return v.to_string();
    }
    format!("{}… ({} bytes)", &v[..64], v.len())
}

fn bad_prefix(p: &str) -> String {
    format!("invalid prefix \"{p}\": {PREFIX_HINT}")
}

fn bad_addr(a: &str) -> String {
    format!("invalid IPv4 address \"{a}\"")
}

fn bad_mac(m: &str) -> String {
    format!("invalid MAC address \"{m}\": {MAC_HINT}")
}

fn bad_metric(m: &str) -> String {
    format!("invalid metric \"{m}\": {METRIC_HINT}")
}

fn catalogue() -> Vec<Case> {
    let long_prefix = format!("10.0.0.0/{}", "1".repeat(300));
    let long_addr = "1.".repeat(2000) + "1";
    let long_dev = "e".repeat(16);
    let huge_dev = "e".repeat(4096);
    let long_metric = "9".repeat(100);
    let long_mac = "aa:".repeat(400) + "aa";
    let long_word = "x".repeat(5000);
    let missing = "/nonexistent-rtm-dir/batch.txt";
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    vec![
        // ----- object -----
        starts("", "rtmctl: missing command; expected: route|arp|"),
        starts(
            "frobnicate",
            "rtmctl: unknown command \"frobnicate\"; expected: ",
        ),
        starts(
            "ROUTE show",
            "rtmctl: unknown command \"ROUTE\"; expected: ",
        ),
        starts(
            "--bogus status",
            "rtmctl: unknown command \"--bogus\"; expected: ",
        ),
        Case {
            args: vec![OsString::new()],
            expect: Expect::Starts("rtmctl: unknown command \"\"; expected: "),
        },
        starts(&long_word, "rtmctl: unknown command \"xxxxxxxx"),
        non_utf8("", b"r\xffute", "show"),
        // ----- command -----
        starts("route", "rtmctl: route needs a command: "),
        starts("arp", "rtmctl: arp needs a command: "),
        starts(
            "route frob",
            "rtmctl: unknown route command \"frob\"; expected ",
        ),
        starts(
            "arp frob",
            "rtmctl: unknown arp command \"frob\"; expected ",
        ),
        Case {
            args: words("route")
                .into_iter()
                .chain([OsString::new()])
                .collect(),
            expect: Expect::Starts("rtmctl: unknown route command \"\"; expected "),
        },
        non_utf8("route", b"\xfe", ""),
        non_utf8("arp", b"sh\xc3ow", ""),
        // ----- extra tokens after commands without arguments -----
        line("flush route", "unexpected argument \"route\" after flush"),
        line("clients all", "unexpected argument \"all\" after clients"),
        line("watch now", "unexpected argument \"now\" after watch"),
        line("status now", "unexpected argument \"now\" after status"),
        // flush takes selectors (docs/cli.md); a word that is none is named.
        line(
            "route flush now",
            "invalid prefix \"now\": expected a.b.c.d/len with len 0..=32",
        ),
        line(
            "arp flush now",
            "invalid MAC address \"now\": expected aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff",
        ),
        // ----- route add|change|replace: PREFIX -----
        line("route add", "route add needs a PREFIX"),
        line("route change", "route change needs a PREFIX"),
        line("route replace", "route replace needs a PREFIX"),
        line(
            "route add 10.0.0.1/8 dev eth0",
            "invalid prefix \"10.0.0.1/8\": host bits are set (did you mean 10.0.0.0/8?)",
        ),
        line(
            "route replace 192.168.1.77/24 dev eth0",
            "invalid prefix \"192.168.1.77/24\": host bits are set (did you mean 192.168.1.0/24?)",
        ),
        line("route add 10.0.0.0/33 dev eth0", bad_prefix("10.0.0.0/33")),
        line("route add 10.0.0/8 dev eth0", bad_prefix("10.0.0/8")),
        line("route add 10.0.0.0/ dev eth0", bad_prefix("10.0.0.0/")),
        line("route add 10.0.0.0/+8 dev eth0", bad_prefix("10.0.0.0/+8")),
        line("route add 10.0.0.0/08 dev eth0", bad_prefix("10.0.0.0/08")),
        line(
            "route add 10.0.0.0/8/8 dev eth0",
            bad_prefix("10.0.0.0/8/8"),
        ),
        line("route add 010.0.0.0/8 dev eth0", bad_prefix("010.0.0.0/8")),
        line("route add /8 dev eth0", bad_prefix("/8")),
        // In a PREFIX position anything that is not an address is called a bad prefix.
        line("route add 10.0.0.256 dev eth0", bad_prefix("10.0.0.256")),
        line("route add eth0 dev eth0", bad_prefix("eth0")),
        argv(&["route", "add", "", "dev", "eth0"], bad_prefix("")),
        argv(
            &["route", "add", "10.0.0.0 /8", "dev", "eth0"],
            bad_prefix("10.0.0.0 /8"),
        ),
        line(
            &format!("route add {long_prefix} dev eth0"),
            bad_prefix(&cut(&long_prefix)),
        ),
        non_utf8("route add", b"10.0.0.0/\xff", "dev eth0"),
        // ----- route: next hop -----
        line(
            "route add 10.0.0.0/8",
            "route 10.0.0.0/8 needs a gateway (via) or a device (dev)",
        ),
        line(
            "route change 10.0.0.0/8 metric 5",
            "route 10.0.0.0/8 needs a gateway (via) or a device (dev)",
        ),
        // ----- via -----
        line("route add 10.0.0.0/8 via", "\"via\" needs a value"),
        line("route add 10.0.0.0/8 via 1.2.3", bad_addr("1.2.3")),
        line("route add 10.0.0.0/8 via 1.2.3.4.5", bad_addr("1.2.3.4.5")),
        line("route add 10.0.0.0/8 via 01.2.3.4", bad_addr("01.2.3.4")),
        line("route add 10.0.0.0/8 via ::1", bad_addr("::1")),
        line(
            "route add 10.0.0.0/8 via 1.2.3.0/24",
            bad_addr("1.2.3.0/24"),
        ),
        argv(&["route", "add", "10.0.0.0/8", "via", ""], bad_addr("")),
        line(
            &format!("route add 10.0.0.0/8 via {long_addr}"),
            bad_addr(&cut(&long_addr)),
        ),
        line(
            "route add 10.0.0.0/8 via 1.2.3.4 via 1.2.3.5",
            "\"via\" given twice",
        ),
        non_utf8("route add 10.0.0.0/8 via", b"1.2.3.\x80", ""),
        // ----- dev -----
        line("route add 10.0.0.0/8 dev", "\"dev\" needs a value"),
        line(
            "route add 10.0.0.0/8 dev a/b",
            "invalid interface name \"a/b\": contains '/'",
        ),
        line(
            &format!("route add 10.0.0.0/8 dev {long_dev}"),
            format!("invalid interface name \"{long_dev}\": longer than 15 bytes"),
        ),
        line(
            &format!("route add 10.0.0.0/8 dev {huge_dev}"),
            format!(
                "invalid interface name \"{}\": longer than 15 bytes",
                cut(&huge_dev)
            ),
        ),
        line(
            "route add 10.0.0.0/8 dev .",
            "invalid interface name \".\": reserved name",
        ),
        line(
            "route add 10.0.0.0/8 dev ..",
            "invalid interface name \"..\": reserved name",
        ),
        argv(
            &["route", "add", "10.0.0.0/8", "dev", ""],
            "invalid interface name \"\": empty",
        ),
        argv(
            &["route", "add", "10.0.0.0/8", "dev", "eth 0"],
            "invalid interface name \"eth 0\": contains whitespace or a control character",
        ),
        argv(
            &["route", "add", "10.0.0.0/8", "dev", "eth\t0"],
            // Control characters are shown escaped: the message stays one harmless line.
            "invalid interface name \"eth\\t0\": contains whitespace or a control character",
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 dev eth1",
            "\"dev\" given twice",
        ),
        non_utf8("route add 10.0.0.0/8 dev", b"eth\xff", ""),
        // ----- metric -----
        line(
            "route add 10.0.0.0/8 dev eth0 metric",
            "\"metric\" needs a value",
        ),
        line("route add 10.0.0.0/8 dev eth0 metric -1", bad_metric("-1")),
        line("route add 10.0.0.0/8 dev eth0 metric +1", bad_metric("+1")),
        line(
            "route add 10.0.0.0/8 dev eth0 metric 4294967296",
            bad_metric("4294967296"),
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 metric 1e3",
            bad_metric("1e3"),
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 metric 0x10",
            bad_metric("0x10"),
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 metric ten",
            bad_metric("ten"),
        ),
        argv(
            &["route", "add", "10.0.0.0/8", "dev", "eth0", "metric", ""],
            bad_metric(""),
        ),
        argv(
            &["route", "add", "10.0.0.0/8", "dev", "eth0", "metric", " 1"],
            bad_metric(" 1"),
        ),
        line(
            &format!("route add 10.0.0.0/8 dev eth0 metric {long_metric}"),
            bad_metric(&cut(&long_metric)),
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 metric 00010",
            bad_metric("00010"),
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 metric 1 metric 2",
            "\"metric\" given twice",
        ),
        non_utf8("route add 10.0.0.0/8 dev eth0 metric", b"1\xff", ""),
        // ----- unknown keywords and extra tokens -----
        line(
            "route add 10.0.0.0/8 dev eth0 bogus 1",
            "unknown argument \"bogus\" for route add; expected via, dev, metric or nexthop",
        ),
        line(
            "route replace 10.0.0.0/8 dev eth0 table 5",
            "unknown argument \"table\" for route replace; expected via, dev, metric or nexthop",
        ),
        line(
            "route add 10.0.0.0/8 DEV eth0",
            "unknown argument \"DEV\" for route add; expected via, dev, metric or nexthop",
        ),
        // A trailing unknown word is an unknown keyword, a known one needs its value.
        line(
            "route add 10.0.0.0/8 dev eth0 proto",
            "unknown argument \"proto\" for route add; expected via, dev, metric or nexthop",
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 --json",
            "unknown argument \"--json\" for route add; expected via, dev, metric or nexthop",
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 metric",
            "\"metric\" needs a value",
        ),
        line(
            "arp add aa:bb:cc:dd:ee:ff 10.0.0.1 proto",
            "unknown argument \"proto\" for arp add; expected dev",
        ),
        line(
            "route add 10.0.0.0/8 dev eth0 \x1b[31m",
            "unknown argument \"\\u{1b}[31m\" for route add; expected via, dev, metric or nexthop",
        ),
        // ----- multipath routes (nexthop …) -----
        line(
            "route add 10.2.0.0/16 nexthop via 192.0.2.1 weight 0 nexthop via 192.0.2.2",
            "invalid weight \"0\": expected an integer 1..=256",
        ),
        line(
            "route add 10.2.0.0/16 nexthop via 192.0.2.1 nexthop via 192.0.2.2 weight 300",
            "invalid weight \"300\": expected an integer 1..=256",
        ),
        line(
            "route add 10.2.0.0/16 via 192.0.2.9 nexthop via 192.0.2.1 nexthop via 192.0.2.2",
            "route add 10.2.0.0/16: \"via 192.0.2.9\" before nexthop; a route with nexthops \
             gives its gateways and devices in them only",
        ),
        line(
            &format!(
                "route add 10.2.0.0/16{}",
                (0..257)
                    .map(|i| format!(" nexthop via 10.1.{}.{}", i / 200, i % 200 + 1))
                    .collect::<String>()
            ),
            "route 10.2.0.0/16: 257 nexthops, at most 256 allowed",
        ),
        line(
            "route add 10.2.0.0/16 nexthop via 192.0.2.1 metric 5",
            "unknown argument \"metric\" in nexthop 1 of route add 10.2.0.0/16; expected via, \
             dev, weight or nexthop; metric goes before the first nexthop",
        ),
        line(
            "route add 10.2.0.0/16 nexthop via 192.0.2.1 nexthop",
            "route 10.2.0.0/16: every nexthop needs a gateway (via) or a device (dev)",
        ),
        line(
            "route add 10.2.0.0/16 nexthop dev eth0 dev eth1",
            "\"dev\" given twice in nexthop 1",
        ),
        // ----- route del / show / get -----
        line("route del", "route del needs a PREFIX"),
        line(
            "route del 10.0.0.1/8",
            "invalid prefix \"10.0.0.1/8\": host bits are set (did you mean 10.0.0.0/8?)",
        ),
        line("route del 10.0.0.0/40", bad_prefix("10.0.0.0/40")),
        line(
            "route del 10.0.0.0/8 extra",
            "unexpected argument \"extra\" after route del",
        ),
        line(
            "route del 10.0.0.0/8 dev eth0",
            "unexpected argument \"dev\" after route del",
        ),
        line("route show banana", bad_prefix("banana")),
        line(
            "route show 10.0.0.1/8",
            "invalid prefix \"10.0.0.1/8\": host bits are set (did you mean 10.0.0.0/8?)",
        ),
        line(
            "route show 10.0.0.0/8 extra",
            "unexpected argument \"extra\" after route show; expected exact, root, match, dev or via",
        ),
        line("route show -j", bad_prefix("-j")),
        line("route get", "route get needs an ADDRESS"),
        line("route get 10.0.0.0/8", bad_addr("10.0.0.0/8")),
        line("route get 10.0.0.256", bad_addr("10.0.0.256")),
        line(
            "route get 10.0.0.1 extra",
            "unexpected argument \"extra\" after route get",
        ),
        non_utf8("route get", b"\xff", ""),
        // ----- arp add|change|replace: MAC IP [dev IFNAME] -----
        line("arp add", "arp add needs a MAC and an IP"),
        line("arp replace", "arp replace needs a MAC and an IP"),
        line(
            "arp add aa:bb:cc:dd:ee:ff",
            "arp add needs an IP after the MAC",
        ),
        line(
            "arp change aa:bb:cc:dd:ee:ff",
            "arp change needs an IP after the MAC",
        ),
        line("arp add zz:bb:cc:dd:ee:ff", bad_mac("zz:bb:cc:dd:ee:ff")),
        line("arp add aa:bb:cc:dd:ee 10.0.0.1", bad_mac("aa:bb:cc:dd:ee")),
        line(
            "arp add zz:bb:cc:dd:ee:ff 10.0.0.1",
            bad_mac("zz:bb:cc:dd:ee:ff"),
        ),
        line(
            "arp add aa:bb-cc:dd:ee:ff 10.0.0.1",
            bad_mac("aa:bb-cc:dd:ee:ff"),
        ),
        line("arp add aabbccddeeff 10.0.0.1", bad_mac("aabbccddeeff")),
        line("arp add aabb:ccdd:eeff 10.0.0.1", bad_mac("aabb:ccdd:eeff")),
        line(
            "arp add aa:bb:cc:dd:ee:ff:00 10.0.0.1",
            bad_mac("aa:bb:cc:dd:ee:ff:00"),
        ),
        line("arp add 10.0.0.1 aa:bb:cc:dd:ee:ff", bad_mac("10.0.0.1")),
        argv(&["arp", "add", "", "10.0.0.1"], bad_mac("")),
        line(
            &format!("arp add {long_mac} 10.0.0.1"),
            bad_mac(&cut(&long_mac)),
        ),
        non_utf8("arp add", b"aa:bb:cc:dd:ee:\xff\xff", "10.0.0.1"),
        line(
            "arp add aa:bb:cc:dd:ee:ff 10.0.0.300",
            bad_addr("10.0.0.300"),
        ),
        line(
            "arp add aa:bb:cc:dd:ee:ff 10.0.0.0/24",
            bad_addr("10.0.0.0/24"),
        ),
        argv(&["arp", "add", "aa:bb:cc:dd:ee:ff", ""], bad_addr("")),
        non_utf8("arp add aa:bb:cc:dd:ee:ff", b"10.0.0.\xff", ""),
        line(
            "arp add aa:bb:cc:dd:ee:ff 10.0.0.1 dev",
            "\"dev\" needs a value",
        ),
        line(
            "arp add aa:bb:cc:dd:ee:ff 10.0.0.1 dev a/b",
            "invalid interface name \"a/b\": contains '/'",
        ),
        line(
            &format!("arp add aa:bb:cc:dd:ee:ff 10.0.0.1 dev {long_dev}"),
            format!("invalid interface name \"{long_dev}\": longer than 15 bytes"),
        ),
        line(
            "arp add aa:bb:cc:dd:ee:ff 10.0.0.1 dev eth0 dev eth1",
            "\"dev\" given twice",
        ),
        line(
            "arp add aa:bb:cc:dd:ee:ff 10.0.0.1 via 10.0.0.2",
            "unknown argument \"via\" for arp add; expected dev",
        ),
        line(
            "arp replace aa:bb:cc:dd:ee:ff 10.0.0.1 metric 1",
            "unknown argument \"metric\" for arp replace; expected dev",
        ),
        line(
            "arp add aa:bb:cc:dd:ee:ff 10.0.0.1 lladdr",
            "unknown argument \"lladdr\" for arp add; expected dev",
        ),
        // ----- arp del / show / get -----
        line("arp del", "arp del needs a MAC"),
        line("arp del 10.0.0.1", bad_mac("10.0.0.1")),
        line(
            "arp del aa:bb:cc:dd:ee:ff extra",
            "unexpected argument \"extra\" after arp del",
        ),
        line("arp show nope", bad_mac("nope")),
        line(
            "arp show aa:bb:cc:dd:ee:ff extra",
            "unexpected argument \"extra\" after arp show; expected dev",
        ),
        line("arp get", "arp get needs a MAC"),
        line("arp get aa-bb-cc-dd-ee", bad_mac("aa-bb-cc-dd-ee")),
        line(
            "arp get aa:bb:cc:dd:ee:ff extra",
            "unexpected argument \"extra\" after arp get",
        ),
        // ----- batch: FILE -----
        line("batch", "batch needs a FILE (or - for standard input)"),
        line("batch a b", "unexpected argument \"b\" for batch"),
        line(
            "batch - --force extra",
            "unexpected argument \"extra\" for batch",
        ),
        line(
            &format!("batch {missing}"),
            format!("cannot read batch file \"{missing}\": No such file or directory (os error 2)"),
        ),
        line(
            &format!("batch {dir} --force"),
            format!("cannot read batch file \"{dir}\": Is a directory (os error 21)"),
        ),
        argv(
            &["batch", ""],
            "cannot read batch file \"\": No such file or directory (os error 2)",
        ),
        non_utf8("batch", b"/tmp/\xff.batch", ""),
    ]
}

/// (requests, changes, sessions_opened) from `rtmctl -j status`; reading them adds one request
/// and one session.
fn counters(inst: &Instance) -> [u64; 3] {
    let st = inst.ctl_json(&["status"]);
    let c = &st["counters"];
    ["requests", "changes", "sessions_opened"].map(|k| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("no counter {k}: {st}"))
    })
}

fn show(args: &[OsString]) -> String {
    let s: Vec<String> = args
        .iter()
        .map(|a| {
            let t = a.to_string_lossy();
            if t.len() > 60 {
                format!("{}...({} bytes)", &t[..40], t.len())
            } else {
                format!("{t:?}")
            }
        })
        .collect();
    format!("rtmctl {}", s.join(" "))
}

#[test]
fn every_bad_argument_exits_1_with_its_message_and_sends_nothing() {
    let inst = Instance::start();
    inst.ctl_line("route add 10.9.0.0/16 dev eth0");
    let cases = catalogue();
    let mut problems = Vec::new();
    let mut before = counters(&inst);
    for case in &cases {
        let mut cmd = inst.ctl_cmd(&[]);
        cmd.args(&case.args);
        let out = run(cmd, None, DEADLINE);
        let err = stderr(&out);
        let what = show(&case.args);
        if code(&out) != 1 {
            problems.push(format!(
                "{what}: exit {} (want 1); stderr {err:?}",
                code(&out)
            ));
        }
        if !out.stdout.is_empty() {
            problems.push(format!("{what}: printed {:?}", stdout(&out)));
        }
        let ok = match &case.expect {
            Expect::Line(l) => err == format!("{l}\n"),
            Expect::Starts(p) => {
                err.starts_with(p) && err.ends_with('\n') && err.lines().count() == 1
            }
            Expect::Clap(first) => err.lines().next() == Some(first),
        };
        if !ok {
            let want = match &case.expect {
                Expect::Line(l) => l.clone(),
                Expect::Starts(p) => format!("{p}..."),
                Expect::Clap(f) => format!("{f} (first line)"),
            };
            problems.push(format!("{what}:\n   got  {err:?}\n   want {want:?}"));
        }
        let after = counters(&inst);
        // The status call itself is one request and one session; anything more was sent by
        // the bad command.
        if after != [before[0] + 1, before[1], before[2] + 1] {
            problems.push(format!(
                "{what}: the daemon saw traffic: (requests, changes, sessions) {before:?} -> {after:?}"
            ));
        }
        before = after;
    }
    // Nothing changed the table either.
    assert_eq!(
        inst.ctl_line("route show"),
        "10.9.0.0/16 dev eth0\n",
        "the table changed"
    );
    assert!(
        problems.is_empty(),
        "{} of {} cases wrong:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

struct BatchCase {
    name: &'static str,
    text: Vec<u8>,
    force: bool,
    /// Exact stderr lines.
    stderr: Vec<String>,
    /// `route show` afterwards.
    routes: &'static str,
    /// How many changes were applied.
    changes: u64,
}

fn batch_cases() -> Vec<BatchCase> {
    let l = |s: &str| format!("rtmctl: {s}");
    vec![
        BatchCase {
            name: "bad value on line 2",
            text: b"route add 10.1.0.0/16 dev eth0\nroute add 10.2.0.0/16 via 1.2.3\nroute add 10.3.0.0/16 dev eth0\n".to_vec(),
            force: false,
            stderr: vec![l("line 2: invalid IPv4 address \"1.2.3\"")],
            routes: "10.1.0.0/16 dev eth0\n",
            changes: 1,
        },
        BatchCase {
            name: "comments and blank lines count in the numbering",
            text: b"# header\n\nroute add 10.1.0.0/16 dev eth0\n   \n# more\narp add aa:bb:cc:dd:ee 10.0.0.1\n".to_vec(),
            force: false,
            stderr: vec![l(&format!("line 6: {}", bad_mac("aa:bb:cc:dd:ee")))],
            routes: "10.1.0.0/16 dev eth0\n",
            changes: 1,
        },
        BatchCase {
            name: "host bits on the first line: nothing applied",
            text: b"route add 10.1.0.1/16 dev eth0\nroute add 10.2.0.0/16 dev eth0\n".to_vec(),
            force: false,
            stderr: vec![l("line 1: invalid prefix \"10.1.0.1/16\": host bits are set (did you mean 10.1.0.0/16?)")],
            routes: "",
            changes: 0,
        },
        BatchCase {
            name: "a query is not a change",
            text: b"route add 10.1.0.0/16 dev eth0\nroute show\n".to_vec(),
            force: false,
            stderr: vec![l("line 2: \"route show\" is not a change; a batch holds add, change, replace, del and flush lines")],
            routes: "10.1.0.0/16 dev eth0\n",
            changes: 1,
        },
        BatchCase {
            name: "a nested batch is not a change",
            text: b"  batch -   \n".to_vec(),
            force: false,
            stderr: vec![l("line 1: \"batch -\" is not a change; a batch holds add, change, replace, del and flush lines")],
            routes: "",
            changes: 0,
        },
        BatchCase {
            name: "unknown object",
            text: b"route add 10.1.0.0/16 dev eth0\nrotue add 10.2.0.0/16 dev eth0\n".to_vec(),
            force: false,
            stderr: vec![],
            routes: "10.1.0.0/16 dev eth0\n",
            changes: 1,
        },
        BatchCase {
            name: "non-UTF-8 line",
            text: b"route add 10.1.0.0/16 dev eth0\nroute add 10.2.0.0/16 dev eth\xff\n".to_vec(),
            force: false,
            stderr: vec![l("line 2: not valid UTF-8")],
            routes: "10.1.0.0/16 dev eth0\n",
            changes: 1,
        },
        BatchCase {
            name: "missing value at the end of a line",
            text: b"route add 10.1.0.0/16 dev eth0 metric\n".to_vec(),
            force: false,
            stderr: vec![l("line 1: \"metric\" needs a value")],
            routes: "",
            changes: 0,
        },
        BatchCase {
            name: "a # starts a comment anywhere on a line, as in ip -batch",
            text: b"route add 10.1.0.0/16 dev eth0 # first\nroute add 10.2.0.0/16 dev eth0 metric x # bad\n".to_vec(),
            force: false,
            stderr: vec![l(&format!("line 2: {}", bad_metric("x")))],
            routes: "10.1.0.0/16 dev eth0\n",
            changes: 1,
        },
        BatchCase {
            name: "--force applies every good line and reports every bad one",
            text: b"route add 10.1.0.0/16 via 1.2.3\nroute add 10.2.0.0/16 dev eth0\nroute add 10.3.0.0/16 dev eth0 metric x\nroute add 10.4.0.0/16 dev eth0\n".to_vec(),
            force: true,
            stderr: vec![
                l("line 1: invalid IPv4 address \"1.2.3\""),
                l(&format!("line 3: {}", bad_metric("x"))),
            ],
            routes: "10.2.0.0/16 dev eth0\n10.4.0.0/16 dev eth0\n",
            changes: 2,
        },
    ]
}

#[test]
fn bad_batch_lines_report_their_number_and_keep_earlier_lines() {
    let inst = Instance::start();
    let mut problems = Vec::new();
    let cases = batch_cases();
    for case in &cases {
        inst.ctl_line("flush");
        let before = counters(&inst);
        let mut args = vec!["batch", "-"];
        if case.force {
            args.push("--force");
        }
        let out = run(inst.ctl_cmd(&args), Some(&case.text), DEADLINE);
        let err = stderr(&out);
        if code(&out) != 1 {
            problems.push(format!(
                "{}: exit {} (want 1): {err:?}",
                case.name,
                code(&out)
            ));
        }
        let lines: Vec<&str> = err.lines().collect();
        let ok = if case.stderr.is_empty() {
            // Lists the commands: matched up to the list.
            lines.len() == 1
                && lines[0].starts_with("rtmctl: line 2: unknown command \"rotue\"; expected: ")
        } else {
            lines == case.stderr.iter().map(String::as_str).collect::<Vec<_>>()
        };
        if !ok {
            problems.push(format!(
                "{}:\n   got  {lines:?}\n   want {:?}",
                case.name, case.stderr
            ));
        }
        let routes = inst.ctl_line("route show");
        if routes != case.routes {
            problems.push(format!(
                "{}: routes {routes:?}, want {:?}",
                case.name, case.routes
            ));
        }
        let after = counters(&inst);
        if after[1] - before[1] != case.changes {
            problems.push(format!(
                "{}: {} changes applied, want {}",
                case.name,
                after[1] - before[1],
                case.changes
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} batch cases wrong:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}
