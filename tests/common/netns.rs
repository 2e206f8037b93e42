//! A network namespace of a test's own with a veth pair in it, for the kernel mirror and
//! export tests (root and iproute2 needed; [`unsupported`] says why not, and `needs_netns!`
//! makes a test pass without checking anything where it cannot run).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::{code, run, stderr, stdout, Instance, DEADLINE};

/// A network namespace with the veth pair `va`/`vb`, both up, `192.0.2.1/24` on `va`; deleted
/// on drop.
pub struct Netns {
    name: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "rtm-kernel-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let ns = Netns { name };
        ns.ip_ok(&["netns", "add", &ns.name], false);
        ns.ip_ok(
            &["link", "add", "va", "type", "veth", "peer", "name", "vb"],
            true,
        );
        ns.ip_ok(&["link", "set", "va", "up"], true);
        ns.ip_ok(&["link", "set", "vb", "up"], true);
        ns.ip_ok(&["addr", "add", "192.0.2.1/24", "dev", "va"], true);
        ns.ip_ok(&["addr", "add", "198.51.100.1/24", "dev", "vb"], true);
        ns
    }

    /// The namespace's name (`ip netns exec NAME …`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ip_cmd(&self, args: &[&str], inside: bool) -> Command {
        let mut c = Command::new("ip");
        if inside {
            c.args(["-n", &self.name]);
        }
        c.args(args);
        c
    }

    /// `ip [-n NS] ARGS`, which must succeed.
    pub fn ip_ok(&self, args: &[&str], inside: bool) -> String {
        let o = run(self.ip_cmd(args, inside), None, DEADLINE);
        assert_eq!(code(&o), 0, "ip {args:?}: {}", stderr(&o));
        stdout(&o)
    }

    /// `ip route ARGS` in the namespace.
    pub fn route(&self, args: &str) {
        let mut a = vec!["route"];
        a.extend(args.split_whitespace());
        self.ip_ok(&a, true);
    }

    /// The main table's unicast routes as rtm mirrors them: per prefix the lowest metric,
    /// routes with a tos left out.
    pub fn kernel_table(&self) -> BTreeMap<String, Value> {
        let v: Value =
            serde_json::from_str(&self.ip_ok(&["-j", "route", "show", "table", "main"], true))
                .expect("ip -j");
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        for r in v.as_array().expect("array") {
            if r.get("type").is_some_and(|t| t != "unicast") || r.get("tos").is_some() {
                continue;
            }
            let dst = match r["dst"].as_str().unwrap() {
                "default" => "0.0.0.0/0".to_string(),
                d if d.contains('/') => d.to_string(),
                d => format!("{d}/32"),
            };
            let metric = r.get("metric").and_then(Value::as_u64).unwrap_or(0);
            let mut e = serde_json::json!({ "dst": dst, "metric": metric });
            if let Some(g) = r.get("gateway") {
                e["via"] = g.clone();
            }
            if let Some(d) = r.get("dev") {
                e["dev"] = d.clone();
            }
            let better = out
                .get(&dst)
                .is_none_or(|o| o["metric"].as_u64().unwrap() > metric);
            if better {
                out.insert(dst, e);
            }
        }
        out
    }

    /// rtmd on `inst`'s paths, inside this namespace.
    pub fn start_rtmd(&self, inst: &mut Instance, extra: &[&str]) {
        let d = inst.daemon_cmd(extra);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(d.get_program());
        cmd.args(d.get_args());
        for (k, v) in d.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        inst.spawn_daemon_cmd(cmd);
    }
}

impl Netns {
    /// Whether this kernel has next-hop objects (`ip nexthop`); tests of `nhid` routes say so
    /// and skip that part where it has not.
    pub fn has_nexthop_objects(&self) -> bool {
        code(&run(
            self.ip_cmd(&["nexthop", "show"], true),
            None,
            DEADLINE,
        )) == 0
    }

    /// rtmd with `--kernel import` (and `extra`) in this namespace, once its start dump is
    /// mirrored: at least the connected routes of the two addresses.
    pub fn start_import(&self, extra: &[&str]) -> Instance {
        let mut inst = Instance::unstarted();
        let mut args = vec!["--kernel", "import"];
        args.extend_from_slice(extra);
        self.start_rtmd(&mut inst, &args);
        inst.eventually("the connected routes are mirrored", || {
            let t = rtm_table(&inst);
            t.contains_key("192.0.2.0/24") && t.contains_key("198.51.100.0/24")
        });
        inst
    }
}

/// rtm's route table as `rtmctl -j route show` prints it, without the origin field.
pub fn rtm_table(inst: &Instance) -> BTreeMap<String, Value> {
    comparable(inst.routes())
}

/// Routes as rtm shows them, in the shape [`Netns::kernel_table`] gives.
pub fn comparable(routes: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    routes
        .into_iter()
        .map(|(k, mut v)| {
            if let Some(o) = v.as_object_mut() {
                o.remove("origin");
                o.entry("metric").or_insert(0.into());
            }
            (k, v)
        })
        .collect()
}

/// Waits (bounded) until rtm's table equals the kernel's; on failure says how they differ.
pub fn converges(ns: &Netns, inst: &Instance) {
    converge_on("routes", inst, || rtm_table(inst), || ns.kernel_table());
}

/// Waits (bounded) until `rtm()` equals `kernel()`, two views of one table keyed alike; on
/// failure says how many `what` each has and where they differ.
pub fn converge_on<V: PartialEq + std::fmt::Debug>(
    what: &str,
    inst: &Instance,
    rtm: impl Fn() -> BTreeMap<String, V>,
    kernel: impl Fn() -> BTreeMap<String, V>,
) {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let (rtm, kernel) = (rtm(), kernel());
        if rtm == kernel {
            return;
        }
        if std::time::Instant::now() > end {
            let differ = |a: &BTreeMap<String, V>, b: &BTreeMap<String, V>| {
                a.iter()
                    .filter(|(k, v)| b.get(*k) != Some(*v))
                    .take(5)
                    .map(|(k, v)| format!("{k}: {v:?}"))
                    .collect::<Vec<_>>()
            };
            panic!(
                "rtm has {} {what}, the kernel {}; rtm differs at {:?}, the kernel at {:?}\nlog: {}",
                rtm.len(),
                kernel.len(),
                differ(&rtm, &kernel),
                differ(&kernel, &rtm),
                inst.log_text()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(
            self.ip_cmd(&["netns", "del", &self.name], false),
            None,
            DEADLINE,
        );
    }
}

/// Why these tests cannot run here, if they cannot. Probed once per test process: tests run in
/// parallel, and two probes of one name would collide (the second finding the first's
/// namespace) and skip a test that can run.
pub fn unsupported() -> Option<String> {
    static PROBED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PROBED.get_or_init(probe).clone()
}

fn probe() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root to make a network namespace".into());
    }
    let mut v = Command::new("ip");
    v.arg("-V");
    let found = super::child::run(v, None, DEADLINE).is_ok_and(|o| o.status.success());
    if !found {
        return Some("needs `ip` (iproute2)".into());
    }
    let probe = format!("rtm-kernel-probe-{}", std::process::id());
    let made = run(
        {
            let mut c = Command::new("ip");
            c.args(["netns", "add", &probe]);
            c
        },
        None,
        DEADLINE,
    );
    if code(&made) != 0 {
        return Some(format!(
            "cannot make a network namespace: {}",
            stderr(&made)
        ));
    }
    let mut del = Command::new("ip");
    del.args(["netns", "del", &probe]);
    run(del, None, DEADLINE);
    None
}

#[allow(unused_macros)]
macro_rules! needs_netns {
    () => {
        if let Some(why) = $crate::common::netns::unsupported() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use needs_netns;
