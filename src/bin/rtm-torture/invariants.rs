//! The invariants checked after every fault (docs/torture.md): with the writers quiesced, rtmd
//! answers and stays within its bounds, no acknowledged change is lost, and every live
//! subscriber's printed table catches up with the one in shared memory.

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use rtm::shm::{RouteReader, TableReader};

use crate::lab::{rss_fds, Lab};
use crate::subs::{self, Sub};
use crate::{violate, violations_of_sub, Shared};

/// Upper bounds checked after each fault.
const STATUS_BOUND: Duration = Duration::from_secs(5);
const RSS_BOUND_KIB: u64 = 512 * 1024;
const FD_BOUND: usize = 512;
/// How long a live subscriber may take to catch up with the table after a fault.
const CATCH_UP: Duration = Duration::from_secs(15);

/// What rtmd held to at one check.
pub struct Held {
    pub status: Duration,
    pub rss_kib: u64,
    pub fds: usize,
}

/// Quiesces the writers and checks every invariant; violations go to `shared`.
pub fn check(lab: &mut Lab, subs: &mut [Sub], shared: &Shared) -> Held {
    let _gates: Vec<_> = shared.gates.iter().map(|g| g.lock().unwrap()).collect();
    let mut held = Held {
        status: Duration::ZERO,
        rss_kib: 0,
        fds: 0,
    };
    if let Some(st) = lab.rtmd_exited() {
        violate(shared, format!("rtmd exited by itself: {st}"));
        lab.rtmd = None;
        if let Err(e) = lab.start_rtmd() {
            violate(shared, format!("rtmd does not start again: {e:#}"));
            return held;
        }
    }
    // rtmd answers status within the bound.
    let t = Instant::now();
    match lab.rtmctl(&["status"], None, STATUS_BOUND) {
        Ok(o) if o.status.success() => held.status = t.elapsed(),
        Ok(o) => violate(
            shared,
            format!(
                "rtmctl status failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        ),
        Err(e) => violate(shared, format!("rtmctl status: {e}")),
    }
    if let Some(pid) = lab.rtmd_pid() {
        (held.rss_kib, held.fds) = rss_fds(pid);
        if held.rss_kib > RSS_BOUND_KIB {
            violate(
                shared,
                format!("rtmd RSS {} KiB above {RSS_BOUND_KIB} KiB", held.rss_kib),
            );
        }
        if held.fds > FD_BOUND {
            violate(
                shared,
                format!("rtmd holds {} fds, above {FD_BOUND}", held.fds),
            );
        }
    }
    // No acknowledged change lost: the table in shared memory against the model.
    match RouteReader::open(&lab.route_file()) {
        Ok(r) => {
            let actual: HashMap<_, _> = r
                .entries()
                .into_iter()
                .map(|v| (v.entry.dst, v.entry))
                .collect();
            for v in shared.model.lock().unwrap().reconcile(&actual) {
                violate(shared, v);
            }
            // Every live subscriber catches up with the table (or resynced and synced again):
            // what it printed, applied in order, is the table.
            let table_seq = r.table_seq();
            let want: HashMap<String, serde_json::Value> = actual
                .values()
                .map(|r| (r.dst.to_string(), subs::route_value(r)))
                .collect();
            let end = Instant::now() + CATCH_UP;
            for s in subs.iter_mut() {
                loop {
                    let (upto, expect, eof, same) = {
                        let g = s.seen.lock().unwrap();
                        (g.upto, g.expect, g.eof, g.view == want)
                    };
                    if eof {
                        let st = s.child.0.try_wait().ok().flatten();
                        violate(
                            shared,
                            format!("subscriber {} ended its output ({st:?})", s.n),
                        );
                        break;
                    }
                    if expect.is_some() && same {
                        break;
                    }
                    if Instant::now() > end {
                        let diff = {
                            let g = s.seen.lock().unwrap();
                            let missing = want.iter().filter(|(k, v)| g.view.get(*k) != Some(v));
                            let extra = g.view.keys().filter(|k| !want.contains_key(*k));
                            missing.count() + extra.count()
                        };
                        violate(shared, format!(
                            "subscriber {} did not catch up within {CATCH_UP:?}: {diff} keys differ from the table; printed up to seq {upto}, table at {table_seq}",
                            s.n
                        ));
                        break;
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                violations_of_sub(shared, s);
            }
        }
        Err(e) => violate(
            shared,
            format!("cannot read the route table after recovery: {e}"),
        ),
    }
    held
}
