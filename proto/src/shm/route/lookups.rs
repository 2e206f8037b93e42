//! A lookup handle: what a thread that looks up many addresses one at a time takes once, so
//! that each lookup is only the walk and its two epoch loads — the views of the file's regions
//! are made when the handle is, not per address.
//!
//! ```no_run
//! # use rtm_proto::shm::{RouteReader, TableReader};
//! # let reader = RouteReader::open("/dev/shm/rtm.route".as_ref()).unwrap();
//! let lookups = reader.lookups();
//! for addr in ["192.0.2.1", "198.51.100.7"] {
//!     let hop = lookups.nexthop_of(addr.parse().unwrap()).unwrap();
//!     println!("{addr}: {hop:?}");
//! }
//! ```

use std::cell::Cell;
use std::net::Ipv4Addr;

use super::layout::{value_depth, value_nh, value_origin, VALUE_VALID};
use super::reader::{NextHopRef, RouteReader};
use super::view::{Lpm, NextHop, Record};
use crate::shm::record::ShmError;
use crate::shm::sync::{fence, AtomicU64, Line, Ordering::Acquire, Ordering::Relaxed};
use crate::types::{Prefix, Route};

/// Longest-prefix matches on one reader, from one thread (see the module doc).
pub struct Lookups<'a> {
    reader: &'a RouteReader,
    epoch: &'a AtomicU64,
    /// The LPM part of the file as far as the reader knew it backed when last looked at; a
    /// lookup that met a grown heap renews it.
    lpm: Cell<Lpm<'a>>,
    nh: &'a [Line],
}

impl<'a> Lookups<'a> {
    pub(super) fn new(reader: &'a RouteReader) -> Lookups<'a> {
        let (epoch, lpm, nh) = reader.lpm_parts();
        Lookups {
            reader,
            epoch,
            lpm: Cell::new(lpm),
            nh,
        }
    }

    /// The next-hop index of the route `addr` matches (see [`RouteReader::lookup_nh`]).
    #[inline]
    pub fn nexthop_of(&self, addr: Ipv4Addr) -> Result<Option<NextHopRef>, ShmError> {
        let a = u32::from(addr);
        let e1 = self.epoch.load(Relaxed);
        fence(Acquire);
        let v = self.lpm.get().value(a);
        fence(Acquire);
        let val = match v {
            Ok(v) if self.epoch.load(Relaxed) == e1 => v,
            _ => self.value_again(a)?,
        };
        Ok((val & VALUE_VALID != 0).then(|| NextHopRef {
            dst: Prefix::truncating(addr, value_depth(val)),
            nexthop: value_nh(val),
            origin: value_origin(val),
        }))
    }

    /// The route `addr` matches (see [`RouteReader::lookup`]).
    #[inline]
    pub fn route(&self, addr: Ipv4Addr) -> Result<Option<Route>, ShmError> {
        let a = u32::from(addr);
        let e1 = self.epoch.load(Relaxed);
        fence(Acquire);
        let read = || -> Option<Option<(u32, NextHop)>> {
            let val = self.lpm.get().value(a).ok()?;
            if val == 0 {
                return Some(None);
            }
            let l = self.nh.get(value_nh(val) as usize)?;
            match super::view::read_record(l).ok()? {
                Record::Hop(h) => Some(Some((val, h))),
                // A multipath route: the slow path reads its members.
                Record::Group { .. } => None,
            }
        };
        let r = read();
        fence(Acquire);
        match r {
            Some(found) if self.epoch.load(Relaxed) == e1 => Ok(found.map(|(val, hop)| {
                hop.route(
                    Prefix::truncating(addr, value_depth(val)),
                    value_origin(val),
                )
            })),
            _ => self.route_again(addr),
        }
    }

    #[cold]
    #[inline(never)]
    fn value_again(&self, a: u32) -> Result<u32, ShmError> {
        let v = self.reader.value_read(a);
        self.lpm.set(self.reader.lpm_parts().1);
        v
    }

    #[cold]
    #[inline(never)]
    fn route_again(&self, addr: Ipv4Addr) -> Result<Option<Route>, ShmError> {
        let r = self.reader.route_read(addr);
        self.lpm.set(self.reader.lpm_parts().1);
        r
    }
}
