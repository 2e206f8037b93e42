//! The dashboard's URL map, the headers every answer carries, and the change API.
//!
//! | path | what |
//! |---|---|
//! | `GET /?token=T` | opens a session: sets the cookie, redirects to the page without the token |
//! | `GET /`, `/routes`, `/arp`, `/neigh`, `/clients`, `/events` | pages ([`super::pages`]) |
//! | `GET /events/stream` | the live change stream ([`super::sse`]) |
//! | `GET /metrics` | Prometheus text ([`super::metrics`]) |
//! | `GET /api/status` | what `rtmctl -j status` gets, for the overview's live chart |
//! | `GET /api/rows?table=&q=&keys=` | the rows of changed keys, for a table view's live update |
//! | `GET /api/clients` | the clients page's rows, polled every 2 s |
//! | `POST /api/change` | one add/change/replace/delete (JSON, [`ChangeForm`]), token in `X-Rtm-Token` |
//! | `POST /api/flush` | empty one table or both, token in `X-Rtm-Token` |
//! | `POST /api/logout` | revokes the token of this session |
//! | `GET /assets/…` | the script and style sheet compiled into rtmd |

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use rtm_proto::types::Hop;
use rtm_proto::wire::{Failure, Op, Reply, Request, Tables};
use rtm_proto::{ArpEntry, IfName, MacAddr, Prefix, Route};
use serde::Deserialize;
use tracing::{info, warn};

use super::auth::{self, refuse};
use super::metrics::{self, Scope};
use super::{pages, sse, AppState};
use crate::session::cmd;
use crate::session::Services;

/// No inline script, nothing from another origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self'; connect-src 'self'; form-action 'self'; \
                       base-uri 'none'; frame-ancestors 'none'";

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CSP))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CACHE_CONTROL, "no-store"))
}

/// The dashboard listener's routes.
pub fn dashboard(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(security_headers())
            .route("/", web::get().to(pages::overview))
            .route("/routes", web::get().to(pages::routes))
            .route("/arp", web::get().to(pages::arp))
            .route("/neigh", web::get().to(pages::neighbours))
            .route("/clients", web::get().to(pages::clients))
            .route("/events", web::get().to(pages::events))
            .route("/events/stream", web::get().to(sse::stream))
            .route("/metrics", web::get().to(metrics_with_token))
            .route("/api/status", web::get().to(status_json))
            .route("/api/rows", web::get().to(pages::rows))
            .route("/api/clients", web::get().to(pages::clients_rows))
            .route("/api/change", web::post().to(change))
            .route("/api/flush", web::post().to(flush))
            .route("/api/logout", web::post().to(logout))
            .route("/assets/app.js", web::get().to(app_js))
            .route("/assets/style.css", web::get().to(style_css)),
    );
}

/// The `--metrics-listen` listener's only route.
pub fn metrics_only(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics_counts));
}

async fn app_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("assets/app.js"))
}

async fn style_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("assets/style.css"))
}

async fn metrics_text(svc: &Services, scope: Scope) -> HttpResponse {
    match metrics::gather(svc, scope).await {
        Ok(text) => HttpResponse::Ok()
            .content_type(metrics::CONTENT_TYPE)
            .body(text),
        Err(f) => refuse(StatusCode::SERVICE_UNAVAILABLE, &f.to_string()),
    }
}

async fn metrics_counts(svc: web::Data<Services>) -> HttpResponse {
    metrics_text(&svc, Scope::Counts).await
}

async fn metrics_with_token(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = auth::reader(&req, &st.dash) {
        return r.into();
    }
    metrics_text(&st.svc, Scope::WithClients).await
}

/// The status as JSON (the overview polls it for its chart).
async fn status_json(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if let Err(r) = auth::reader(&req, &st.dash) {
        return r.into();
    }
    match cmd::status::status(&st.svc).await {
        Ok(Reply::Status(s)) => HttpResponse::Ok().json(s),
        Ok(other) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("unexpected answer {other:?}"),
        ),
        Err(f) => refuse(StatusCode::SERVICE_UNAVAILABLE, &f.to_string()),
    }
}

/// A change as the page's forms send it; every field a string, parsed here with the same
/// parsers (and so the same messages) as `rtmctl`.
#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    /// `route` or `arp`.
    pub table: String,
    /// `add`, `change`, `replace` or `del`.
    pub op: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub via: String,
    #[serde(default)]
    pub dev: String,
    #[serde(default)]
    pub metric: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub ip: String,
    /// The next hops of a multipath route (then `via` and `dev` stay empty), as `ip route`'s
    /// `nexthop via A dev X weight W`; one next hop makes an ordinary route.
    #[serde(default)]
    pub nexthops: Vec<HopForm>,
}

/// One next hop of [`ChangeForm::nexthops`]; the weight as a string (empty: 1) or a number.
#[derive(Debug, Default, Deserialize)]
pub struct HopForm {
    #[serde(default)]
    pub via: String,
    #[serde(default)]
    pub dev: String,
    #[serde(default)]
    pub weight: Weight,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Weight {
    Number(u64),
    Text(String),
}

impl Default for Weight {
    fn default() -> Weight {
        Weight::Text(String::new())
    }
}

/// The next hops of a form, each checked as `rtmctl` checks them.
fn form_hops(dst: Prefix, hops: &[HopForm]) -> Result<Vec<Hop>, String> {
    hops.iter()
        .map(|h| {
            let weight = match &h.weight {
                Weight::Number(n) => n.to_string(),
                Weight::Text(t) => t.trim().to_string(),
            };
            let hop = Hop {
                via: parse_addr(&h.via)?,
                dev: opt::<IfName>(&h.dev).map_err(|e| e.to_string())?,
                weight: match weight.as_str() {
                    "" => 1,
                    w => rtm_proto::types::parse_weight(w).map_err(|e| e.to_string())?,
                },
            };
            hop.validate(dst).map_err(|e| e.to_string())?;
            Ok(hop)
        })
        .collect()
}

fn opt<T: std::str::FromStr>(s: &str) -> Result<Option<T>, T::Err> {
    let s = s.trim();
    if s.is_empty() {
        Ok(None)
    } else {
        s.parse().map(Some)
    }
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    match s.trim() {
        "" => Err("a PREFIX is needed".into()),
        "default" => Ok(Prefix::DEFAULT),
        p => p.parse().map_err(|e: rtm_proto::ParseError| e.to_string()),
    }
}

fn parse_addr(s: &str) -> Result<Option<std::net::Ipv4Addr>, String> {
    match s.trim() {
        "" => Ok(None),
        a => rtm_proto::types::parse_addr(a)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// The operation a form asks for, or why it is invalid (nothing sent to the tables then).
pub fn form_op(f: &ChangeForm) -> Result<Op, String> {
    let dev = opt::<IfName>(&f.dev).map_err(|e| e.to_string())?;
    match f.table.as_str() {
        "route" => {
            let dst = parse_prefix(&f.prefix)?;
            if f.op == "del" {
                return Ok(Op::RouteDel(dst));
            }
            let metric = match f.metric.trim() {
                "" => 0,
                m => m
                    .parse::<u32>()
                    .ok()
                    .filter(|_| m.bytes().all(|b| b.is_ascii_digit()))
                    .filter(|_| m == "0" || !m.starts_with('0'))
                    .ok_or_else(|| rtm_proto::ParseError::Metric(m.to_string()).to_string())?,
            };
            let via = parse_addr(&f.via)?;
            let route = if f.nexthops.is_empty() {
                Route::new(dst, via, dev, metric)
            } else {
                if let Some(w) = via
                    .map(|v| format!("via {v}"))
                    .or_else(|| dev.map(|d| format!("dev {d}")))
                {
                    return Err(format!(
                        "route {dst}: \"{}\" beside nexthops; a route with nexthops gives its \
                         gateways and devices in them only",
                        rtm_proto::types::shown(&w)
                    ));
                }
                Route::multipath(dst, metric, form_hops(dst, &f.nexthops)?)
            };
            route.validate().map_err(|e| e.to_string())?;
            match f.op.as_str() {
                "add" => Ok(Op::RouteAdd(route)),
                "change" => Ok(Op::RouteChange(route)),
                "replace" => Ok(Op::RouteReplace(route)),
                other => Err(format!(
                    "unknown operation \"{}\"; expected add, change, replace or del",
                    rtm_proto::types::shown(other)
                )),
            }
        }
        "arp" => {
            let mac: MacAddr = match f.mac.trim() {
                "" => return Err("a MAC is needed".into()),
                m => m
                    .parse()
                    .map_err(|e: rtm_proto::ParseError| e.to_string())?,
            };
            if f.op == "del" {
                return Ok(Op::ArpDel(mac));
            }
            let Some(ip) = parse_addr(&f.ip)? else {
                return Err("an IP is needed after the MAC".into());
            };
            let entry = ArpEntry { mac, ip, dev };
            match f.op.as_str() {
                "add" => Ok(Op::ArpAdd(entry)),
                "change" => Ok(Op::ArpChange(entry)),
                "replace" => Ok(Op::ArpReplace(entry)),
                other => Err(format!(
                    "unknown operation \"{}\"; expected add, change, replace or del",
                    rtm_proto::types::shown(other)
                )),
            }
        }
        other => Err(format!(
            "unknown table \"{}\"; expected route or arp",
            rtm_proto::types::shown(other)
        )),
    }
}

/// The HTTP status a refusal maps to.
fn status_of(f: &Failure) -> StatusCode {
    match f {
        Failure::Exists { .. } => StatusCode::CONFLICT,
        Failure::NotFound { .. } => StatusCode::NOT_FOUND,
        Failure::PermissionDenied { .. } => StatusCode::FORBIDDEN,
        Failure::Full { .. } | Failure::Limit { .. } | Failure::NoSpace { .. } => {
            StatusCode::INSUFFICIENT_STORAGE
        }
        Failure::ShuttingDown | Failure::Internal(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn json(status: StatusCode, v: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status).json(v)
}

/// Runs one change as `rtmctl` would, logged with the token's uid.
async fn run_change(st: &AppState, uid: u32, op: Op) -> HttpResponse {
    let what = format!("{op:?}");
    crate::counters::Counters::bump(&st.svc.health.counters.requests);
    let answer = cmd::answer(st.svc.clone(), Request::Apply(op)).await;
    match answer.into_iter().next() {
        Some(Ok(Reply::Done { seq })) => {
            info!(uid, via = "dashboard", change = %what, seq, "change applied");
            json(
                StatusCode::OK,
                serde_json::json!({ "ok": true, "seq": seq }),
            )
        }
        Some(Err(f)) => {
            crate::counters::Counters::bump(&st.svc.health.counters.failed_requests);
            info!(uid, via = "dashboard", change = %what, "change refused: {f}");
            json(
                status_of(&f),
                serde_json::json!({ "ok": false, "error": f.to_string() }),
            )
        }
        other => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "ok": false, "error": format!("unexpected answer {other:?}") }),
        ),
    }
}

/// Counts a refused change as `rtmctl`'s are counted, and logs who tried.
fn denied(st: &AppState, req: &HttpRequest, r: HttpResponse) -> HttpResponse {
    if r.status() == StatusCode::FORBIDDEN {
        crate::counters::Counters::bump(&st.svc.health.counters.denied);
    }
    warn!(
        peer = ?req.peer_addr(),
        status = r.status().as_u16(),
        via = "dashboard",
        "change refused"
    );
    r
}

async fn change(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Json<ChangeForm>,
) -> HttpResponse {
    let grant = match auth::changer(&req, &st.dash) {
        Ok(g) => g,
        Err(r) => return denied(&st, &req, r.into()),
    };
    match form_op(&form) {
        Ok(op) => run_change(&st, grant.uid, op).await,
        Err(why) => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "ok": false, "error": why }),
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct FlushForm {
    /// `route`, `arp` or `all`.
    pub tables: String,
}

async fn flush(
    req: HttpRequest,
    st: web::Data<AppState>,
    form: web::Json<FlushForm>,
) -> HttpResponse {
    let grant = match auth::changer(&req, &st.dash) {
        Ok(g) => g,
        Err(r) => return denied(&st, &req, r.into()),
    };
    let tables = match form.tables.as_str() {
        "route" => Tables::Route,
        "arp" => Tables::Arp,
        "all" => Tables::All,
        other => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "ok": false, "error": format!(
                    "unknown table \"{}\"; expected route, arp or all",
                    rtm_proto::types::shown(other)
                ) }),
            )
        }
    };
    run_change(&st, grant.uid, Op::Flush(tables)).await
}

async fn logout(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let token = match auth::header_session(&req, &st.dash) {
        Ok(t) => t,
        Err(r) => return r.into(),
    };
    st.dash.tokens.revoke(&token);
    HttpResponse::Ok()
        .insert_header((
            header::SET_COOKIE,
            HeaderValue::from_static("rtm_token=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
        ))
        .json(serde_json::json!({ "ok": true }))
}
