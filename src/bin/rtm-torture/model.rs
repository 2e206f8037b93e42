//! What the torture run knows about the route table: every change it attempted, which of them
//! rtmd acknowledged, and which are still undecided (sent, but the answer was lost to a fault).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use rtm::{Hop, IfName, Prefix, Route};

/// Keys per writer: writer `w` owns `10.w.0.0/24` .. `10.w.(KEYS-1).0/24`.
pub const KEYS: usize = 256;

/// The route a change with `metric` writes at key `k` of writer `w`: next hop and device follow
/// from the metric, so a torn read (fields of two changes mixed) does not pass [`Model::seen`].
/// One change in four writes a multipath route of 2 to 4 paths, each path and weight following
/// from the metric too.
pub fn route(w: usize, k: usize, metric: u32) -> Route {
    if metric % 4 == 1 {
        let hops = (0..2 + metric % 3)
            .map(|j| Hop {
                via: Some(via_of(metric + j)),
                dev: Some(dev_of(j)),
                weight: 1 + ((metric + j) % 3) as u16,
            })
            .collect();
        return Route::multipath(prefix(w, k), metric, hops);
    }
    Route {
        dst: prefix(w, k),
        via: Some(via_of(metric)),
        dev: Some(dev_of(metric)),
        metric,
        nexthops: Vec::new(),
        origin: Default::default(),
    }
}

pub fn prefix(w: usize, k: usize) -> Prefix {
    Prefix::new(Ipv4Addr::new(10, w as u8, k as u8, 0), 24).expect("a /24")
}

fn via_of(metric: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, (metric % 200) as u8 + 1)
}

fn dev_of(metric: u32) -> IfName {
    format!("eth{}", metric % 4)
        .parse()
        .expect("an interface name")
}

/// The text of a change for `rtmctl batch`.
pub fn line(w: usize, k: usize, change: Option<u32>) -> String {
    match change {
        // A route of origin rtm prints in rtmctl's grammar, multipath or not.
        Some(m) => format!("route replace {}", route(w, k, m)),
        None => format!("route del {}", prefix(w, k)),
    }
}

#[derive(Debug, Default, Clone)]
pub struct Key {
    /// The value after the last acknowledged change (`None`: absent).
    pub acked: Option<u32>,
    /// Changes sent after it whose outcome is unknown, in order.
    pub pending: Vec<Option<u32>>,
}

#[derive(Default)]
pub struct Model {
    /// `keys[w][k]`.
    pub keys: Vec<Vec<Key>>,
    /// Every metric ever sent, with the key it was sent for.
    pub attempted: HashMap<u32, (usize, usize)>,
    pub acked_changes: u64,
    pub unknown_changes: u64,
}

impl Model {
    pub fn new(writers: usize) -> Model {
        Model {
            keys: vec![vec![Key::default(); KEYS]; writers],
            ..Model::default()
        }
    }

    /// Whether `r`, read from shared memory at key `k` of writer `w`, is a route some change
    /// attempted (whole: no field of another change).
    pub fn seen(&self, w: usize, k: usize, r: &Route) -> bool {
        self.attempted.get(&r.metric) == Some(&(w, k)) && *r == route(w, k, r.metric)
    }

    /// Compares the table read after recovery with the model: each key must hold its last
    /// acknowledged value or one of the undecided changes after it. Then takes what was read as
    /// the new acknowledged state. Returns one message per key that broke the rule.
    pub fn reconcile(&mut self, actual: &HashMap<Prefix, Route>) -> Vec<String> {
        let mut bad = Vec::new();
        for (w, keys) in self.keys.iter_mut().enumerate() {
            for (k, key) in keys.iter_mut().enumerate() {
                let p = prefix(w, k);
                let got = actual.get(&p);
                let got_metric = got.map(|r| r.metric);
                let whole = got.is_none_or(|r| *r == route(w, k, r.metric));
                let allowed = key.acked == got_metric || key.pending.contains(&got_metric);
                if !whole || !allowed {
                    bad.push(format!(
                        "acknowledged change lost at {p}: table has {}, last acknowledged {}, undecided {:?}",
                        got.map_or("nothing".to_string(), |r| r.to_string()),
                        key.acked.map_or("absent".to_string(), |m| format!("metric {m}")),
                        key.pending
                    ));
                }
                key.acked = got_metric;
                key.pending.clear();
            }
        }
        for p in actual.keys() {
            let o = p.addr().octets();
            if !(p.len() == 24 && o[0] == 10 && (o[1] as usize) < self.keys.len()) {
                bad.push(format!("the table holds {p}, which no change wrote"));
            }
        }
        bad
    }
}
