//! The JSON shapes of docs/cli.md, shared by `rtmctl -j` and `rtm-client --json`.

use std::net::Ipv4Addr;

use rtm::wire::{ClientInfo, Status};
use rtm::{ArpEntry, IfName, MacAddr, Neighbour, Origin, Prefix, Route};
use serde::Serialize;

/// `{"dst":"10.1.0.0/16","via":"192.168.1.1","dev":"eth0","metric":10}`, and
/// `"origin":"kernel"` for a route rtm did not write (absent for rtm's own). A multipath route
/// has no `via`/`dev` of its own but `"nexthops":[{"via":…,"dev":…,"weight":1},…]`; a route
/// with one next hop has no `nexthops` key at all, so its shape is the one it always had.
#[derive(Serialize)]
pub struct RouteJson<'a> {
    pub dst: Prefix,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<&'a IfName>,
    pub metric: u32,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub nexthops: Vec<HopJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'static str>,
}

/// One next hop of a multipath route: `{"via":"192.0.2.1","dev":"eth0","weight":1}`
/// (`via`/`dev` omitted when absent, `weight` always present).
#[derive(Serialize)]
pub struct HopJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<Ipv4Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<&'a IfName>,
    pub weight: u16,
}

impl<'a> From<&'a Route> for RouteJson<'a> {
    fn from(r: &'a Route) -> Self {
        RouteJson {
            dst: r.dst,
            via: r.via,
            dev: r.dev.as_ref(),
            metric: r.metric,
            nexthops: r
                .nexthops
                .iter()
                .map(|h| HopJson {
                    via: h.via,
                    dev: h.dev.as_ref(),
                    weight: h.weight,
                })
                .collect(),
            origin: (r.origin != Origin::Rtm).then(|| r.origin.name()),
        }
    }
}

/// `{"mac":"00:11:22:33:44:55","ip":"192.168.1.10","dev":"eth0"}`
#[derive(Serialize)]
pub struct ArpJson<'a> {
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<&'a IfName>,
}

impl<'a> From<&'a ArpEntry> for ArpJson<'a> {
    fn from(a: &'a ArpEntry) -> Self {
        ArpJson {
            mac: a.mac,
            ip: a.ip,
            dev: a.dev.as_ref(),
        }
    }
}

/// `{"ip":"192.168.1.10","dev":"eth0","mac":"00:11:22:33:44:55","origin":"kernel"}`: a kernel
/// neighbour (its origin always shown: the table is the kernel's).
#[derive(Serialize)]
pub struct NeighJson<'a> {
    pub ip: Ipv4Addr,
    pub dev: &'a IfName,
    pub mac: MacAddr,
    pub origin: &'static str,
}

impl<'a> From<&'a Neighbour> for NeighJson<'a> {
    fn from(n: &'a Neighbour) -> Self {
        NeighJson {
            ip: n.ip,
            dev: &n.dev,
            mac: n.mac,
            origin: n.origin.name(),
        }
    }
}

/// A table entry of any kind, serialized as its own shape.
#[derive(Serialize)]
#[serde(untagged)]
pub enum EntryJson<'a> {
    Route(RouteJson<'a>),
    Arp(ArpJson<'a>),
    Neigh(NeighJson<'a>),
}

/// `{"id":3,"pid":1234,"uid":0,"name":"fib-agent","connected_at":"RFC 3339","queued":0,"sent":120,"resyncs":0}`
#[derive(Serialize)]
pub struct ClientJson<'a> {
    pub id: u64,
    pub pid: i32,
    pub uid: u32,
    pub name: &'a str,
    pub connected_at: String,
    pub queued: u64,
    pub sent: u64,
    pub resyncs: u64,
    pub sigusr1: bool,
}

impl<'a> From<&'a ClientInfo> for ClientJson<'a> {
    fn from(c: &'a ClientInfo) -> Self {
        ClientJson {
            id: c.id,
            pid: c.pid,
            uid: c.uid,
            name: &c.name,
            connected_at: rfc3339_ms(c.connected_at_ms),
            queued: c.queued,
            sent: c.sent,
            resyncs: c.resyncs,
            sigusr1: c.sigusr1,
        }
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC, e.g. `2026-11-26T14:56:07.123Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// `rtmctl -j status`: the wire status as is.
pub fn status(s: &Status) -> serde_json::Value {
    let mut v = serde_json::to_value(s).expect("status serializes");
    // The registry's restarts travel in the counters; they belong with the others.
    let registry = v["counters"]
        .as_object_mut()
        .and_then(|c| c.remove(rtm::wire::REGISTRY_RESTARTS))
        .unwrap_or(serde_json::Value::from(0));
    v["restarts"]["registry"] = registry;
    // Likewise the kernel mirror's, where it runs (a key added only then).
    let kernel = v["counters"]
        .as_object_mut()
        .and_then(|c| c.remove(rtm::wire::KERNEL_RESTARTS));
    if let Some(k) = kernel {
        v["restarts"]["kernel"] = k;
    }
    // The neighbour table's, and its size beside the other tables' (a daemon before it has
    // none of these keys).
    let mut take = |key: &str| v["counters"].as_object_mut().and_then(|c| c.remove(key));
    let (restarts, neighs, capacity) = (
        take(rtm::wire::NEIGH_RESTARTS),
        take(rtm::wire::NEIGHS),
        take(rtm::wire::NEIGH_CAPACITY),
    );
    if let Some(n) = restarts {
        v["restarts"]["neigh"] = n;
    }
    if let (Some(n), Some(c)) = (neighs, capacity) {
        v["neighs"] = n;
        v["neigh_capacity"] = c;
    }
    v
}

/// One line of `rtm-client --json` / `rtmctl -j watch`. Absent fields are omitted.
#[derive(Serialize, Default)]
pub struct EventJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub op: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighs: Option<u64>,
}
