//! One file per request kind: what the session does to answer it.
//!
//! Most requests are answered by a future over the other actors ([`answer`]), which the session
//! runs as its current request; the session's own state changes only for `Subscribe`,
//! `Deregister` ([`subscribe`]) and a debug request aimed at the session itself ([`debug`]).
//!
//! | request | file |
//! |---|---|
//! | `Apply`, `Batch`, and their overriding forms (CRUD; a flush inside them too) | [`change`] |
//! | a flush's SIGUSR1 round | [`flush`] |
//! | `RouteShow`, `ArpShow` | [`show`] |
//! | `RouteGet`, `ArpGet` | [`get`] |
//! | `Clients` | [`clients`] |
//! | `Status` | [`status`] |
//! | `Subscribe`, `Deregister` | [`subscribe`] |
//! | `Debug` (fault-injection builds) | [`debug`] |
//! | `DashboardUrl` | [`dashboard`] |

pub mod change;
pub mod clients;
pub mod dashboard;
pub mod debug;
pub mod flush;
pub mod get;
pub mod show;
pub mod status;
pub mod subscribe;

use actix::MailboxError;
use rtm_proto::wire::{Failure, Reply, Request, Table};

use super::Services;

/// The answer to one request: usually one reply, several for chunked `show`s and paged
/// `clients`.
pub type Answer = Vec<Result<Reply, Failure>>;

pub type LocalBoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T>>>;

/// The future that answers a request which changes nothing in the session itself.
pub fn answer(svc: Services, req: Request) -> LocalBoxFuture<Answer> {
    match req {
        Request::Apply(op) => Box::pin(change::apply(svc, op, false)),
        Request::Batch { ops, force } => Box::pin(change::batch(svc, ops, force, false)),
        Request::ApplyOverriding(op) => Box::pin(change::apply(svc, op, true)),
        Request::BatchOverriding { ops, force } => Box::pin(change::batch(svc, ops, force, true)),
        Request::RouteShow(key) => Box::pin(show::routes(svc, key)),
        Request::ArpShow(key) => Box::pin(show::arps(svc, key)),
        Request::NeighShow(ip) => Box::pin(show::neighbours(svc, ip)),
        Request::RouteGet(addr) => Box::pin(async move { vec![get::route(&svc, addr).await] }),
        Request::ArpGet(mac) => Box::pin(async move { vec![get::arp(&svc, mac).await] }),
        // In one reply; a session pages it for a client at version 4 ([`clients::list`]).
        Request::Clients => Box::pin(async move { clients::list(&svc, 1).await }),
        Request::Status => Box::pin(async move { vec![status::status(&svc).await] }),
        Request::Debug(action) => Box::pin(async move { vec![debug::deliver(&svc, action).await] }),
        Request::Subscribe { .. } | Request::Deregister | Request::DashboardUrl => {
            unreachable!("the session handles {} itself", req.name())
        }
    }
}

/// A table actor's mailbox is gone (it is being restarted, or the daemon is stopping).
pub fn unavailable(t: Table, e: MailboxError) -> Failure {
    Failure::Internal(format!("{t} table unavailable: {e}"))
}

/// The registry's mailbox is gone.
pub fn registry_unavailable(e: MailboxError) -> Failure {
    Failure::Internal(format!("registry unavailable: {e}"))
}
