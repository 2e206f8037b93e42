//! Who a dashboard request comes from, and what it may do.
//!
//! Reading takes a live token from the session cookie (`HttpOnly; SameSite=Strict`), an
//! `Authorization: Bearer` header or the `X-Rtm-Token` header. A change takes the token in the
//! `X-Rtm-Token` header only — a cross-site form or link cannot set a header, so a page elsewhere
//! cannot make the browser change anything — and a token whose uid may change tables.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use super::tokens::Grant;
use super::Dashboard;

/// The session cookie's name.
pub const COOKIE: &str = "rtm_token";
/// The header a change must carry its token in.
pub const TOKEN_HEADER: &str = "x-rtm-token";

/// Why a request is refused, and with which status.
#[derive(Debug)]
pub struct Refusal(pub actix_web::http::StatusCode, pub String);

impl From<Refusal> for HttpResponse {
    fn from(r: Refusal) -> HttpResponse {
        refuse(r.0, &r.1)
    }
}

/// A refused request, as the answer it gets.
pub fn refuse(status: actix_web::http::StatusCode, why: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(format!("{why}\n"))
}

fn header_str(req: &HttpRequest, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn no(status: actix_web::http::StatusCode, why: &str) -> Refusal {
    Refusal(status, why.to_string())
}

/// The token in the `X-Rtm-Token` header.
fn header_token(req: &HttpRequest) -> Option<String> {
    header_str(req, TOKEN_HEADER).map(|s| s.trim().to_string())
}

/// The token a reading request presents, from any of the accepted places.
pub fn presented_token(req: &HttpRequest) -> Option<String> {
    if let Some(t) = header_token(req) {
        return Some(t);
    }
    if let Some(t) = header_str(req, header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_string());
    }
    cookie_token(req)
}

/// The token in the session cookie.
pub fn cookie_token(req: &HttpRequest) -> Option<String> {
    let cookies = header_str(req, header::COOKIE)?;
    cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_string())
    })
}

/// The grant of a connection to the dashboard's Unix socket: decided by the kernel's
/// credentials of the peer, as for `rtmctl`.
#[derive(Debug, Clone, Copy)]
pub struct SocketGrant(pub Grant);

/// Records who connected to the dashboard's Unix socket.
pub fn on_socket_connect(
    svc: &crate::session::Services,
    conn: &dyn std::any::Any,
    ext: &mut actix_web::dev::Extensions,
) {
    let Some(stream) = conn.downcast_ref::<tokio::net::UnixStream>() else {
        return;
    };
    match crate::listener::peer_of(stream) {
        Ok(peer) => {
            ext.insert(SocketGrant(Grant {
                uid: peer.uid,
                may_change: crate::session::may_change(svc, &peer),
                // Never checked: the connection itself is the credential.
                expires: std::time::Instant::now(),
            }));
        }
        Err(e) => tracing::warn!("dashboard socket: cannot read the peer's credentials: {e}"),
    }
}

fn socket_grant(req: &HttpRequest) -> Option<Grant> {
    req.conn_data::<SocketGrant>().map(|g| g.0)
}

/// The grant of a reading request, or a 401.
pub fn reader(req: &HttpRequest, dash: &Dashboard) -> Result<Grant, Refusal> {
    if let Some(g) = socket_grant(req) {
        return Ok(g);
    }
    let token = presented_token(req).ok_or_else(|| {
        no(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "a dashboard token is needed: open the URL `rtmctl dashboard-url` prints",
        )
    })?;
    dash.tokens.check(&token).ok_or_else(|| {
        no(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "this dashboard token is unknown or expired: get a new URL with `rtmctl dashboard-url`",
        )
    })
}

/// The grant of a change: the token in the header, a same-origin request, a uid that may change
/// tables; else 401 or 403.
pub fn changer(req: &HttpRequest, dash: &Dashboard) -> Result<Grant, Refusal> {
    use actix_web::http::StatusCode;
    if let Some(origin) = header_str(req, header::ORIGIN) {
        let host = header_str(req, header::HOST).unwrap_or_default();
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o == host);
        if !same {
            return Err(no(
                StatusCode::FORBIDDEN,
                &format!("cross-origin change refused (Origin {origin})"),
            ));
        }
    }
    let grant = match socket_grant(req) {
        Some(g) => Some(g),
        None => {
            let Some(token) = header_token(req) else {
                return Err(no(
                    StatusCode::FORBIDDEN,
                    "a change needs the dashboard token in the X-Rtm-Token header",
                ));
            };
            dash.tokens.check(&token)
        }
    };
    let grant = grant.ok_or_else(|| {
        no(
            StatusCode::UNAUTHORIZED,
            "this dashboard token is unknown or expired: get a new URL with `rtmctl dashboard-url`",
        )
    })?;
    if !grant.may_change {
        tracing::warn!(uid = grant.uid, via = "dashboard", "change denied");
        return Err(no(
            StatusCode::FORBIDDEN,
            &format!(
                "{}",
                rtm_proto::wire::Failure::PermissionDenied { uid: grant.uid }
            ),
        ));
    }
    Ok(grant)
}

/// The live token in the `X-Rtm-Token` header, whatever it may do (to revoke it).
pub fn header_session(req: &HttpRequest, dash: &Dashboard) -> Result<String, Refusal> {
    use actix_web::http::StatusCode;
    let Some(token) = header_token(req) else {
        return Err(no(
            StatusCode::FORBIDDEN,
            "this needs the dashboard token in the X-Rtm-Token header",
        ));
    };
    match dash.tokens.check(&token) {
        Some(_) => Ok(token),
        None => Err(no(
            StatusCode::UNAUTHORIZED,
            "this dashboard token is unknown or expired",
        )),
    }
}

/// The `Set-Cookie` value that opens a dashboard session with `token`.
pub fn session_cookie(token: &str, max_age_s: u64) -> String {
    format!("{COOKIE}={token}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict")
}
