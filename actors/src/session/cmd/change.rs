//! `Apply` and `Batch`: changes to the tables, in order, each run of operations on one table as
//! one message to that table's actor.

use rtm_proto::wire::{BatchFailure, Failure, Op, Reply, Request, Tables};
use rtm_proto::{ArpEntry, Route};

use super::{flush, unavailable, Answer};
use crate::session::Services;
use crate::table::{Apply, ApplyOutcome, TableOp};
use rtm_proto::wire::Table;

/// One change: its sequence number, or why it was refused. `overriding`: it may change
/// entries of another origin (the kernel's).
pub async fn apply(svc: Services, op: Op, overriding: bool) -> Answer {
    let (_, failures, seq) = run_ops(&svc, vec![op], false, overriding).await;
    vec![match failures.into_iter().next() {
        Some(f) => Err(f.failure),
        None => Ok(Reply::Done { seq }),
    }]
}

/// Many changes in one request: how many were applied and which failed.
pub async fn batch(svc: Services, ops: Vec<Op>, force: bool, overriding: bool) -> Answer {
    let (applied, failures, _) = run_ops(&svc, ops, force, overriding).await;
    vec![Ok(Reply::Batch { applied, failures })]
}

/// A batch larger than `max-batch` is refused whole, before anything is applied.
pub fn within_limits(svc: &Services, req: &Request) -> Result<(), Failure> {
    if let Request::Batch { ops, .. } | Request::BatchOverriding { ops, .. } = req {
        let max = svc.limits.load().max_batch;
        if ops.len() > max {
            return Err(Failure::Limit {
                what: format!("batch of {} operations in one request", ops.len()),
                limit: max as u64,
            });
        }
    }
    Ok(())
}

/// A run of operations for one table, or a flush, with each op's index in the request.
enum Step {
    Route(Vec<(u32, TableOp<Route>)>),
    Arp(Vec<(u32, TableOp<ArpEntry>)>),
    Flush(u32, Tables),
}

/// Groups consecutive operations on the same table so each group is one message.
fn plan(ops: Vec<Op>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        let i = i as u32;
        match op {
            Op::Flush(t) => steps.push(Step::Flush(i, t)),
            Op::RouteAdd(r) => push_route(&mut steps, i, TableOp::Add(r)),
            Op::RouteChange(r) => push_route(&mut steps, i, TableOp::Change(r)),
            Op::RouteReplace(r) => push_route(&mut steps, i, TableOp::Replace(r)),
            Op::RouteDel(p) => push_route(&mut steps, i, TableOp::Del(p)),
            Op::ArpAdd(a) => push_arp(&mut steps, i, TableOp::Add(a)),
            Op::ArpChange(a) => push_arp(&mut steps, i, TableOp::Change(a)),
            Op::ArpReplace(a) => push_arp(&mut steps, i, TableOp::Replace(a)),
            Op::ArpDel(m) => push_arp(&mut steps, i, TableOp::Del(m)),
        }
    }
    steps
}

fn push_route(steps: &mut Vec<Step>, i: u32, op: TableOp<Route>) {
    match steps.last_mut() {
        Some(Step::Route(v)) => v.push((i, op)),
        _ => steps.push(Step::Route(vec![(i, op)])),
    }
}

fn push_arp(steps: &mut Vec<Step>, i: u32, op: TableOp<ArpEntry>) {
    match steps.last_mut() {
        Some(Step::Arp(v)) => v.push((i, op)),
        _ => steps.push(Step::Arp(vec![(i, op)])),
    }
}

/// What a request's operations have come to so far.
#[derive(Default)]
struct Tally {
    applied: u32,
    failures: Vec<BatchFailure>,
    last_seq: u64,
}

impl Tally {
    /// Maps a table's answer for a group back to the request's op indices.
    fn absorb(&mut self, indices: &[u32], outcome: Result<ApplyOutcome, Failure>) {
        match outcome {
            Ok(o) => {
                self.applied += o.applied;
                if o.last_seq != 0 {
                    self.last_seq = o.last_seq;
                }
                self.failures
                    .extend(o.failures.into_iter().map(|(k, failure)| BatchFailure {
                        index: indices[k as usize],
                        failure,
                    }));
            }
            Err(failure) => self.failures.push(BatchFailure {
                index: indices[0],
                failure,
            }),
        }
    }
}

/// Applies operations in order; without `force` stops at the first failure.
/// Returns (applied, failures, sequence number of the last applied change).
async fn run_ops(
    svc: &Services,
    ops: Vec<Op>,
    force: bool,
    overriding: bool,
) -> (u32, Vec<BatchFailure>, u64) {
    let mut t = Tally::default();
    for step in plan(ops) {
        match step {
            Step::Route(group) => {
                let (idx, ops): (Vec<u32>, Vec<_>) = group.into_iter().unzip();
                let r = svc.route.send(Apply::new(ops, force, overriding)).await;
                t.absorb(&idx, r.map_err(|e| unavailable(Table::Route, e)));
            }
            Step::Arp(group) => {
                let (idx, ops): (Vec<u32>, Vec<_>) = group.into_iter().unzip();
                let r = svc.arp.send(Apply::new(ops, force, overriding)).await;
                t.absorb(&idx, r.map_err(|e| unavailable(Table::Arp, e)));
            }
            Step::Flush(i, tables) => match flush::flush(svc, tables, overriding).await {
                Ok(seq) => {
                    t.applied += 1;
                    t.last_seq = seq;
                }
                Err(failure) => t.failures.push(BatchFailure { index: i, failure }),
            },
        }
        if !force && !t.failures.is_empty() {
            break;
        }
    }
    (t.applied, t.failures, t.last_seq)
}
