//! Invariants every decoded message must satisfy: the wire carries only values that the text
//! parsers would also accept (prefixes without host bits, valid interface names), so each
//! key and name survives a trip through its text form.

use rtm_proto::wire::{ClientMsg, Op, Request};
use rtm_proto::{ArpEntry, IfName, MacAddr, Prefix, Route};

fn prefix(p: &Prefix) {
    assert!(p.len() <= 32, "{p:?}");
    assert_eq!(p.to_string().parse::<Prefix>().as_ref(), Ok(p), "{p:?}");
}

fn mac(m: &MacAddr) {
    assert_eq!(m.to_string().parse::<MacAddr>().as_ref(), Ok(m));
}

fn ifname(n: &IfName) {
    assert_eq!(n.as_str().parse::<IfName>().as_ref(), Ok(n), "{n:?}");
}

fn route(r: &Route) {
    prefix(&r.dst);
    if let Some(d) = &r.dev {
        ifname(d);
    }
}

fn arp(a: &ArpEntry) {
    mac(&a.mac);
    if let Some(d) = &a.dev {
        ifname(d);
    }
}

fn op(o: &Op) {
    match o {
        Op::RouteAdd(r) | Op::RouteChange(r) | Op::RouteReplace(r) => route(r),
        Op::RouteDel(p) => prefix(p),
        Op::ArpAdd(a) | Op::ArpChange(a) | Op::ArpReplace(a) => arp(a),
        Op::ArpDel(m) => mac(m),
        Op::Flush(_) => {}
    }
}

/// Checks every key and name inside a decoded client message.
pub fn client_msg(m: &ClientMsg) {
    let ClientMsg::Request { req, .. } = m else {
        return;
    };
    match req {
        Request::Apply(o) => op(o),
        Request::Batch { ops, .. } => ops.iter().for_each(op),
        Request::RouteShow(Some(p)) => prefix(p),
        Request::ArpShow(Some(m)) | Request::ArpGet(m) => mac(m),
        _ => {}
    }
}
