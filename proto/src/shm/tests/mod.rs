//! Unit tests of the writers and readers against real files: the route table against a
//! `prefix-trie` model (`route_model`), the route file's own rules (`route_files`), the ARP table
//! (`arp`), the neighbour table (`neigh`), and readers racing a writer that reuses memory (`race`).

mod arp;
mod neigh;
mod race;
mod route_files;
mod route_groups;
mod route_model;

use std::net::Ipv4Addr;
use std::path::Path;

use super::*;
use crate::types::{ArpEntry, MacAddr, Prefix, Route};

/// A scratch directory on tmpfs when there is one (where table files live in production), else
/// the default temporary directory.
pub(super) fn dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

pub(super) fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

/// A multipath route for `dst` whose paths vary with `n`: 2 to 4 of a few next hops (which
/// single-path routes of metric 0 may use too), weights 1 to 3; one in seven is the kernel's.
pub(super) fn multipath_route(dst: Prefix, n: u32) -> Route {
    let hops = (0..2 + n % 3)
        .map(|k| crate::types::Hop {
            via: Some(Ipv4Addr::new(192, 0, 2, ((n / 3 + k) % 5) as u8 + 1)),
            dev: Some(format!("mp{k}").parse().unwrap()),
            weight: 1 + ((n + k) % 3) as u16,
        })
        .collect();
    let mut r = Route::multipath(dst, n % 4, hops);
    if n % 7 == 3 {
        r.origin = crate::types::Origin::Kernel;
    }
    r
}

/// A route for `dst` whose fields vary with `n` (one in seven is the kernel's).
pub(super) fn route(dst: Prefix, n: u32) -> Route {
    Route {
        dst,
        via: (n % 3 != 0).then(|| Ipv4Addr::from(n.wrapping_mul(2_654_435_761))),
        dev: (n % 5 != 0).then(|| format!("eth{}", n % 1000).parse().unwrap()),
        metric: n,
        nexthops: Vec::new(),
        origin: if n % 7 == 3 {
            crate::types::Origin::Kernel
        } else {
            crate::types::Origin::Rtm
        },
    }
}

pub(super) fn arp(mac: u64, n: u32) -> ArpEntry {
    ArpEntry {
        mac: MacAddr::from_u64(mac),
        ip: Ipv4Addr::from(n),
        dev: (n % 2 == 0).then(|| format!("veth{}", n % 100).parse().unwrap()),
    }
}

/// An empty route table file at `path` allowed `limit` routes.
pub(super) fn routes_at(path: &Path, limit: usize) -> RouteWriter {
    RouteWriter::create(path, limit, 0o644, Vec::new(), 0).unwrap()
}

pub(super) fn arps_at(path: &Path, limit: usize) -> ArpWriter {
    ArpWriter::create(path, limit, 0o644, Vec::new(), 0).unwrap()
}

pub(super) fn neighs_at(path: &Path, limit: usize) -> NeighWriter {
    NeighWriter::create(path, limit, 0o644, Vec::new(), 0).unwrap()
}

pub(super) fn no_tmp_files(d: &Path) {
    for e in std::fs::read_dir(d).unwrap() {
        let name = e.unwrap().file_name();
        assert!(!name.to_string_lossy().contains(".tmp."), "{name:?} left");
    }
}

pub(super) fn lookup(r: &RouteReader, a: Ipv4Addr) -> Option<Route> {
    r.lookup(a).expect("not busy")
}
