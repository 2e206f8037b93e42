//! `/metrics` in the Prometheus text format (version 0.0.4): the figures of `rtmctl status`,
//! and with a token the registered clients' queues.

use std::fmt::Write;

use rtm_proto::wire::{self, ClientInfo, Failure, Reply, Status};

use crate::counters::{DelayHistogram, DELAY_BUCKETS};
use crate::registry::ListClients;
use crate::session::cmd::{registry_unavailable, status};
use crate::session::Services;

/// The content type Prometheus expects.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Which figures a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Counts only (the unauthenticated `--metrics-listen`).
    Counts,
    /// Counts and a series per registered client (the dashboard's `/metrics`).
    WithClients,
}

/// The metrics text, as of now.
pub async fn gather(svc: &Services, scope: Scope) -> Result<String, Failure> {
    let Reply::Status(st) = status::status(svc).await? else {
        return Err(Failure::Internal("status gave no status".into()));
    };
    let clients = match scope {
        Scope::Counts => Vec::new(),
        Scope::WithClients => svc
            .registry
            .send(ListClients)
            .await
            .map_err(registry_unavailable)?,
    };
    let mut o = Out(render(&st, &clients));
    o.delay_histogram(&svc.health.notify_delay);
    Ok(o.0)
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// Appends the notification delay histogram: from a batch's publication by its table to the
    /// socket write that hands it (or the resync that replaced it) to a client, sampled once per
    /// run of writes that empties a session's queue (the oldest notification in that run).
    fn delay_histogram(&mut self, h: &DelayHistogram) {
        let name = "rtm_notification_delay_seconds";
        self.family(
            name,
            "histogram",
            "Publication of a change to the socket write handing it to a client (the oldest change of each write run).",
        );
        let (cumulative, sum) = h.snapshot();
        for (le, n) in DELAY_BUCKETS.iter().zip(&cumulative) {
            let _ = writeln!(self.0, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let count = cumulative[DELAY_BUCKETS.len()];
        let _ = writeln!(self.0, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(self.0, "{name}_sum {sum}");
        let _ = writeln!(self.0, "{name}_count {count}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, v: u64) {
        self.family(name, kind, help);
        let _ = writeln!(self.0, "{name} {v}");
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders a status (and clients) as metrics text.
pub fn render(st: &Status, clients: &[ClientInfo]) -> String {
    let mut o = Out(String::new());
    o.family("rtm_table_entries", "gauge", "Entries in each table.");
    let _ = writeln!(o.0, "rtm_table_entries{{table=\"route\"}} {}", st.routes);
    let _ = writeln!(o.0, "rtm_table_entries{{table=\"arp\"}} {}", st.arps);
    // The kernel's neighbours travel in the counters (with --kernel import only).
    let neigh = st
        .counters
        .get(wire::NEIGHS)
        .zip(st.counters.get(wire::NEIGH_CAPACITY));
    if let Some((n, _)) = neigh {
        let _ = writeln!(o.0, "rtm_table_entries{{table=\"neigh\"}} {n}");
    }
    o.family(
        "rtm_table_capacity",
        "gauge",
        "Most entries each table holds.",
    );
    let _ = writeln!(
        o.0,
        "rtm_table_capacity{{table=\"route\"}} {}",
        st.route_capacity
    );
    let _ = writeln!(
        o.0,
        "rtm_table_capacity{{table=\"arp\"}} {}",
        st.arp_capacity
    );
    if let Some((_, c)) = neigh {
        let _ = writeln!(o.0, "rtm_table_capacity{{table=\"neigh\"}} {c}");
    }
    o.one(
        "rtm_clients",
        "gauge",
        "Registered subscribers.",
        st.clients,
    );
    o.one(
        "rtm_uptime_seconds",
        "gauge",
        "Seconds since rtmd started.",
        st.uptime_s,
    );
    o.family(
        "rtm_restarts_total",
        "counter",
        "Restarts of each supervised actor.",
    );
    let r = &st.restarts;
    for (actor, n) in [
        ("route", r.route),
        ("arp", r.arp),
        ("broker", r.broker),
        ("listener", r.listener),
    ] {
        let _ = writeln!(o.0, "rtm_restarts_total{{actor=\"{actor}\"}} {n}");
    }
    for (name, v) in &st.counters {
        if [wire::NEIGHS, wire::NEIGH_CAPACITY].contains(&name.as_str()) {
            continue;
        }
        o.one(
            &format!("rtm_{name}_total"),
            "counter",
            &format!("The {} counter of `rtmctl status`.", name.replace('_', " ")),
            *v,
        );
    }
    if !clients.is_empty() {
        o.family(
            "rtm_client_queued",
            "gauge",
            "Notifications waiting in each client's outbox.",
        );
        for c in clients {
            let _ = writeln!(
                o.0,
                "rtm_client_queued{{id=\"{}\",pid=\"{}\",name=\"{}\"}} {}",
                c.id,
                c.pid,
                label(&c.name),
                c.queued
            );
        }
        o.family(
            "rtm_client_sent_total",
            "counter",
            "Notifications sent to each client.",
        );
        for c in clients {
            let _ = writeln!(
                o.0,
                "rtm_client_sent_total{{id=\"{}\",pid=\"{}\",name=\"{}\"}} {}",
                c.id,
                c.pid,
                label(&c.name),
                c.sent
            );
        }
        o.family(
            "rtm_client_resyncs_total",
            "counter",
            "Resyncs each client was sent after falling behind.",
        );
        for c in clients {
            let _ = writeln!(
                o.0,
                "rtm_client_resyncs_total{{id=\"{}\",pid=\"{}\",name=\"{}\"}} {}",
                c.id,
                c.pid,
                label(&c.name),
                c.resyncs
            );
        }
    }
    o.0
}
