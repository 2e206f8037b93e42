//! How the binaries print: iproute2-style text or the JSON shapes of docs/cli.md.

use std::fmt::Write as _;

use rtm::wire::{ChangeOp, ClientInfo, Key, Status, Table};
use rtm::{ArpEntry, Entry, Neighbour, Route, Update};

use super::json::{self, ArpJson, EntryJson, EventJson, RouteJson};

/// An entry's JSON shape.
pub fn entry_json(e: &Entry) -> EntryJson<'_> {
    match e {
        Entry::Route(r) => EntryJson::Route(r.into()),
        Entry::Arp(a) => EntryJson::Arp(a.into()),
        Entry::Neigh(n) => EntryJson::Neigh(n.into()),
    }
}

/// A route as iproute2 prints it: `0.0.0.0/0` is `default`.
pub fn route_text(r: &Route) -> String {
    let s = r.to_string();
    if r.dst.len() == 0 {
        return s.replacen("0.0.0.0/0", "default", 1);
    }
    s
}

/// An entry as iproute2 prints it.
pub fn entry_text(e: &Entry) -> String {
    match e {
        Entry::Route(r) => route_text(r),
        Entry::Arp(a) => a.to_string(),
        Entry::Neigh(n) => n.to_string(),
    }
}

/// One line of `rtm-client` / `rtmctl watch` output.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Sync {
        table: Table,
        key: Key,
        entry: Entry,
    },
    SyncDone {
        table: Table,
        count: u64,
        seq: u64,
    },
    Change {
        seq: u64,
        op: ChangeOp,
        table: Table,
        key: Key,
        entry: Option<Entry>,
    },
    Flush {
        table: Table,
        seq: u64,
    },
    Signal(&'static str),
    Resync {
        table: Table,
    },
    Mirror {
        table: Table,
        key: Key,
        entry: Entry,
    },
    MirrorDone {
        routes: u64,
        arps: u64,
        /// Only when the kernel's neighbours are followed.
        neighs: Option<u64>,
    },
    Bye,
}

impl From<Update> for Line {
    fn from(u: Update) -> Line {
        match u {
            Update::Sync { table, key, entry } => Line::Sync { table, key, entry },
            Update::SyncDone { table, count, seq } => Line::SyncDone { table, count, seq },
            Update::Change {
                seq,
                op,
                table,
                key,
                entry,
            } => Line::Change {
                seq,
                op,
                table,
                key,
                entry,
            },
            Update::Flush { table, seq } => Line::Flush { table, seq },
            Update::Resync { table } => Line::Resync { table },
            Update::Bye => Line::Bye,
        }
    }
}

impl Line {
    pub fn json(&self) -> String {
        let mut j = EventJson::default();
        match self {
            Line::Sync { table, key, entry } | Line::Mirror { table, key, entry } => {
                j.op = if matches!(self, Line::Sync { .. }) {
                    "sync"
                } else {
                    "mirror"
                };
                j.table = Some(table.name());
                j.key = Some(key.to_string());
                j.entry = Some(entry_json(entry));
            }
            Line::SyncDone { table, count, seq } => {
                j.op = "sync-done";
                j.table = Some(table.name());
                j.count = Some(*count);
                j.seq = Some(*seq);
            }
            Line::Change {
                seq,
                op,
                table,
                key,
                entry,
            } => {
                j.seq = Some(*seq);
                j.op = op.name();
                j.table = Some(table.name());
                j.key = Some(key.to_string());
                j.entry = entry.as_ref().map(entry_json);
            }
            Line::Flush { table, seq } => {
                j.op = "flush";
                j.table = Some(table.name());
                j.seq = Some(*seq);
            }
            Line::Signal(s) => {
                j.op = "signal";
                j.signal = Some(s);
            }
            Line::Resync { table } => {
                j.op = "resync";
                j.table = Some(table.name());
            }
            Line::MirrorDone {
                routes,
                arps,
                neighs,
            } => {
                j.op = "mirror-done";
                j.routes = Some(*routes);
                j.arps = Some(*arps);
                j.neighs = *neighs;
            }
            Line::Bye => j.op = "bye",
        }
        serde_json::to_string(&j).expect("event line serializes")
    }

    pub fn text(&self) -> String {
        match self {
            Line::Sync { table, entry, .. } => format!("sync {table} {}", entry_text(entry)),
            Line::Mirror { table, entry, .. } => format!("mirror {table} {}", entry_text(entry)),
            Line::SyncDone { table, count, seq } => {
                format!("sync-done {table} count {count} seq {seq}")
            }
            Line::Change {
                seq,
                op,
                table,
                key,
                entry,
            } => match entry {
                Some(e) => format!("{} {table} {} seq {seq}", op.name(), entry_text(e)),
                None => match key {
                    Key::Route(p) if p.len() == 0 => {
                        format!("{} {table} default seq {seq}", op.name())
                    }
                    _ => format!("{} {table} {key} seq {seq}", op.name()),
                },
            },
            Line::Flush { table, seq } => format!("flush {table} seq {seq}"),
            Line::Signal(s) => format!("signal {s}"),
            Line::Resync { table } => format!("resync {table}"),
            Line::MirrorDone {
                routes,
                arps,
                neighs,
            } => match neighs {
                Some(n) => format!("mirror-done routes {routes} arps {arps} neighs {n}"),
                None => format!("mirror-done routes {routes} arps {arps}"),
            },
            Line::Bye => "bye".to_string(),
        }
    }

    pub fn render(&self, as_json: bool) -> String {
        if as_json {
            self.json()
        } else {
            self.text()
        }
    }
}

/// `show` output: one iproute2 line per entry, or a JSON array.
pub fn routes(routes: &[Route], as_json: bool) -> String {
    if as_json {
        let v: Vec<RouteJson> = routes.iter().map(Into::into).collect();
        return serde_json::to_string(&v).expect("routes serialize") + "\n";
    }
    lines(routes.iter().map(route_text))
}

pub fn neighbours(entries: &[Neighbour], as_json: bool) -> String {
    if as_json {
        let v: Vec<json::NeighJson> = entries.iter().map(Into::into).collect();
        return serde_json::to_string(&v).expect("neighbours serialize") + "\n";
    }
    lines(entries.iter())
}

pub fn arps(entries: &[ArpEntry], as_json: bool) -> String {
    if as_json {
        let v: Vec<ArpJson> = entries.iter().map(Into::into).collect();
        return serde_json::to_string(&v).expect("arps serialize") + "\n";
    }
    lines(entries.iter())
}

fn lines<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let mut s = String::new();
    for it in items {
        let _ = writeln!(s, "{it}");
    }
    s
}

/// `get` output: one line or one object.
pub fn entry(e: &Entry, as_json: bool) -> String {
    if as_json {
        serde_json::to_string(&entry_json(e)).expect("entry serializes") + "\n"
    } else {
        entry_text(e) + "\n"
    }
}

pub fn clients(list: &[ClientInfo], as_json: bool) -> String {
    if as_json {
        let v: Vec<json::ClientJson> = list.iter().map(Into::into).collect();
        return serde_json::to_string(&v).expect("clients serialize") + "\n";
    }
    let mut s = String::new();
    for c in list {
        let _ = writeln!(
            s,
            "{} pid {} uid {} name {:?} connected {} queued {} sent {} resyncs {}{}",
            c.id,
            c.pid,
            c.uid,
            c.name,
            json::rfc3339_ms(c.connected_at_ms),
            c.queued,
            c.sent,
            c.resyncs,
            if c.sigusr1 { " sigusr1" } else { "" }
        );
    }
    s
}

/// `rtmctl dashboard-url`: the link alone on stdout (so `xdg-open "$(rtmctl dashboard-url)"`
/// works); with `--json` also whose it is and how long it lasts.
pub fn dashboard_url(d: &rtm::wire::DashboardUrl, as_json: bool) -> String {
    if as_json {
        return serde_json::json!({
            "url": d.url,
            "uid": d.uid,
            "may_change": d.may_change,
            "expires_s": d.expires_s,
        })
        .to_string()
            + "\n";
    }
    format!("{}\n", d.url)
}

pub fn status(st: &Status, as_json: bool) -> String {
    if as_json {
        return json::status(st).to_string() + "\n";
    }
    let mut s = String::new();
    let _ = writeln!(s, "version {}", st.version);
    let _ = writeln!(s, "uptime {}s", st.uptime_s);
    let _ = writeln!(s, "routes {} of {}", st.routes, st.route_capacity);
    let _ = writeln!(s, "arps {} of {}", st.arps, st.arp_capacity);
    let counter = |k: &str| st.counters.get(k).copied();
    if let (Some(n), Some(c)) = (
        counter(rtm::wire::NEIGHS),
        counter(rtm::wire::NEIGH_CAPACITY),
    ) {
        let _ = writeln!(s, "kernel neighbours {n} of {c}");
    }
    let _ = writeln!(s, "clients {}", st.clients);
    let r = &st.restarts;
    let registry = st
        .counters
        .get(rtm::wire::REGISTRY_RESTARTS)
        .copied()
        .unwrap_or(0);
    let kernel = st
        .counters
        .get(rtm::wire::KERNEL_RESTARTS)
        .map(|n| format!(" kernel {n}"))
        .unwrap_or_default();
    let neigh = counter(rtm::wire::NEIGH_RESTARTS)
        .map(|n| format!(" neigh {n}"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "restarts route {} arp {} broker {} listener {} registry {registry}{kernel}{neigh}",
        r.route, r.arp, r.broker, r.listener
    );
    if let Some(f) = &st.last_failure {
        let _ = writeln!(s, "last failure {f}");
    }
    for (k, v) in &st.counters {
        let shown = [
            rtm::wire::REGISTRY_RESTARTS,
            rtm::wire::KERNEL_RESTARTS,
            rtm::wire::NEIGH_RESTARTS,
            rtm::wire::NEIGHS,
            rtm::wire::NEIGH_CAPACITY,
        ];
        if !shown.contains(&k.as_str()) {
            let _ = writeln!(s, "{k} {v}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtm::types::Hop;
    use rtm::wire::ChangeOp;

    /// A multipath route prints in `ip route`'s one-line form and with `"nexthops"` in JSON,
    /// in `show`, `get` and event lines alike; a route with one next hop keeps its shape.
    #[test]
    fn multipath_routes_in_text_and_json() {
        let hop = |via: &str, dev: Option<&str>, weight: u16| Hop {
            via: Some(via.parse().unwrap()),
            dev: dev.map(|d| d.parse().unwrap()),
            weight,
        };
        let m = Route::multipath(
            rtm::Prefix::DEFAULT,
            5,
            vec![hop("192.0.2.1", Some("eth0"), 1), hop("192.0.2.2", None, 3)],
        );
        let single = Route::new(
            "10.0.0.0/8".parse().unwrap(),
            Some("192.0.2.1".parse().unwrap()),
            None,
            0,
        );
        let text = "default metric 5 nexthop via 192.0.2.1 dev eth0 weight 1 \
                    nexthop via 192.0.2.2 weight 3";
        let json = r#"{"dst":"0.0.0.0/0","metric":5,"nexthops":[{"via":"192.0.2.1","dev":"eth0","weight":1},{"via":"192.0.2.2","weight":3}]}"#;
        assert_eq!(
            routes(&[single.clone(), m.clone()], false),
            format!("10.0.0.0/8 via 192.0.2.1\n{text}\n")
        );
        assert_eq!(
            routes(&[single, m.clone()], true),
            format!(r#"[{{"dst":"10.0.0.0/8","via":"192.0.2.1","metric":0}},{json}]"#) + "\n"
        );
        assert_eq!(entry(&Entry::Route(m.clone()), true), format!("{json}\n"));
        let line = Line::Change {
            seq: 4,
            op: ChangeOp::Update,
            table: Table::Route,
            key: Key::Route(m.dst),
            entry: Some(Entry::Route(m)),
        };
        assert_eq!(line.text(), format!("update route {text} seq 4"));
        assert_eq!(
            line.json(),
            format!(
                r#"{{"seq":4,"op":"update","table":"route","key":"0.0.0.0/0","entry":{json}}}"#
            )
        );
    }
}
