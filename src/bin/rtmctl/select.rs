//! The selectors of `show` and `flush`, as `ip route show` has them: `PREFIX` or `exact PREFIX`
//! (that route), `root PREFIX` (routes inside it), `match PREFIX` (routes that cover it),
//! `dev IFNAME`, `via GW`; for ARP, `MAC` and `dev IFNAME`. All given must hold.

use std::net::Ipv4Addr;

use rtm::types::{parse_addr, shown};
use rtm::{ArpEntry, IfName, MacAddr, Prefix, Route};

use crate::grammar::{parse_prefix, set_once, usage, UsageError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteSelector {
    pub exact: Option<Prefix>,
    pub root: Option<Prefix>,
    pub matching: Option<Prefix>,
    pub dev: Option<IfName>,
    pub via: Option<Ipv4Addr>,
}

/// Whether `outer` contains all of `inner`.
fn covers(outer: Prefix, inner: Prefix) -> bool {
    outer.len() <= inner.len() && outer.contains(inner.addr())
}

impl RouteSelector {
    pub fn parse(what: &str, mut args: &[&str]) -> Result<RouteSelector, UsageError> {
        let mut s = RouteSelector::default();
        while let Some((&w, tail)) = args.split_first() {
            args = match w {
                "exact" | "root" | "match" | "dev" | "via" => {
                    let v = *tail
                        .first()
                        .ok_or_else(|| usage(format!("\"{w}\" needs a value")))?;
                    match w {
                        "exact" => set_once(&mut s.exact, w, parse_prefix(v)?)?,
                        "root" => set_once(&mut s.root, w, parse_prefix(v)?)?,
                        "match" => set_once(&mut s.matching, w, parse_prefix(v)?)?,
                        "dev" => set_once(&mut s.dev, w, v.parse::<IfName>()?)?,
                        _ => set_once(&mut s.via, w, parse_addr(v)?)?,
                    }
                    &tail[1..]
                }
                _ if s.exact.is_none() => {
                    s.exact = Some(parse_prefix(w)?);
                    tail
                }
                _ => {
                    return Err(usage(format!(
                        "unexpected argument \"{}\" after {what}; expected exact, root, match, dev or via",
                        shown(w)
                    )))
                }
            };
        }
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        *self == RouteSelector::default()
    }

    /// Only an exact prefix: the daemon looks that one route up.
    pub fn only_exact(&self) -> Option<Prefix> {
        let rest = RouteSelector {
            exact: None,
            ..self.clone()
        };
        self.exact.filter(|_| rest.is_empty())
    }

    pub fn picks(&self, r: &Route) -> bool {
        self.exact.is_none_or(|p| p == r.dst)
            && self.root.is_none_or(|p| covers(p, r.dst))
            && self.matching.is_none_or(|p| covers(r.dst, p))
            && self.picks_path(r)
    }

    /// `dev` and `via` hold for the route's next hop or, as `ip route show` has it for a
    /// multipath route, for one of its next hops.
    fn picks_path(&self, r: &Route) -> bool {
        let fits = |via: Option<Ipv4Addr>, dev: Option<&IfName>| {
            self.dev.as_ref().is_none_or(|d| dev == Some(d))
                && self.via.is_none_or(|v| via == Some(v))
        };
        if r.is_multipath() {
            r.nexthops.iter().any(|h| fits(h.via, h.dev.as_ref()))
        } else {
            fits(r.via, r.dev.as_ref())
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArpSelector {
    pub mac: Option<MacAddr>,
    pub dev: Option<IfName>,
}

impl ArpSelector {
    pub fn parse(what: &str, mut args: &[&str]) -> Result<ArpSelector, UsageError> {
        let mut s = ArpSelector::default();
        while let Some((&w, tail)) = args.split_first() {
            args = if w == "dev" {
                let v = tail
                    .first()
                    .ok_or_else(|| usage(format!("\"{w}\" needs a value")))?;
                set_once(&mut s.dev, w, v.parse::<IfName>()?)?;
                &tail[1..]
            } else if s.mac.is_none() && s.dev.is_none() {
                s.mac = Some(w.parse::<MacAddr>()?);
                tail
            } else {
                return Err(usage(format!(
                    "unexpected argument \"{}\" after {what}; expected dev",
                    shown(w)
                )));
            };
        }
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        *self == ArpSelector::default()
    }

    /// Only a MAC: the daemon looks that one entry up.
    pub fn only_mac(&self) -> Option<MacAddr> {
        self.mac.filter(|_| self.dev.is_none())
    }

    pub fn picks(&self, a: &ArpEntry) -> bool {
        self.mac.is_none_or(|m| m == a.mac)
            && self.dev.as_ref().is_none_or(|d| a.dev.as_ref() == Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(s: &str) -> Route {
        let w: Vec<&str> = s.split_whitespace().collect();
        let mut r = Route {
            dst: w[0].parse().unwrap(),
            via: None,
            dev: None,
            metric: 0,
            nexthops: Vec::new(),
            origin: Default::default(),
        };
        if let Some(i) = w.iter().position(|x| *x == "via") {
            r.via = Some(w[i + 1].parse().unwrap());
        }
        if let Some(i) = w.iter().position(|x| *x == "dev") {
            r.dev = Some(w[i + 1].parse().unwrap());
        }
        r
    }

    #[test]
    fn route_selectors_pick_as_ip_route_does() {
        let sel = |s: &str| {
            RouteSelector::parse("route show", &s.split_whitespace().collect::<Vec<_>>()).unwrap()
        };
        let r = route("10.1.0.0/16 via 192.168.1.1 dev eth0");
        assert!(sel("root 10.0.0.0/8").picks(&r));
        assert!(sel("root 10.1.0.0/16").picks(&r));
        assert!(!sel("root 10.1.0.0/24").picks(&r));
        assert!(sel("match 10.1.2.0/24").picks(&r));
        assert!(!sel("match 10.0.0.0/8").picks(&r));
        assert!(sel("dev eth0 via 192.168.1.1").picks(&r));
        assert!(!sel("dev eth1").picks(&r));
        assert!(sel("10.1.0.0/16").picks(&r) && sel("exact 10.1.0.0/16").picks(&r));
        assert!(!sel("10.1.0.0/17").picks(&r));
        let m = Route::multipath(
            "10.2.0.0/16".parse().unwrap(),
            0,
            vec![
                rtm::types::Hop {
                    via: Some("192.0.2.1".parse().unwrap()),
                    dev: Some("eth0".parse().unwrap()),
                    weight: 1,
                },
                rtm::types::Hop {
                    via: Some("192.0.2.2".parse().unwrap()),
                    dev: Some("eth1".parse().unwrap()),
                    weight: 2,
                },
            ],
        );
        assert!(sel("dev eth1").picks(&m) && sel("via 192.0.2.1").picks(&m));
        assert!(sel("dev eth1 via 192.0.2.2").picks(&m));
        assert!(!sel("dev eth1 via 192.0.2.1").picks(&m) && !sel("dev eth2").picks(&m));
        assert_eq!(sel("default").only_exact(), Some(Prefix::DEFAULT));
        assert!(sel("default dev eth0").only_exact().is_none());
        for bad in [
            "bogus",
            "dev",
            "root 10.0.0.1/8",
            "via 1.2.3",
            "10.0.0.0/8 10.1.0.0/16",
        ] {
            assert!(
                RouteSelector::parse("route show", &bad.split_whitespace().collect::<Vec<_>>())
                    .is_err(),
                "{bad}"
            );
        }
    }
}
