//! A client's mirror of the tables, kept from shared memory and driven by notifications.
//!
//! Notifications carry only op + key + seq; the entry is read from the daemon's shared memory
//! when the notification is handled, so the mirror always holds what shared memory holds (if
//! shared memory is already newer than the event, the newer entry is taken).
//!
//! [`Mirror::on_event`] turns each event into the [`Update`]s it means for someone who shows
//! the tables (a sync of the whole table, a change with the entry read from shared memory, a
//! flush, ...); what to do with them — print, forward, count — is the caller's business.

use std::collections::BTreeMap;

use rtm_proto::shm::{Owners, Record, ShmError, ShmReader, TableReader};
use rtm_proto::wire::{ChangeOp, Event, Key, Table, Tables, Welcome};
use rtm_proto::{ArpEntry, Neighbour, Route};

/// A table entry of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Route(Route),
    Arp(ArpEntry),
    Neigh(Neighbour),
}

/// What one event means for the mirror's user, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// An entry present when the table was (re)read: at registration or after a resync.
    Sync {
        table: Table,
        key: Key,
        entry: Entry,
    },
    /// The (re)read of `table` is complete: it held `count` entries and every change up to
    /// `seq`; every later update has a higher sequence number.
    SyncDone { table: Table, count: u64, seq: u64 },
    /// A live change. `entry` is what shared memory holds for the key now (`None` for a
    /// delete, or when the key is already gone again: its delete follows).
    Change {
        seq: u64,
        op: ChangeOp,
        table: Table,
        key: Key,
        entry: Option<Entry>,
    },
    /// The table was emptied.
    Flush { table: Table, seq: u64 },
    /// The client fell behind and the daemon dropped its queued notifications; a `Sync` of the
    /// table follows (unless the mirror keeps no copy).
    Resync { table: Table },
    /// The daemon is stopping cleanly.
    Bye,
}

/// A record kind the mirror can hold.
pub trait Mirrored: Record {
    const TABLE: Table;
    fn entry(&self) -> Entry;
    fn key_of(key: Key) -> Option<Self::Key>;
    fn wire_key(key: Self::Key) -> Key;
}

impl Mirrored for Route {
    const TABLE: Table = Table::Route;
    fn entry(&self) -> Entry {
        Entry::Route(self.clone())
    }
    fn key_of(key: Key) -> Option<Self::Key> {
        match key {
            Key::Route(p) => Some(p),
            _ => None,
        }
    }
    fn wire_key(key: Self::Key) -> Key {
        Key::Route(key)
    }
}

impl Mirrored for ArpEntry {
    const TABLE: Table = Table::Arp;
    fn entry(&self) -> Entry {
        Entry::Arp(self.clone())
    }
    fn key_of(key: Key) -> Option<Self::Key> {
        match key {
            Key::Arp(m) => Some(m),
            _ => None,
        }
    }
    fn wire_key(key: Self::Key) -> Key {
        Key::Arp(key)
    }
}

impl Mirrored for Neighbour {
    const TABLE: Table = Table::Neigh;
    fn entry(&self) -> Entry {
        Entry::Neigh(self.clone())
    }
    fn key_of(key: Key) -> Option<Self::Key> {
        match key {
            Key::Neigh(k) => Some(k),
            _ => None,
        }
    }
    fn wire_key(key: Self::Key) -> Key {
        Key::Neigh(key)
    }
}

/// What [`Mirror`] asks of each table's mirror, whatever its kind.
trait Follow {
    fn sync(&mut self, seq: u64, out: &mut Vec<Update>);
    fn on_change(&mut self, op: ChangeOp, key: Key, seq: u64, keep: bool, out: &mut Vec<Update>);
    fn flushed(&mut self, seq: u64, keep: bool) -> bool;
    fn warm(&self, key: Key);
}

impl<R: Mirrored> Follow for TableMirror<R> {
    fn sync(&mut self, seq: u64, out: &mut Vec<Update>) {
        TableMirror::sync(self, seq, out)
    }
    fn on_change(&mut self, op: ChangeOp, key: Key, seq: u64, keep: bool, out: &mut Vec<Update>) {
        TableMirror::on_change(self, op, key, seq, keep, out)
    }
    fn flushed(&mut self, seq: u64, keep: bool) -> bool {
        TableMirror::flushed(self, seq, keep)
    }
    fn warm(&self, key: Key) {
        if let Some(k) = R::key_of(key) {
            self.reader.prefetch(&k);
        }
    }
}

/// What the client has shown for a key: the entry (`None` when a notification found the key
/// already gone from shared memory; its delete is still to come) and the sequence number of the
/// change it reflects.
struct Shown<R> {
    entry: Option<R>,
    seq: u64,
}

/// One table's reader and mirrored contents.
///
/// The mirror also keeps a sync and the notifications after it from showing a change twice:
/// the sync reads shared memory after the subscription started, so it may already hold changes
/// whose notifications are still queued. A notification up to the sequence number the sync is
/// complete to is already shown (as the entry, or as the key's absence); after that, each key
/// remembers the sequence number of the state shown for it, and a notification that is not
/// newer than that is already shown.
pub struct TableMirror<R: Mirrored> {
    reader: ShmReader<R>,
    map: BTreeMap<R::Key, Shown<R>>,
    /// Sequence number of the last notification (or sync start) handled for this table.
    handled: u64,
    /// The last sync holds every change up to this sequence number (62 bits; 0 before any).
    synced_to: u64,
}

/// Sequence numbers as shared memory stores them (62 bits), so both sides compare alike.
fn seq62(seq: u64) -> u64 {
    seq & rtm_proto::shm::SEQ_MASK
}

impl<R: Mirrored> TableMirror<R> {
    /// Maps the file at `path` if its owner is root, this process's uid or the one `owners`
    /// names.
    pub fn open(path: &std::path::Path, owners: Owners) -> Result<Self, ShmError> {
        Ok(TableMirror {
            reader: ShmReader::<R>::open_owned(path, owners)?,
            map: BTreeMap::new(),
            handled: 0,
            synced_to: 0,
        })
    }

    fn refresh(&mut self) {
        // A failed remap keeps the old mapping: it still answers, only staler.
        let _ = self.reader.refresh();
    }

    /// Re-reads the whole table from shared memory into the mirror, as a sync: each entry
    /// counts as shown at the sequence number shared memory gives it. Returns the sequence
    /// number the writer had published before the read (62 bits, as stored): every change up
    /// to it is in what was read, as that state or a newer one.
    fn reload(&mut self) -> u64 {
        self.refresh();
        let published = self.reader.table_seq();
        self.map = self
            .reader
            .entries()
            .into_iter()
            .map(|v| {
                let key = v.entry.key();
                let shown = Shown {
                    seq: seq62(v.seq),
                    entry: Some(v.entry),
                };
                (key, shown)
            })
            .collect();
        published
    }

    /// Re-reads shared memory without printing it (SIGUSR1). Nothing of it has been shown, so
    /// entries count as shown only up to the last notification handled — the notifications
    /// still on their way are printed as usual — and a key that vanished stays as a
    /// placeholder until its delete (or the flush) arrives.
    pub fn reread(&mut self) {
        let before = std::mem::take(&mut self.map);
        self.reload();
        let handled = seq62(self.handled);
        for shown in self.map.values_mut() {
            shown.seq = shown.seq.min(handled);
        }
        for (key, _) in before {
            self.map.entry(key).or_insert(Shown {
                entry: None,
                seq: handled,
            });
        }
    }

    /// The entry for `key` as shared memory holds it now. Per notification only the cheap
    /// retired flag is checked; the full check (which also stats the path) runs on every
    /// whole-table read. A file replaced without being retired means the daemon restarted, and
    /// then the client reconnects and maps the new file anyway.
    pub fn read(&mut self, key: &R::Key) -> Option<R> {
        if self.reader.is_retired() {
            self.refresh();
        }
        self.reader.get(key).map(|v| v.entry)
    }

    /// Entries in the mirror.
    pub fn len(&self) -> usize {
        self.map.values().filter(|s| s.entry.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// The flush with sequence number `seq` emptied the table. `false` if the sync already
    /// showed the table after it: then there is nothing to clear or print.
    fn flushed(&mut self, seq: u64, keep: bool) -> bool {
        self.handled = seq;
        if keep && seq62(seq) <= self.synced_to {
            return false;
        }
        self.map.clear();
        true
    }

    /// Every entry in the mirror, in key order, with its key as the wire names it.
    pub fn entries(&self) -> impl Iterator<Item = (Key, Entry)> + '_ {
        self.map
            .iter()
            .filter_map(|(k, s)| s.entry.as_ref().map(|r| (R::wire_key(*k), r.entry())))
    }

    fn on_change(&mut self, op: ChangeOp, key: Key, seq: u64, keep: bool, out: &mut Vec<Update>) {
        let Some(k) = R::key_of(key) else { return };
        self.handled = seq;
        if keep {
            if seq62(seq) <= self.synced_to {
                // The sync showed the result of this change or a later one.
                return;
            }
            match self.map.get(&k) {
                // The sync (or an earlier notification) already showed this state or a newer one.
                Some(shown) if shown.seq >= seq62(seq) => return,
                // A delete of a key this client never showed: nothing to take back.
                None if op == ChangeOp::Delete => return,
                _ => {}
            }
        }
        let entry = match op {
            ChangeOp::Delete => None,
            ChangeOp::Create | ChangeOp::Update => self.read(&k),
        };
        if keep {
            if op == ChangeOp::Delete {
                self.map.remove(&k);
            } else {
                let shown = Shown {
                    entry: entry.clone(),
                    seq: seq62(seq),
                };
                self.map.insert(k, shown);
            }
        }
        out.push(Update::Change {
            seq,
            op,
            table: R::TABLE,
            key,
            entry: entry.map(|r| r.entry()),
        });
    }

    /// Prints the table as `sync` lines, then `sync-done` with the sequence number up to which
    /// the sync is complete: the later of `seq`, where the subscription (re)started, and what
    /// the writer had published before the read. Every change up to it is in the sync; a later
    /// one follows as an event unless the sync already holds its result. So no event printed
    /// after `sync-done` has a lower sequence number than it.
    fn sync(&mut self, seq: u64, out: &mut Vec<Update>) {
        self.handled = seq;
        let published = self.reload();
        // Same 62-bit space as shared memory; the bits above come from the daemon's number.
        let complete = if published > seq62(seq) {
            (seq & !rtm_proto::shm::SEQ_MASK) | published
        } else {
            seq
        };
        self.synced_to = seq62(complete);
        out.reserve(self.map.len());
        out.extend(self.entries().map(|(key, entry)| Update::Sync {
            table: R::TABLE,
            key,
            entry,
        }));
        out.push(Update::SyncDone {
            table: R::TABLE,
            count: self.len() as u64,
            seq: complete,
        });
    }
}

/// `e`, from mapping the kernel neighbour file, saying why the file may be missing: rtmd keeps
/// it only with `--kernel import`.
pub fn neighbours_missing(e: ShmError) -> ShmError {
    match e {
        ShmError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            ShmError::BadFile {
                path,
                why: "no such file: rtmd keeps the kernel's neighbours only with --kernel import"
                    .into(),
            }
        }
        e => e,
    }
}

/// The mirrors of the subscribed tables.
pub struct Mirror {
    pub route: Option<TableMirror<Route>>,
    pub arp: Option<TableMirror<ArpEntry>>,
    /// The kernel's neighbours (`Tables::Neigh`, `Tables::Every`), from the file beside the
    /// route file ([`rtm_proto::paths::neigh_shm_of`]).
    pub neigh: Option<TableMirror<Neighbour>>,
    /// `false` for `rtmctl watch`: no sync, no mirror, live events only.
    keep: bool,
}

impl Mirror {
    /// Opens the shared-memory files the daemon named, for the tables in `tables`, if they are
    /// owned by root, this process's uid or the uid `owners` names
    /// ([`Client::shm_owners`](crate::Client::shm_owners): the daemon's); otherwise
    /// [`ShmError::Owner`].
    pub fn open(
        welcome: &Welcome,
        owners: Owners,
        tables: Tables,
        keep: bool,
    ) -> Result<Mirror, ShmError> {
        Ok(Mirror {
            route: tables
                .contains(Table::Route)
                .then(|| TableMirror::open(welcome.route_shm.as_ref(), owners))
                .transpose()?,
            arp: tables
                .contains(Table::Arp)
                .then(|| TableMirror::open(welcome.arp_shm.as_ref(), owners))
                .transpose()?,
            neigh: tables
                .contains(Table::Neigh)
                .then(|| {
                    let path = rtm_proto::paths::neigh_shm_of(welcome.route_shm.as_ref());
                    TableMirror::open(&path, owners).map_err(neighbours_missing)
                })
                .transpose()?,
            keep,
        })
    }

    /// Starts loading the shared-memory slot a change event will make [`Mirror::on_event`]
    /// read (see [`crate::Client::warm_ahead`]).
    pub fn warm(&self, ev: &Event) {
        let Event::Change {
            op: ChangeOp::Create | ChangeOp::Update,
            key,
            ..
        } = ev
        else {
            return;
        };
        if let Some(m) = self.follower(key.table()) {
            m.warm(*key);
        }
    }

    /// Handles one event, appending the updates it means to `out`.
    pub fn on_event(&mut self, ev: Event, out: &mut Vec<Update>) {
        let keep = self.keep;
        match ev {
            Event::Start { table, seq } => {
                if let Some(m) = self.follower_mut(table).filter(|_| keep) {
                    m.sync(seq, out);
                }
            }
            Event::Resync { table, seq } => {
                out.push(Update::Resync { table });
                if let Some(m) = self.follower_mut(table).filter(|_| keep) {
                    m.sync(seq, out);
                }
            }
            Event::Change {
                op,
                key,
                seq,
                table,
                ..
            } => {
                if let Some(m) = self.follower_mut(table) {
                    m.on_change(op, key, seq, keep, out);
                }
            }
            Event::Flush { table, seq } => {
                let shown = self.follower_mut(table).map(|m| m.flushed(seq, keep));
                // Not when the sync already showed the table after this flush.
                if shown != Some(false) {
                    out.push(Update::Flush { table, seq });
                }
            }
            Event::Bye => out.push(Update::Bye),
        }
    }

    /// `table`'s mirror, if this client follows that table.
    fn follower(&self, table: Table) -> Option<&dyn Follow> {
        match table {
            Table::Route => self.route.as_ref().map(|m| m as &dyn Follow),
            Table::Arp => self.arp.as_ref().map(|m| m as &dyn Follow),
            Table::Neigh => self.neigh.as_ref().map(|m| m as &dyn Follow),
        }
    }

    fn follower_mut(&mut self, table: Table) -> Option<&mut dyn Follow> {
        match table {
            Table::Route => self.route.as_mut().map(|m| m as &mut dyn Follow),
            Table::Arp => self.arp.as_mut().map(|m| m as &mut dyn Follow),
            Table::Neigh => self.neigh.as_mut().map(|m| m as &mut dyn Follow),
        }
    }

    /// SIGUSR1: a flush happened somewhere; drop the mirror and re-read shared memory.
    pub fn reload_all(&mut self) {
        if let Some(m) = &mut self.route {
            m.reread();
        }
        if let Some(m) = &mut self.arp {
            m.reread();
        }
        if let Some(m) = &mut self.neigh {
            m.reread();
        }
    }

    /// Every entry of the mirrored tables: the routes in prefix order, then the ARP entries
    /// in MAC order, then the kernel's neighbours in (IP, device) order.
    pub fn entries(&self) -> impl Iterator<Item = (Table, Key, Entry)> + '_ {
        let routes = self.route.iter().flat_map(|m| m.entries());
        let arps = self.arp.iter().flat_map(|m| m.entries());
        let neighs = self.neigh.iter().flat_map(|m| m.entries());
        routes
            .map(|(k, e)| (Table::Route, k, e))
            .chain(arps.map(|(k, e)| (Table::Arp, k, e)))
            .chain(neighs.map(|(k, e)| (Table::Neigh, k, e)))
    }

    /// How many routes and ARP entries the mirror holds.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.route.as_ref().map_or(0, |m| m.len() as u64),
            self.arp.as_ref().map_or(0, |m| m.len() as u64),
        )
    }

    /// How many kernel neighbours the mirror holds (`None` if it does not follow them).
    pub fn neigh_count(&self) -> Option<u64> {
        self.neigh.as_ref().map(|m| m.len() as u64)
    }

    pub fn clear(&mut self) {
        if let Some(m) = &mut self.route {
            m.clear();
        }
        if let Some(m) = &mut self.arp {
            m.clear();
        }
        if let Some(m) = &mut self.neigh {
            m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtm_proto::shm::{ShmWriter, TableWriter};

    fn route(dst: &str, metric: u32) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            via: None,
            dev: Some("eth0".parse().unwrap()),
            metric,
            nexthops: Vec::new(),
            origin: Default::default(),
        }
    }

    fn change(op: ChangeOp, dst: &str, seq: u64) -> Event {
        Event::Change {
            table: Table::Route,
            op,
            key: Key::Route(dst.parse().unwrap()),
            seq,
        }
    }

    /// A route mirror of the file at `path`, and what its sync printed for a subscription
    /// that started at `start`.
    fn synced(path: &std::path::Path, start: u64) -> (Mirror, Vec<String>) {
        let welcome = Welcome {
            version: rtm_proto::wire::PROTOCOL_VERSION,
            daemon: String::new(),
            session: 1,
            route_shm: path.to_str().unwrap().to_string(),
            arp_shm: String::new(),
        };
        let mut m = Mirror::open(&welcome, Owners::DirOwner, Tables::Route, true).unwrap();
        let mut out = Vec::new();
        let start = Event::Start {
            table: Table::Route,
            seq: start,
        };
        m.on_event(start, &mut out);
        let printed = out.iter().map(sync_line).collect();
        (m, printed)
    }

    /// An update as a short line: `sync KEY metric M`, `sync-done seq S count N`,
    /// `create KEY seq S metric M`, ...
    fn sync_line(u: &Update) -> String {
        let metric = |e: &Option<Entry>| match e {
            Some(Entry::Route(r)) => format!(" metric {}", r.metric),
            _ => String::new(),
        };
        match u {
            Update::Sync { key, entry, .. } => {
                format!("sync {key}{}", metric(&Some(entry.clone())))
            }
            Update::SyncDone { count, seq, .. } => format!("sync-done seq {seq} count {count}"),
            Update::Change {
                op,
                key,
                seq,
                entry,
                ..
            } => format!("{} {key} seq {seq}{}", op.name(), metric(entry)),
            other => format!("{other:?}"),
        }
    }

    /// The sync printed one line per key, in order, then `sync-done` with `seq`.
    fn assert_synced(printed: &[String], keys: &[&str], seq: u64) {
        assert_eq!(printed.len(), keys.len() + 1, "{printed:?}");
        for (line, key) in printed.iter().zip(keys) {
            assert!(
                line.starts_with(&format!("sync {key}")),
                "{line} is not the sync of {key}"
            );
        }
        let done = format!("sync-done seq {seq} count {}", keys.len());
        assert_eq!(printed[keys.len()], done);
    }

    /// The sync-done of a join while changes are still on their way names the last change the
    /// writer had published, not the older start: the changes in between are in the sync, and
    /// their notifications, arriving later, print nothing.
    #[test]
    fn sync_done_names_what_the_sync_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.route");
        let mut w = ShmWriter::<Route>::create(&path, 64, 0o644, Vec::new(), 0).unwrap();
        for (seq, dst) in [(1, "10.1.0.0/16"), (2, "10.2.0.0/16"), (3, "10.3.0.0/16")] {
            w.upsert(&route(dst, 0), seq).unwrap();
        }
        // Changes 4 and 5 are published before the client reads its sync...
        w.upsert(&route("10.1.0.0/16", 7), 4).unwrap();
        assert!(w.remove(&"10.2.0.0/16".parse().unwrap(), 5).unwrap());
        w.set_table_seq(5);
        // ...but the subscription started at 3.
        let (mut m, printed) = synced(&path, 3);
        assert_synced(&printed, &["10.1.0.0/16", "10.3.0.0/16"], 5);
        assert!(printed[0].ends_with(" metric 7"), "{printed:?}");

        // The notifications of 4 and 5 print nothing; 6 is printed.
        let mut out = Vec::new();
        m.on_event(change(ChangeOp::Update, "10.1.0.0/16", 4), &mut out);
        m.on_event(change(ChangeOp::Delete, "10.2.0.0/16", 5), &mut out);
        assert!(out.is_empty(), "{out:?}");
        w.upsert(&route("10.4.0.0/16", 0), 6).unwrap();
        m.on_event(change(ChangeOp::Create, "10.4.0.0/16", 6), &mut out);
        assert_eq!(out.len(), 1);
        assert!(sync_line(&out[0]).contains(" seq 6"), "{out:?}");
    }

    /// Changes published between the start and the read, including a key that came and went
    /// and a flush, are shown by the sync alone: their notifications print nothing and leave
    /// the mirror as the sync showed it.
    #[test]
    fn notifications_the_sync_already_shows_print_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.route");
        let mut w = ShmWriter::<Route>::create(&path, 64, 0o644, Vec::new(), 0).unwrap();
        w.upsert(&route("10.1.0.0/16", 0), 1).unwrap();
        w.set_table_seq(1);
        // The subscription starts at 1; then, before the client reads:
        w.upsert(&route("10.2.0.0/16", 0), 2).unwrap();
        assert!(w.remove(&"10.2.0.0/16".parse().unwrap(), 3).unwrap());
        w.clear(4);
        w.upsert(&route("10.3.0.0/16", 0), 5).unwrap();
        w.set_table_seq(5);
        let (mut m, printed) = synced(&path, 1);
        assert_synced(&printed, &["10.3.0.0/16"], 5);

        let mut out = Vec::new();
        m.on_event(change(ChangeOp::Create, "10.2.0.0/16", 2), &mut out);
        m.on_event(change(ChangeOp::Delete, "10.2.0.0/16", 3), &mut out);
        let flush = Event::Flush {
            table: Table::Route,
            seq: 4,
        };
        m.on_event(flush, &mut out);
        m.on_event(change(ChangeOp::Create, "10.3.0.0/16", 5), &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(m.route.as_ref().unwrap().len(), 1);

        w.upsert(&route("10.4.0.0/16", 0), 6).unwrap();
        m.on_event(change(ChangeOp::Create, "10.4.0.0/16", 6), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(m.route.as_ref().unwrap().len(), 2);
    }
}
