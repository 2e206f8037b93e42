//! The dashboard's pages, rendered on the server: tables are paged and filtered here, so a page
//! of a large table costs one page of HTML. The script (`assets/app.js`) only sends the forms,
//! asks before a flush and follows the live stream; no script is inline.

use std::fmt::Write;
use std::net::Ipv4Addr;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rtm_proto::wire::{self, Reply, Table};
use rtm_proto::{ArpEntry, MacAddr, Neighbour, Origin, Prefix, Route};
use serde::Deserialize;

use super::tokens::Grant;
use super::{auth, AppState};
use crate::registry::ListClients;
use crate::session::cmd::{status, unavailable};
use crate::table::route::Lookup;
use crate::table::Show;

/// Rows on one page of a table.
pub const PAGE_ROWS: usize = 100;

/// Text made safe for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A whole page around `body`. The token is in a `<meta>` for the script's change requests.
fn layout(title: &str, token: &str, grant: &Grant, body: &str) -> HttpResponse {
    let nav = [
        ("/", "Overview"),
        ("/routes", "Routes"),
        ("/arp", "ARP"),
        ("/neigh", "Neighbours"),
        ("/clients", "Clients"),
        ("/events", "Events"),
    ]
    .iter()
    .map(|(href, name)| {
        let cur = if *name == title {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{cur}>{name}</a>")
    })
    .collect::<Vec<_>>()
    .join(" ");
    let role = if grant.may_change {
        "may change tables"
    } else {
        "read-only"
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"rtm-token\" content=\"{token}\">\
             <meta name=\"rtm-may-change\" content=\"{may}\">\
             <title>rtm · {title}</title>\
             <link rel=\"stylesheet\" href=\"/assets/style.css\">\
             <script src=\"/assets/app.js\" defer></script></head>\
             <body><header><strong>rtm</strong> <nav>{nav}</nav>\
             <span class=\"who\">uid {uid}, {role}</span></header>\
             <main><h1>{title}</h1>{body}</main></body></html>\n",
            token = esc(token),
            may = grant.may_change,
            title = esc(title),
            uid = grant.uid,
        ))
}

/// The reader's grant and token, or the answer that refuses it.
fn reader(req: &HttpRequest, st: &AppState) -> Result<(Grant, String), auth::Refusal> {
    let grant = auth::reader(req, &st.dash)?;
    Ok((grant, auth::presented_token(req).unwrap_or_default()))
}

fn failed(what: &str, why: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain; charset=utf-8")
        .body(format!("{what}: {why}\n"))
}

#[derive(Debug, Deserialize)]
pub struct OpenQuery {
    pub token: Option<String>,
}

/// `GET /`: with `?token=`, opens a session (cookie) and redirects without the token in the
/// address bar; else the overview.
pub async fn overview(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<OpenQuery>,
) -> HttpResponse {
    if let Some(t) = &q.token {
        let Some(grant) = st.dash.tokens.check(t) else {
            return auth::refuse(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "this dashboard token is unknown or expired: get a new URL with `rtmctl dashboard-url`",
            );
        };
        let left = grant
            .expires
            .saturating_duration_since(std::time::Instant::now())
            .as_secs();
        return HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/"))
            .insert_header((header::SET_COOKIE, auth::session_cookie(t, left)))
            .finish();
    }
    let (grant, token) = match reader(&req, &st) {
        Ok(g) => g,
        Err(r) => return r.into(),
    };
    let st_ = match status::status(&st.svc).await {
        Ok(Reply::Status(s)) => s,
        Ok(other) => return failed("status", format!("{other:?}")),
        Err(f) => return failed("status", f),
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<table class=\"kv\"><tr><th>version</th><td>{}</td></tr>\
         <tr><th>uptime</th><td>{} s</td></tr>\
         <tr><th>routes</th><td id=\"routes-count\">{}</td><td>of {}</td></tr>\
         <tr><th>ARP entries</th><td id=\"arps-count\">{}</td><td>of {}</td></tr>\
         <tr><th>clients</th><td>{}</td></tr>\
         <tr><th>restarts</th><td>route {}, arp {}, broker {}, listener {}, registry {}{}</td></tr>\
         <tr><th>journal</th><td>{}</td></tr>\
         <tr><th>last failure</th><td>{}</td></tr></table>",
        esc(&st_.version),
        st_.uptime_s,
        st_.routes,
        st_.route_capacity,
        st_.arps,
        st_.arp_capacity,
        st_.clients,
        st_.restarts.route,
        st_.restarts.arp,
        st_.restarts.broker,
        st_.restarts.listener,
        st_.counters
            .get(wire::REGISTRY_RESTARTS)
            .copied()
            .unwrap_or(0),
        // The kernel mirror's, only when it runs.
        st_.counters
            .get(wire::KERNEL_RESTARTS)
            .map_or(String::new(), |n| format!(", kernel {n}")),
        journal_state(&st_.counters),
        esc(st_.last_failure.as_deref().unwrap_or("none")),
    );
    b.push_str(
        "<h2>Changes and notifications per second</h2>\
         <canvas id=\"rates\" width=\"720\" height=\"160\" aria-label=\"rates chart\"></canvas>\
         <p class=\"legend\"><span class=\"changes\">changes/s</span> \
         <span class=\"events\">notifications/s</span> (last 5 minutes, every 2 s) \
         <span id=\"rates-now\"></span></p>",
    );
    b.push_str("<h2>Counters</h2><table class=\"kv\">");
    for (k, v) in &st_.counters {
        let _ = write!(b, "<tr><th>{}</th><td>{v}</td></tr>", esc(k));
    }
    b.push_str("</table>");
    if grant.may_change {
        let _ = write!(
            b,
            "<h2>Flush</h2><p>Empties tables and tells every client.</p>\
             <button class=\"danger\" data-flush=\"route\" data-count=\"{r}\">Flush routes</button> \
             <button class=\"danger\" data-flush=\"arp\" data-count=\"{a}\">Flush ARP</button> \
             <button class=\"danger\" data-flush=\"all\" data-count=\"{t}\">Flush both</button>\
             <p class=\"result\" role=\"status\"></p>",
            r = st_.routes,
            a = st_.arps,
            t = st_.routes + st_.arps,
        );
    }
    layout("Overview", &token, &grant, &b)
}

#[derive(Debug, Deserialize)]
pub struct TableQuery {
    /// A prefix (routes inside it), an address (its longest-prefix match), a MAC, or text.
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub page: usize,
}

/// The links to the previous and next pages.
fn pager(path: &str, q: &str, page: usize, shown: usize, total: usize) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut o = format!(
        "<p class=\"pager\">{} to {} of {total} ",
        if shown == 0 { 0 } else { page * PAGE_ROWS + 1 },
        page * PAGE_ROWS + shown
    );
    if page > 0 {
        let _ = write!(
            o,
            "<a href=\"{path}?q={}&amp;page={}\">previous</a> ",
            enc(q),
            page - 1
        );
    }
    if (page + 1) * PAGE_ROWS < total {
        let _ = write!(
            o,
            "<a href=\"{path}?q={}&amp;page={}\">next</a>",
            enc(q),
            page + 1
        );
    }
    o.push_str("</p>");
    o
}

/// What the page script needs to update a table view in place: which page it shows, how many
/// rows a page holds, and how many keys one `/api/rows` request may name.
fn live_attrs(page: usize) -> String {
    format!(
        "data-live=\"rows\" data-page=\"{page}\" data-page-rows=\"{PAGE_ROWS}\" \
         data-max-keys=\"{MAX_ROW_KEYS}\""
    )
}

fn search_form(path: &str, q: &str, hint: &str) -> String {
    format!(
        "<form method=\"get\" action=\"{path}\" class=\"search\"><input name=\"q\" value=\"{}\" \
         placeholder=\"{hint}\" aria-label=\"search\"> <button>Search</button></form>",
        esc(q)
    )
}

fn route_row(r: &Route, may_change: bool) -> String {
    let del = if r.origin != Origin::Rtm {
        // Refused here (no override from the page): the kernel would put it back.
        format!(
            "<span title=\"the {} owns it and would put it back; rtmctl --override-kernel \
             changes it\">{}'s</span>",
            r.origin, r.origin
        )
    } else if may_change {
        format!(
            "<button data-del-route=\"{}\">delete</button>",
            esc(&r.dst.to_string())
        )
    } else {
        String::new()
    };
    // `data-key` names the row as the event stream names the route; `data-order` sorts rows as
    // the table does (address, then length), so the page script can place a new one.
    // A multipath route's paths span the via and dev columns, one line each, in `ip route`'s
    // words: `via 192.0.2.1 dev eth0 weight 1`.
    let path = if r.is_multipath() {
        let hops: String = r
            .nexthops
            .iter()
            .map(|h| {
                format!(
                    "<div class=\"hop\">{}</div>",
                    esc(h.to_string().trim_start_matches("nexthop "))
                )
            })
            .collect();
        format!("<td colspan=\"2\" class=\"hops\">{hops}</td>")
    } else {
        format!(
            "<td>{}</td><td>{}</td>",
            r.via.map(|v| v.to_string()).unwrap_or_default(),
            esc(&r.dev.map(|d| d.to_string()).unwrap_or_default()),
        )
    };
    format!(
        "<tr data-key=\"{}\" data-order=\"{:08x}{:02x}\"><td>{}</td>{path}\
         <td>{}</td><td>{}</td><td>{del}</td></tr>",
        r.dst,
        r.dst.addr_u32(),
        r.dst.len(),
        r.dst,
        r.metric,
        r.origin
    )
}

/// The overview's journal line, from the `journal_*` counters (present only with a state dir).
fn journal_state(c: &std::collections::BTreeMap<String, u64>) -> String {
    let n = |k: &str| c.get(k).copied();
    match (n("journal_commits"), n("journal_commit_failures")) {
        (Some(commits), Some(failed)) => format!(
            "{commits} commits{}, {} compactions{}",
            if failed > 0 {
                format!(" <strong class=\"error\">({failed} failed)</strong>")
            } else {
                String::new()
            },
            n("journal_compactions").unwrap_or(0),
            match n("journal_compaction_failures").unwrap_or(0) {
                0 => String::new(),
                f => format!(" <strong class=\"error\">({f} failed)</strong>"),
            }
        ),
        _ => "off: no state directory, the tables start empty after a restart".into(),
    }
}

/// `GET /routes`: a page of routes, searched by prefix or by address (longest-prefix match).
pub async fn routes(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<TableQuery>,
) -> HttpResponse {
    let (grant, token) = match reader(&req, &st) {
        Ok(g) => g,
        Err(r) => return r.into(),
    };
    let query = q.q.trim();
    let mut b = search_form("/routes", query, "prefix 10.0.0.0/8 or address 10.1.2.3");
    if let Ok(addr) = query.parse::<Ipv4Addr>() {
        match st.svc.route.send(Lookup(addr)).await {
            Ok(Ok(Some(r))) => {
                let _ = write!(
                    b,
                    "<p class=\"lpm\">Longest-prefix match for {addr}: <strong>{}</strong> \
                     (the longest of the table's prefixes that contain {addr})</p>\
                     <table id=\"routes\" data-live=\"reload\"><thead><tr><th>prefix</th><th>via</th><th>dev</th>\
                     <th>metric</th><th>origin</th><th></th></tr></thead><tbody>{}</tbody></table>",
                    r.dst,
                    route_row(&r, grant.may_change)
                );
            }
            Ok(Ok(None)) => {
                let _ = write!(b, "<p class=\"lpm\">No route contains {addr}.</p>");
            }
            Ok(Err(f)) => return failed("route lookup", f),
            Err(e) => return failed("route lookup", unavailable(Table::Route, e)),
        }
    } else {
        let within = if query.is_empty() {
            None
        } else {
            match query.parse::<Prefix>() {
                Ok(p) => Some(p),
                Err(e) => {
                    let _ = write!(b, "<p class=\"error\">{}</p>", esc(&e.to_string()));
                    return layout("Routes", &token, &grant, &b);
                }
            }
        };
        let within = within.unwrap_or(Prefix::DEFAULT);
        let page = match st
            .routes
            .page(&within, q.page.saturating_mul(PAGE_ROWS), PAGE_ROWS)
        {
            Ok(p) => p,
            Err(e) => return failed("routes", e),
        };
        let total = page.total;
        let rows: String = page
            .rows
            .iter()
            .map(|r| route_row(&r.entry, grant.may_change))
            .collect();
        let shown = page.rows.len();
        let _ = write!(
            b,
            "<table id=\"routes\" {}><thead><tr><th>prefix</th><th>via</th><th>dev</th>\
             <th>metric</th><th>origin</th><th></th></tr></thead><tbody>{rows}</tbody></table>{}",
            live_attrs(q.page),
            pager("/routes", query, q.page, shown, total)
        );
    }
    if grant.may_change {
        b.push_str(
            "<h2>Add or change a route</h2><form id=\"route-form\" class=\"change\">\
             <input name=\"prefix\" placeholder=\"10.0.0.0/8\" aria-label=\"prefix\" required>\
             <input name=\"via\" placeholder=\"via 192.0.2.1\" aria-label=\"via\">\
             <input name=\"dev\" placeholder=\"dev eth0\" aria-label=\"dev\">\
             <input name=\"metric\" placeholder=\"metric 0\" aria-label=\"metric\">\
             <select name=\"op\" aria-label=\"operation\"><option>add</option>\
             <option>change</option><option>replace</option></select>\
             <button>Apply</button> <button type=\"button\" id=\"add-hop\" title=\"a route \
             with several paths (ip route's nexthop): give each path its via, dev and weight, \
             and leave via and dev above empty\">add nexthop</button>\
             <div id=\"hops\"></div></form><p class=\"result\" role=\"status\"></p>",
        );
    }
    layout("Routes", &token, &grant, &b)
}

fn arp_row(a: &ArpEntry, may_change: bool) -> String {
    let del = if may_change {
        format!("<button data-del-arp=\"{}\">delete</button>", a.mac)
    } else {
        String::new()
    };
    format!(
        "<tr data-key=\"{}\" data-order=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{del}</td></tr>",
        a.mac,
        a.mac,
        a.mac,
        a.ip,
        esc(&a.dev.map(|d| d.to_string()).unwrap_or_default())
    )
}

/// `GET /api/rows`: the keys a page's event stream named, each as the row it shows now (`null`
/// if the entry is gone or does not match the page's search), so the page updates those rows in
/// place. Answers for the routes view (`table=route`, a prefix search or none) and the ARP view.
#[derive(Debug, Deserialize)]
pub struct RowsQuery {
    pub table: String,
    #[serde(default)]
    pub q: String,
    /// Comma-separated keys, as the event stream names them.
    #[serde(default)]
    pub keys: String,
}

/// Most keys one `/api/rows` request may ask for (a page asks for more by reloading its view).
pub const MAX_ROW_KEYS: usize = 2 * PAGE_ROWS;

pub async fn rows(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<RowsQuery>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let (grant, _) = match reader(&req, &st) {
        Ok(g) => g,
        Err(r) => return r.into(),
    };
    let bad = |why: String| auth::refuse(StatusCode::BAD_REQUEST, &why);
    let keys: Vec<&str> = q.keys.split(',').filter(|k| !k.is_empty()).collect();
    if keys.len() > MAX_ROW_KEYS {
        return bad(format!(
            "{} keys asked for; at most {MAX_ROW_KEYS} at once",
            keys.len()
        ));
    }
    let query = q.q.trim();
    let mut out = serde_json::Map::new();
    match q.table.as_str() {
        "route" => {
            let within = if query.is_empty() {
                Prefix::DEFAULT
            } else {
                match query.parse::<Prefix>() {
                    Ok(p) => p,
                    Err(e) => return bad(format!("q {query:?}: {e}")),
                }
            };
            let inside = |p: &Prefix| {
                p.len() >= within.len()
                    && p.addr_u32() & rtm_proto::types::mask(within.len()) == within.addr_u32()
            };
            for k in keys {
                let p = match k.parse::<Prefix>() {
                    Ok(p) => p,
                    Err(e) => return bad(format!("key {k:?}: {e}")),
                };
                let row = match st.routes.get(&p) {
                    Ok(r) => r.filter(|r| inside(&r.dst)),
                    Err(e) => return failed("routes", e),
                };
                out.insert(
                    k.to_string(),
                    row.map_or(serde_json::Value::Null, |r| {
                        route_row(&r, grant.may_change).into()
                    }),
                );
            }
        }
        "arp" => {
            let key = query.parse::<MacAddr>().ok();
            let ip = query.parse::<Ipv4Addr>().ok();
            for k in keys {
                let mac = match k.parse::<MacAddr>() {
                    Ok(m) => m,
                    Err(e) => return bad(format!("key {k:?}: {e}")),
                };
                let found = match st.svc.arp.send(Show::<ArpEntry>::of(Some(mac))).await {
                    Ok(Ok(v)) => v.into_iter().next(),
                    Ok(Err(f)) => return failed("arp", f),
                    Err(e) => return failed("arp", unavailable(Table::Arp, e)),
                };
                let shown = found.filter(|a| match (key, ip) {
                    (Some(m), _) => a.mac == m,
                    (None, Some(ip)) => a.ip == ip,
                    (None, None) => query.is_empty() || a.to_string().contains(query),
                });
                out.insert(
                    k.to_string(),
                    shown.map_or(serde_json::Value::Null, |a| {
                        arp_row(&a, grant.may_change).into()
                    }),
                );
            }
        }
        other => return bad(format!("table {other:?}: expected route or arp")),
    }
    HttpResponse::Ok().json(serde_json::json!({ "rows": out }))
}

/// `GET /arp`: a page of ARP entries, searched by MAC, by IP or by text.
pub async fn arp(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<TableQuery>,
) -> HttpResponse {
    let (grant, token) = match reader(&req, &st) {
        Ok(g) => g,
        Err(r) => return r.into(),
    };
    let query = q.q.trim();
    let mut b = search_form("/arp", query, "MAC or IP");
    let key = query.parse::<MacAddr>().ok();
    let ip = query.parse::<Ipv4Addr>().ok();
    let all = match st.svc.arp.send(Show::<ArpEntry>::of(key)).await {
        Ok(Ok(v)) => v,
        Ok(Err(f)) => return failed("arp", f),
        Err(e) => return failed("arp", unavailable(Table::Arp, e)),
    };
    let keep = |a: &&ArpEntry| match (key, ip) {
        (Some(_), _) => true,
        (None, Some(ip)) => a.ip == ip,
        (None, None) => query.is_empty() || a.to_string().contains(query),
    };
    let (shown_entries, total) = page_of(&all, keep, q.page);
    let shown = shown_entries.len();
    let rows: String = shown_entries
        .into_iter()
        .map(|a| arp_row(a, grant.may_change))
        .collect();
    let _ = write!(
        b,
        "<table id=\"arps\" {}><thead><tr><th>MAC</th><th>IP</th><th>dev</th><th></th></tr>\
         </thead><tbody>{rows}</tbody></table>{}",
        live_attrs(q.page),
        pager("/arp", query, q.page, shown, total)
    );
    if grant.may_change {
        b.push_str(
            "<h2>Add or change an entry</h2><form id=\"arp-form\" class=\"change\">\
             <input name=\"mac\" placeholder=\"00:11:22:33:44:55\" aria-label=\"MAC\" required>\
             <input name=\"ip\" placeholder=\"192.0.2.10\" aria-label=\"IP\" required>\
             <input name=\"dev\" placeholder=\"dev eth0\" aria-label=\"dev\">\
             <select name=\"op\" aria-label=\"operation\"><option>add</option>\
             <option>change</option><option>replace</option></select>\
             <button>Apply</button></form><p class=\"result\" role=\"status\"></p>",
        );
    }
    layout("ARP", &token, &grant, &b)
}

/// `GET /neigh`: a page of the kernel's neighbours (`rtmd --kernel import`), searched by IP,
/// by MAC or by text; read-only, as the table is the kernel's. The page reloads (at most
/// twice a second) when the event stream tells of a change to the table.
pub async fn neighbours(
    req: HttpRequest,
    st: web::Data<AppState>,
    q: web::Query<TableQuery>,
) -> HttpResponse {
    let (grant, token) = match reader(&req, &st) {
        Ok(g) => g,
        Err(r) => return r.into(),
    };
    let table = match st.svc.neighbours() {
        Ok(t) => t,
        Err(f) => {
            return layout(
                "Neighbours",
                &token,
                &grant,
                &format!("<p>{}</p>", esc(&f.to_string())),
            )
        }
    };
    let query = q.q.trim();
    let mut b = search_form("/neigh", query, "IP, MAC or dev");
    let (ip, mac) = (
        query.parse::<Ipv4Addr>().ok(),
        query.parse::<MacAddr>().ok(),
    );
    let all = match table.send(Show::<Neighbour>::of(None)).await {
        Ok(Ok(v)) => v,
        Ok(Err(f)) => return failed("neigh", f),
        Err(e) => return failed("neigh", unavailable(Table::Neigh, e)),
    };
    let keep = |n: &&Neighbour| match (ip, mac) {
        (Some(ip), _) => n.ip == ip,
        (None, Some(mac)) => n.mac == mac,
        (None, None) => query.is_empty() || n.to_string().contains(query),
    };
    let (page, total) = page_of(&all, keep, q.page);
    let rows: String = page
        .iter()
        .map(|n| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                n.ip,
                esc(n.dev.as_str()),
                n.mac,
                n.origin
            )
        })
        .collect();
    let _ = write!(
        b,
        "<table id=\"neighs\"><thead><tr><th>IP</th><th>dev</th><th>MAC</th><th>origin</th>\
         </tr></thead><tbody>{rows}</tbody></table>{}<p class=\"legend\">The kernel's \
         neighbours; the page reloads when they change. The kernel owns them (change them \
         with <code>ip neigh</code>).</p>",
        pager("/neigh", query, q.page, page.len(), total)
    );
    layout("Neighbours", &token, &grant, &b)
}

/// Page `page` of the entries `keep` picks, and how many it picks in all.
fn page_of<T>(all: &[T], keep: impl Fn(&&T) -> bool, page: usize) -> (Vec<&T>, usize) {
    let total = all.iter().filter(&keep).count();
    let rows = all
        .iter()
        .filter(&keep)
        .skip(page.saturating_mul(PAGE_ROWS))
        .take(PAGE_ROWS)
        .collect();
    (rows, total)
}

/// `GET /clients`: every registered client and its queue.
pub async fn clients(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let (grant, token) = match reader(&req, &st) {
        Ok(g) => g,
        Err(r) => return r.into(),
    };
    let rows = match client_rows(&st).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let b = format!(
        "<table id=\"clients\"><thead><tr><th>id</th><th>pid</th><th>uid</th><th>name</th>\
         <th title=\"notifications not yet written to its socket: how far behind the table it \
         is\">queued</th><th>sent</th><th>resyncs</th><th>SIGUSR1</th></tr></thead>\
         <tbody>{rows}</tbody></table>"
    );
    layout("Clients", &token, &grant, &b)
}

/// `GET /api/clients`: the clients page's rows, which its script swaps in every 2 s.
pub async fn clients_rows(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = reader(&req, &st) {
        return r.into();
    }
    match client_rows(&st).await {
        Ok(rows) => HttpResponse::Ok().json(serde_json::json!({ "rows": rows })),
        Err(r) => r,
    }
}

/// One `<tr>` per registered client.
async fn client_rows(st: &AppState) -> Result<String, HttpResponse> {
    let list = match st.svc.registry.send(ListClients).await {
        Ok(l) => l,
        Err(e) => return Err(failed("clients", e)),
    };
    let mut b = String::new();
    for c in &list {
        let _ = write!(
            b,
            "<tr data-key=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            c.id,
            c.id,
            c.pid,
            c.uid,
            esc(&c.name),
            c.queued,
            c.sent,
            c.resyncs,
            if c.sigusr1 { "yes" } else { "no" }
        );
    }
    Ok(b)
}

/// `GET /events`: the live change stream (filled by the script from `/events/stream`).
pub async fn events(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let (grant, token) = match reader(&req, &st) {
        Ok(g) => g,
        Err(r) => return r.into(),
    };
    let b = "<p><button id=\"pause\">Pause</button> \
             <input id=\"filter\" placeholder=\"filter\" aria-label=\"filter\"> \
             <span id=\"stream-state\">connecting</span></p>\
             <table id=\"events\"><thead><tr><th>seq</th><th>table</th><th>op</th><th>key</th>\
             </tr></thead><tbody></tbody></table>";
    layout("Events", &token, &grant, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtm_proto::types::Hop;

    /// A multipath route's row lists its paths under via and dev, one line each; a route with
    /// one next hop keeps its two cells.
    #[test]
    fn a_multipath_row_lists_each_path() {
        let hop = |via: &str, dev: Option<&str>, weight: u16| Hop {
            via: Some(via.parse().unwrap()),
            dev: dev.map(|d| d.parse().unwrap()),
            weight,
        };
        let m = Route::multipath(
            "10.2.0.0/16".parse().unwrap(),
            10,
            vec![hop("192.0.2.1", Some("eth0"), 1), hop("192.0.2.2", None, 3)],
        );
        let row = route_row(&m, true);
        assert!(
            row.contains(
                "<td>10.2.0.0/16</td><td colspan=\"2\" class=\"hops\">\
                 <div class=\"hop\">via 192.0.2.1 dev eth0 weight 1</div>\
                 <div class=\"hop\">via 192.0.2.2 weight 3</div></td><td>10</td>"
            ),
            "{row}"
        );
        let one = Route::new(
            "10.3.0.0/16".parse().unwrap(),
            Some("192.0.2.1".parse().unwrap()),
            None,
            0,
        );
        let row = route_row(&one, false);
        assert!(
            row.contains("<td>10.3.0.0/16</td><td>192.0.2.1</td><td></td><td>0</td>"),
            "{row}"
        );
    }
}
