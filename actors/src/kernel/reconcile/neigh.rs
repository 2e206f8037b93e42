//! The kernel's IPv4 neighbours, and what the mirror has put into rtm of them.
//!
//! The kernel keys a neighbour by (address, link index); rtm by (address, link name)
//! ([`NeighKey`]). The mirror keeps both sides by the kernel's key: what the kernel has (each
//! neighbour's MAC) and what it has put into rtm (each as a [`Neighbour`], under the name its
//! link had then). Every change is a difference between the two for the keys touched, so an
//! event, a link going down, renamed or away, and a whole re-dump (mark and sweep after
//! `ENOBUFS`) all end the same way: rtm holds, with origin `Kernel`, exactly the kernel's
//! neighbours that have a MAC ([`crate::kernel::netlink::neigh`] says which), each under its
//! link's current name.
//!
//! - Only the MAC (and the link's name) is carried: the kernel's state flips (REACHABLE ↔
//!   STALE, DELAY, PROBE) are no change to rtm.
//! - An entry turning FAILED/INCOMPLETE is a delete of its key
//!   ([`NeighEvent::Del`]); one the kernel re-types so that it is no neighbour any more (an
//!   all-zero MAC, …, [`NeighSkip::ends_entry`]) too.
//! - A link set down loses its neighbours, PERMANENT ones included, and a link deleted all of
//!   its: the kernel tells each with an `RTM_DELNEIGH` (observed on Linux 6.18: the link's
//!   `RTM_NEWLINK` first, then one `RTM_DELNEIGH` per neighbour, then for a deletion the
//!   `RTM_DELLINK`), and the mirror drops them itself at the link's event as well, so that
//!   they go even if those notifications were lost. A link that only loses its carrier keeps
//!   its PERMANENT neighbours in the kernel (the others are deleted with `RTM_DELNEIGH`), so
//!   the carrier alone changes nothing here.
//! - A link renamed moves its neighbours: a delete under the old name, a put under the new.
//!   Linux 6.18 renames a link that is up (a veth) with its neighbours kept and tells only
//!   the link's `RTM_NEWLINK`, so the link's event is the only news of it.
//! - A neighbour on a link the mirror cannot name (not known yet, or a name rtm's `dev`
//!   cannot hold) is kept as the kernel's but not put into rtm, until its link is named.
//!
//! [`NeighEvent::Del`]: crate::kernel::netlink::neigh::NeighEvent::Del

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use rtm_proto::types::{IfName, MacAddr, NeighKey, Neighbour};
use rtm_proto::Origin;

use crate::kernel::netlink::neigh::{KernelNeighbour, NeighEvent, NeighSkip};
use crate::kernel::netlink::Link;

/// The kernel's key of a neighbour: (address, link index).
type Key = (Ipv4Addr, u32);

/// A change to rtm's neighbour table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighChange {
    /// Create or update (origin `Kernel`).
    Put(Neighbour),
    Del(NeighKey),
}

impl NeighChange {
    pub fn key(&self) -> NeighKey {
        match self {
            NeighChange::Put(n) => n.key(),
            NeighChange::Del(k) => *k,
        }
    }
}

/// The kernel's neighbours and what the mirror has put into rtm of them.
#[derive(Debug, Default)]
pub struct Neighbours {
    /// The kernel's neighbours that have a MAC.
    kernel: HashMap<Key, MacAddr>,
    /// What the mirror has put into rtm, by the kernel's key.
    held: HashMap<Key, Neighbour>,
    /// Neighbours rtm holds on links the mirror does not know (gone while it was not
    /// looking): deleted by the next [`Neighbours::reconcile`].
    orphans: Vec<NeighKey>,
}

/// Link `index` as rtm's `dev`, if the mirror knows it by a name rtm can hold.
fn dev_of(links: &HashMap<u32, Link>, index: u32) -> Option<IfName> {
    links.get(&index).and_then(|l| l.name.parse().ok())
}

impl Neighbours {
    /// How many neighbours the mirror has put into rtm.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// How many neighbours with a MAC the kernel has (also those rtm cannot name).
    pub fn kernel_neighbours(&self) -> usize {
        self.kernel.len()
    }

    /// What the mirror has put into rtm.
    pub fn installed(&self) -> impl Iterator<Item = &Neighbour> {
        self.held.values()
    }

    /// Takes the kernel's neighbours rtm holds now (from before a restart of the mirror, or
    /// before a re-dump) as what the mirror has put there, in place of what it remembered, so
    /// that the next [`reconcile`] puts back what rtm lost (a flush, a table restart) and
    /// deletes what the kernel no longer has. Each is matched to its link by name in `links`;
    /// one whose link the mirror does not know goes at the reconcile.
    ///
    /// [`reconcile`]: Neighbours::reconcile
    pub fn adopt(&mut self, in_rtm: Vec<Neighbour>, links: &HashMap<u32, Link>) {
        let by_name: HashMap<&str, u32> =
            links.values().map(|l| (l.name.as_str(), l.index)).collect();
        self.held.clear();
        self.orphans.clear();
        for n in in_rtm {
            match by_name.get(n.dev.as_str()) {
                Some(&index) => {
                    self.held.insert((n.ip, index), n);
                }
                None => self.orphans.push(n.key()),
            }
        }
    }

    /// Makes rtm's kernel neighbours those of a whole dump (after a start or an `ENOBUFS`):
    /// mark every key the mirror had put into rtm or the dump has, set each to what the dump
    /// says, and delete those the kernel no longer has. Unchanged neighbours are no change.
    pub fn reconcile(
        &mut self,
        dump: Vec<KernelNeighbour>,
        links: &HashMap<u32, Link>,
    ) -> Vec<NeighChange> {
        self.kernel = dump
            .into_iter()
            .map(|n| ((n.ip, n.ifindex), n.mac))
            .collect();
        let mut marked: Vec<Key> = self
            .held
            .keys()
            .chain(self.kernel.keys())
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // Deletions first, in a stable order, so that a key freed (a link renamed to the
        // name of one gone) is free before it is put again.
        marked.sort();
        let mut out: Vec<NeighChange> = std::mem::take(&mut self.orphans)
            .into_iter()
            .map(NeighChange::Del)
            .collect();
        out.extend(self.sync(marked, |i| dev_of(links, i)));
        out
    }

    /// What one neighbour event changes in rtm: mostly nothing (a state flip) or one change.
    pub fn event(&mut self, ev: NeighEvent, links: &HashMap<u32, Link>) -> Vec<NeighChange> {
        let key = match ev {
            NeighEvent::Put(n) => {
                self.kernel.insert((n.ip, n.ifindex), n.mac);
                (n.ip, n.ifindex)
            }
            NeighEvent::Del { ip, ifindex } => {
                self.kernel.remove(&(ip, ifindex));
                (ip, ifindex)
            }
            NeighEvent::Skipped(why, ip, ifindex) => {
                if !why.ends_entry() {
                    return Vec::new();
                }
                self.kernel.remove(&(ip, ifindex));
                (ip, ifindex)
            }
        };
        self.sync([key], |i| dev_of(links, i))
    }

    /// A link event (`RTM_NEWLINK`): a link set down loses its neighbours, as in the kernel;
    /// a link renamed moves its neighbours to the new name; a link newly named (or one whose
    /// name rtm can now hold) gets its neighbours put. Call it before or after updating the
    /// mirror's map of links: it names the link from `link` itself.
    pub fn link(&mut self, link: &Link) -> Vec<NeighChange> {
        if !link.up {
            self.kernel.retain(|k, _| k.1 != link.index);
        }
        let name: Option<IfName> = link.name.parse().ok();
        self.sync(self.keys_on(link.index), |i| {
            if i == link.index {
                name
            } else {
                None
            }
        })
    }

    /// rtm's table refused to put `key` (full, …): it is not held, so the next dump tries it
    /// again.
    pub fn refused(&mut self, key: &NeighKey) {
        self.held.retain(|_, n| n.key() != *key);
    }

    /// A link deleted (`RTM_DELLINK`): its neighbours go.
    pub fn link_removed(&mut self, index: u32) -> Vec<NeighChange> {
        self.kernel.retain(|k, _| k.1 != index);
        self.sync(self.keys_on(index), |_| None)
    }

    /// Every key on link `index`, the kernel's or held, sorted.
    fn keys_on(&self, index: u32) -> Vec<Key> {
        let mut keys: Vec<Key> = self
            .kernel
            .keys()
            .chain(self.held.keys())
            .filter(|k| k.1 == index)
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        keys.sort();
        keys
    }

    /// Makes what rtm holds at each of `keys` what the kernel has there, naming links with
    /// `dev`; the changes, deletions first.
    fn sync(
        &mut self,
        keys: impl IntoIterator<Item = Key>,
        dev: impl Fn(u32) -> Option<IfName>,
    ) -> Vec<NeighChange> {
        let (mut dels, mut puts) = (Vec::new(), Vec::new());
        for key in keys {
            let want = self.kernel.get(&key).and_then(|mac| {
                let n = Neighbour {
                    ip: key.0,
                    dev: dev(key.1)?,
                    mac: *mac,
                    origin: Origin::Kernel,
                };
                n.validate().is_ok().then_some(n)
            });
            match (want, self.held.get(&key)) {
                (None, None) => {}
                (Some(w), Some(h)) if w == *h => {}
                (Some(w), had) => {
                    if let Some(h) = had.filter(|h| h.key() != w.key()) {
                        dels.push(NeighChange::Del(h.key()));
                    }
                    self.held.insert(key, w.clone());
                    puts.push(NeighChange::Put(w));
                }
                (None, Some(_)) => {
                    let h = self.held.remove(&key).expect("held");
                    dels.push(NeighChange::Del(h.key()));
                }
            }
        }
        dels.extend(puts);
        dels
    }
}

/// For the log: how many of a dump's entries were skipped for each reason, and the first.
pub fn skipped_summary(
    skipped: &[(NeighSkip, Ipv4Addr, u32)],
) -> Vec<(NeighSkip, usize, Ipv4Addr, u32)> {
    let mut out: Vec<(NeighSkip, usize, Ipv4Addr, u32)> = Vec::new();
    for &(why, ip, i) in skipped {
        match out.iter_mut().find(|e| e.0 == why) {
            Some(e) => e.1 += 1,
            None => out.push((why, 1, ip, i)),
        }
    }
    out.sort_by_key(|e| e.0);
    out
}

#[cfg(test)]
mod tests;
