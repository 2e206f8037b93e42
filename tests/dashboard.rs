//! docs/dashboard.md: the dashboard and the metrics endpoint of a real `rtmd`, met as a browser
//! and a scraper meet them — tokens from `rtmctl dashboard-url`, the cookie, the header a change
//! needs, the same validation as `rtmctl`, the live stream, and Prometheus text that parses.
#![forbid(unsafe_code)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{self, Answer};
use common::*;

/// rtmd with the dashboard on a free loopback port.
fn dashboard(extra: &[&str]) -> Instance {
    let mut args = vec!["--http-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Instance::start_with(&args)
}

/// A fresh dashboard URL: (host:port, token).
fn url(inst: &Instance) -> (String, String) {
    let u = inst.ctl_ok(&["dashboard-url"]);
    let u = u.trim();
    let (host, path) = http::split_url(u);
    let token = path
        .strip_prefix("/?token=")
        .unwrap_or_else(|| panic!("no token in {u}"))
        .to_string();
    assert_eq!(token.len(), 64, "{u}");
    (host, token)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn change(host: &str, token: &str, body: &str) -> Answer {
    http::post_json(host, "/api/change", &[("X-Rtm-Token", token)], body)
}

#[test]
fn reading_needs_a_token_and_the_url_opens_a_strict_session() {
    let inst = dashboard(&[]);
    inst.ctl_ok(&["route", "add", "10.20.0.0/16", "via", "192.0.2.1"]);
    let (host, token) = url(&inst);
    for path in [
        "/",
        "/routes",
        "/arp",
        "/clients",
        "/events",
        "/metrics",
        "/events/stream",
    ] {
        let a = http::get(&host, path, &[]);
        assert_eq!(a.status, 401, "{path} without a token: {a:?}");
        let a = http::get(&host, path, &[("Authorization", "Bearer 00ff")]);
        assert_eq!(a.status, 401, "{path} with a wrong token: {a:?}");
    }
    let a = http::get(&host, "/?token=0123", &[]);
    assert_eq!(a.status, 401, "{a:?}");
    // Opening the URL: a cookie, and the token leaves the address bar.
    let a = http::get(&host, &format!("/?token={token}"), &[]);
    assert_eq!(a.status, 303, "{a:?}");
    assert_eq!(a.header("location"), Some("/"));
    let cookie = a.header("set-cookie").expect("a session cookie");
    assert!(
        cookie.starts_with(&format!("rtm_token={token};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let c = format!("rtm_token={token}");
    let a = http::get(&host, "/routes", &[("Cookie", &c)]);
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body.contains("<td>10.20.0.0/16</td><td>192.0.2.1</td>"),
        "{}",
        a.body
    );
    let csp = a.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(!a.body.contains("<script>"), "inline script in {}", a.body);
    assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
    // The longest-prefix match of an address.
    inst.ctl_ok(&["route", "add", "10.20.30.0/24", "dev", "eth1"]);
    let a = http::get(&host, "/routes?q=10.20.30.4", &[("Cookie", &c)]);
    assert!(
        a.body
            .contains("Longest-prefix match for 10.20.30.4: <strong>10.20.30.0/24</strong>"),
        "{}",
        a.body
    );
    // Assets are compiled in.
    let js = http::get(&host, "/assets/app.js", &[]);
    assert_eq!(js.status, 200);
    assert!(js.body.contains("X-Rtm-Token"));
}

#[test]
fn changes_need_the_header_token_and_get_rtmctls_validation() {
    let inst = dashboard(&[]);
    let (host, token) = url(&inst);
    // The cookie alone (what a cross-site form would send) changes nothing.
    let c = format!("rtm_token={token}");
    let body = r#"{"table":"route","op":"add","prefix":"10.9.0.0/16","dev":"eth0"}"#;
    let a = http::post_json(&host, "/api/change", &[("Cookie", &c)], body);
    assert_eq!(a.status, 403, "{a:?}");
    // A request from another origin, even with the token, is refused.
    let a = http::post_json(
        &host,
        "/api/change",
        &[("X-Rtm-Token", &token), ("Origin", "http://evil.example")],
        body,
    );
    assert_eq!(a.status, 403, "{a:?}");
    assert!(inst.ctl_ok(&["route", "show"]).trim().is_empty());
    // With the header: applied, and rtmctl sees it.
    let a = change(&host, &token, body);
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.contains(r#""ok":true"#), "{a:?}");
    assert!(inst
        .ctl_ok(&["route", "show"])
        .contains("10.9.0.0/16 dev eth0"));
    // The same messages as rtmctl's for the same bad values.
    for (form, words) in [
        (
            r#"{"table":"route","op":"add","prefix":"10.9.0.1/16","dev":"eth0"}"#,
            vec!["route", "add", "10.9.0.1/16", "dev", "eth0"],
        ),
        (
            r#"{"table":"route","op":"add","prefix":"10.8.0.0/16","via":"1.2.3"}"#,
            vec!["route", "add", "10.8.0.0/16", "via", "1.2.3"],
        ),
        (
            r#"{"table":"route","op":"add","prefix":"10.8.0.0/16"}"#,
            vec!["route", "add", "10.8.0.0/16"],
        ),
        (
            r#"{"table":"route","op":"add","prefix":"10.8.0.0/16","dev":"eth0","metric":"007"}"#,
            vec![
                "route",
                "add",
                "10.8.0.0/16",
                "dev",
                "eth0",
                "metric",
                "007",
            ],
        ),
        (
            r#"{"table":"arp","op":"add","mac":"00:11:22:33:44","ip":"192.0.2.1"}"#,
            vec!["arp", "add", "00:11:22:33:44", "192.0.2.1"],
        ),
        (
            r#"{"table":"route","op":"add","prefix":"10.9.0.0/16","dev":"eth0"}"#,
            vec!["route", "add", "10.9.0.0/16", "dev", "eth0"],
        ),
        (
            r#"{"table":"route","op":"del","prefix":"10.7.0.0/16"}"#,
            vec!["route", "del", "10.7.0.0/16"],
        ),
    ] {
        let a = change(&host, &token, form);
        assert!(a.status >= 400, "{form} was accepted: {a:?}");
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        let msg = v["error"].as_str().unwrap().to_string();
        let o = inst.ctl(&words);
        assert_ne!(code(&o), 0);
        let cli = stderr(&o);
        assert!(
            cli.contains(&msg),
            "dashboard said {msg:?}, rtmctl said {cli:?}"
        );
    }
    // ARP add and a flush through the API.
    let a = change(
        &host,
        &token,
        r#"{"table":"arp","op":"add","mac":"00:11:22:33:44:55","ip":"192.0.2.7","dev":"eth0"}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(inst.ctl_ok(&["arp", "show"]).contains("192.0.2.7"));
    let a = http::post_json(
        &host,
        "/api/flush",
        &[("X-Rtm-Token", &token)],
        r#"{"tables":"all"}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(inst.ctl_ok(&["route", "show"]).trim().is_empty());
    assert!(inst.ctl_ok(&["arp", "show"]).trim().is_empty());
    // Logged with the uid.
    let uid = nix::unistd::geteuid().as_raw();
    let log = inst.log_text();
    assert!(
        log.contains(&format!("uid={uid} via=\"dashboard\"")) && log.contains("change applied"),
        "{log}"
    );
    // A revoked token is gone.
    let a = http::post_json(&host, "/api/logout", &[("X-Rtm-Token", &token)], "");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        http::get(&host, "/routes", &[("Authorization", &bearer(&token))]).status,
        401
    );
}

#[test]
fn a_read_only_uid_gets_a_token_that_cannot_change() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching users needs root (setpriv)");
        return;
    }
    let inst = dashboard(&["--socket-mode", "0666"]);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(RTMCTL)
        .arg("--socket")
        .arg(&inst.socket)
        .args(["--json", "dashboard-url"]);
    let o = run(cmd, None, DEADLINE);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["uid"], 65534);
    assert_eq!(v["may_change"], false);
    let (host, path) = http::split_url(v["url"].as_str().unwrap());
    let token = path.strip_prefix("/?token=").unwrap();
    let a = http::get(&host, "/routes", &[("Authorization", &bearer(token))]);
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body.contains("read-only") && !a.body.contains("route-form"),
        "{}",
        a.body
    );
    let a = change(
        &host,
        token,
        r#"{"table":"route","op":"add","prefix":"10.1.0.0/16","dev":"eth0"}"#,
    );
    assert_eq!(a.status, 403, "{a:?}");
    assert!(a.body.contains("uid 65534 may not change tables"), "{a:?}");
    let a = http::post_json(
        &host,
        "/api/flush",
        &[("X-Rtm-Token", token)],
        r#"{"tables":"all"}"#,
    );
    assert_eq!(a.status, 403, "{a:?}");
    assert!(inst.ctl_ok(&["route", "show"]).trim().is_empty());
    assert!(inst.status()["counters"]["denied"].as_u64().unwrap() >= 2);
    assert!(
        inst.log_text()
            .contains("change denied uid=65534 via=\"dashboard\""),
        "{}",
        inst.log_text()
    );
}

#[test]
fn tokens_expire() {
    let inst = dashboard(&["--dashboard-token-ttl", "1s"]);
    let (host, token) = url(&inst);
    assert_eq!(
        http::get(&host, "/", &[("Authorization", &bearer(&token))]).status,
        200
    );
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        http::get(&host, "/", &[("Authorization", &bearer(&token))]).status,
        401
    );
}

#[test]
fn listeners_are_loopback_unless_allowed_and_opt_in() {
    let dir = tempfile::tempdir().unwrap();
    for (flags, needle) in [
        (vec!["--http-listen", "0.0.0.0:0"], "--http-allow-remote"),
        (vec!["--http-listen", "localhost"], "ADDR:PORT"),
        (vec!["--metrics-listen", "0.0.0.0:0"], "loopback"),
        (vec!["--dashboard-token-ttl", "0s"], "dashboard-token-ttl"),
    ] {
        let mut cmd = Command::new(RTMD);
        cmd.arg("--socket")
            .arg(dir.path().join("s"))
            .arg("--shm-dir")
            .arg(dir.path())
            .args(&flags);
        let o = run(cmd, None, DEADLINE);
        assert_eq!(code(&o), 1, "{flags:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(needle) && e.contains(flags[1]), "{flags:?}: {e}");
    }
    // Without --http-listen there is no dashboard to link to.
    let inst = Instance::start();
    let o = inst.ctl(&["dashboard-url"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--http-listen"), "{}", stderr(&o));
}

/// The metrics port rtmd logged.
fn metrics_host(inst: &Instance) -> String {
    let mut host = String::new();
    inst.eventually("the metrics listener", || {
        let log = inst.log_text();
        host = log
            .lines()
            .find(|l| l.contains("metrics listening"))
            .and_then(|l| l.split("addr=Some(").nth(1))
            .and_then(|r| r.split(')').next())
            .unwrap_or_default()
            .to_string();
        !host.is_empty()
    });
    host
}

fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("metrics do not parse: {e}\n{text}"))
}

fn sample(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let found = s
        .samples
        .iter()
        .find(|x| x.metric == name && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)));
    match found.map(|x| &x.value) {
        Some(prometheus_parse::Value::Gauge(v))
        | Some(prometheus_parse::Value::Counter(v))
        | Some(prometheus_parse::Value::Untyped(v)) => *v,
        other => panic!("{name} {label:?}: {other:?}"),
    }
}

#[test]
fn metrics_parse_on_both_listeners() {
    let inst = dashboard(&["--metrics-listen", "127.0.0.1:0"]);
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    inst.ctl_ok(&["route", "add", "10.2.0.0/16", "dev", "eth0"]);
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.0.2.7"]);
    let _client = inst.client("scraped", &[]);
    inst.eventually("the client registered", || inst.status()["clients"] == 1);
    inst.ctl_ok(&["route", "add", "10.3.0.0/16", "dev", "eth0"]);
    inst.eventually("the client notified", || {
        inst.status()["counters"]["events_sent"].as_u64() >= Some(1)
    });
    // The token-free listener: counts only, no per-client series.
    let mhost = metrics_host(&inst);
    let a = http::get(&mhost, "/metrics", &[]);
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let s = parse_metrics(&a.body);
    assert_eq!(
        sample(&s, "rtm_table_entries", Some(("table", "route"))),
        3.0
    );
    assert_eq!(sample(&s, "rtm_table_entries", Some(("table", "arp"))), 1.0);
    // The notification delay histogram: rising cumulative buckets ending in +Inf, holding
    // the write that handed the client its change.
    let h = s
        .samples
        .iter()
        .find(|x| x.metric == "rtm_notification_delay_seconds")
        .map(|x| &x.value);
    let Some(prometheus_parse::Value::Histogram(buckets)) = h else {
        panic!("no notification delay histogram: {h:?}\n{}", a.body);
    };
    assert!(buckets
        .windows(2)
        .all(|w| w[0].count <= w[1].count && w[0].less_than < w[1].less_than));
    let last = buckets.last().unwrap();
    assert!(
        last.less_than.is_infinite() && last.count >= 1.0,
        "{buckets:?}"
    );
    assert_eq!(
        sample(&s, "rtm_notification_delay_seconds_count", None),
        last.count
    );
    assert_eq!(
        sample(&s, "rtm_table_capacity", Some(("table", "route"))),
        8192.0
    );
    assert_eq!(sample(&s, "rtm_clients", None), 1.0);
    assert!(sample(&s, "rtm_changes_total", None) >= 3.0);
    assert_eq!(
        sample(&s, "rtm_restarts_total", Some(("actor", "route"))),
        0.0
    );
    assert!(!a.body.contains("rtm_client_queued"), "{}", a.body);
    assert!(!a.body.contains("scraped"), "{}", a.body);
    // It serves metrics and nothing else.
    assert_eq!(http::get(&mhost, "/routes", &[]).status, 404);
    // The dashboard's /metrics: a token, and the clients too.
    let (host, token) = url(&inst);
    assert_eq!(http::get(&host, "/metrics", &[]).status, 401);
    let a = http::get(&host, "/metrics", &[("Authorization", &bearer(&token))]);
    assert_eq!(a.status, 200, "{a:?}");
    let s = parse_metrics(&a.body);
    assert_eq!(
        sample(&s, "rtm_client_queued", Some(("name", "scraped"))),
        0.0
    );
    assert_eq!(
        sample(&s, "rtm_table_entries", Some(("table", "route"))),
        3.0
    );
}

#[test]
fn the_event_stream_is_live() {
    let inst = dashboard(&[]);
    let (host, token) = url(&inst);
    let auth = bearer(&token);
    let s = http::send(
        &host,
        "GET",
        "/events/stream",
        &[("Authorization", &auth)],
        "",
    );
    let mut r = BufReader::new(s);
    let (status, headers) = http::read_head(&mut r);
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "text/event-stream"));
    let end = Instant::now() + DEADLINE;
    let mut seen = String::new();
    let mut added = false;
    let mut line = String::new();
    while Instant::now() < end {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        // Both tables' starts arrived: the subscription is in place.
        if !added && seen.contains(r#""table":"route""#) && seen.contains(r#""table":"arp""#) {
            inst.ctl_ok(&["route", "add", "10.77.0.0/16", "dev", "eth0"]);
            added = true;
        }
        if seen.contains(r#""key":"10.77.0.0/16","kind":"change","op":"create""#) {
            return;
        }
    }
    panic!("no live change in the stream: {seen}");
}

#[test]
fn a_clean_stop_ends_open_streams() {
    let mut inst = dashboard(&[]);
    let (host, token) = url(&inst);
    let auth = bearer(&token);
    let s = http::send(
        &host,
        "GET",
        "/events/stream",
        &[("Authorization", &auth)],
        "",
    );
    let mut r = BufReader::new(s);
    assert_eq!(http::read_head(&mut r).0, 200);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    inst.signal_daemon(nix::sys::signal::Signal::SIGTERM);
    assert!(inst.wait_daemon().success(), "{}", inst.log_text());
    assert!(inst.log_text().contains("rtmd stopped cleanly"));
    // The stream ends rather than hanging.
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut r, &mut rest);
}

#[test]
fn pages_are_paged_searched_and_name_the_flush_count() {
    let inst = dashboard(&[]);
    let batch: String = (0..250)
        .map(|i| format!("route add 10.{}.{}.0/24 dev eth0\n", i / 200, i % 200))
        .collect();
    let o = inst.batch(&batch, false);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.0.2.7"]);
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:66", "192.0.2.8"]);
    let _client = inst.client("pages-watcher", &[]);
    let (host, token) = url(&inst);
    let auth = bearer(&token);
    let h = [("Authorization", auth.as_str())];
    let rows = |a: &Answer| a.body.matches("<tr data-key=").count();
    // 100 rows a page; the third page holds the last 50.
    let a = http::get(&host, "/routes", &h);
    assert_eq!(rows(&a), 100, "{}", a.body);
    assert!(
        a.body.contains("1 to 100 of 250") && a.body.contains("page=1\">next"),
        "{}",
        a.body
    );
    let a = http::get(&host, "/routes?page=2", &h);
    assert_eq!(rows(&a), 50);
    assert!(a.body.contains("201 to 250 of 250") && !a.body.contains(">next<"));
    // Pages are in key order, read from the route file at an offset.
    let a = http::get(&host, "/routes?page=1", &h);
    assert_eq!(rows(&a), 100);
    assert!(
        a.body.contains("<td>10.0.100.0/24</td>")
            && a.body.contains("<td>10.0.199.0/24</td>")
            && !a.body.contains("<td>10.0.99.0/24</td>")
            && !a.body.contains("<td>10.1.0.0/24</td>"),
        "{}",
        a.body
    );
    let a = http::get(&host, "/routes?q=10.0.0.0%2F8&page=2", &h);
    assert_eq!(rows(&a), 50);
    assert!(a.body.contains("201 to 250 of 250"), "{}", a.body);
    // A prefix narrower than a slot of the file.
    let a = http::get(&host, "/routes?q=10.0.5.0%2F24", &h);
    assert_eq!(rows(&a), 1);
    assert!(a.body.contains("1 to 1 of 1"), "{}", a.body);
    // A prefix: the routes inside it.
    let a = http::get(&host, "/routes?q=10.1.0.0%2F16", &h);
    assert_eq!(rows(&a), 50, "{}", a.body);
    assert!(a.body.contains("<td>10.1.49.0/24</td>") && !a.body.contains("<td>10.0.1.0/24</td>"));
    // A bad search gets the parser's message, escaped.
    let a = http::get(&host, "/routes?q=%3Cb%3E", &h);
    assert!(
        a.body.contains("invalid prefix &quot;&lt;b&gt;&quot;"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("<b>"));
    // An address with no covering route.
    let a = http::get(&host, "/routes?q=192.0.2.1", &h);
    assert!(
        a.body.contains("No route contains 192.0.2.1."),
        "{}",
        a.body
    );
    // ARP by IP and by MAC.
    let a = http::get(&host, "/arp?q=192.0.2.8", &h);
    assert_eq!(rows(&a), 1);
    assert!(a.body.contains("00:11:22:33:44:66"));
    let a = http::get(&host, "/arp?q=00-11-22-33-44-55", &h);
    assert_eq!(rows(&a), 1);
    assert!(a.body.contains("192.0.2.7"));
    // Clients: the registered one, by name.
    let a = http::get(&host, "/clients", &h);
    assert!(a.body.contains("<td>pages-watcher</td>"), "{}", a.body);
    // The rows its script polls: the same, and without the client once it is gone.
    assert_eq!(http::get(&host, "/api/clients", &[]).status, 401);
    let client_rows = || -> String {
        let a = http::get(&host, "/api/clients", &h);
        assert_eq!(a.status, 200, "{}", a.body);
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        v["rows"].as_str().expect("rows").to_string()
    };
    assert!(client_rows().contains("<td>pages-watcher</td>"));
    drop(_client);
    inst.eventually("the ended client gone from /api/clients", || {
        !client_rows().contains("pages-watcher")
    });
    // The overview's flush buttons carry the counts the confirmation names.
    let a = http::get(&host, "/", &h);
    assert!(
        a.body.contains("data-flush=\"route\" data-count=\"250\""),
        "{}",
        a.body
    );
    assert!(
        a.body.contains("data-flush=\"all\" data-count=\"252\""),
        "{}",
        a.body
    );
    // Without a state directory the overview says the tables are not kept.
    assert!(
        a.body
            .contains("<th>journal</th><td>off: no state directory"),
        "{}",
        a.body
    );
    // Restarts of every supervised actor (the kernel mirror's only when it runs).
    assert!(
        a.body
            .contains("route 0, arp 0, broker 0, listener 0, registry 0</td>"),
        "{}",
        a.body
    );
    let a = http::get(&host, "/events", &h);
    assert!(a.body.contains("id=\"events\"") && !a.body.contains("<script>"));
    // The overview's chart polls the status as JSON.
    assert_eq!(http::get(&host, "/api/status", &[]).status, 401);
    let a = http::get(&host, "/api/status", &h);
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["routes"], 250);
    assert_eq!(v["arps"], 2);

    // A table view asks for the rows of the keys its stream named: each row as the page would
    // show it, or null when the key is gone or outside the page's search.
    assert_eq!(
        http::get(&host, "/api/rows?table=route&keys=10.0.5.0/24", &[]).status,
        401
    );
    let rows_of = |query: &str| -> serde_json::Value {
        let a = http::get(&host, &format!("/api/rows?{query}"), &h);
        assert_eq!(a.status, 200, "{query}: {}", a.body);
        serde_json::from_str::<serde_json::Value>(&a.body).unwrap()["rows"].clone()
    };
    let r = rows_of("table=route&keys=10.0.5.0%2F24,10.9.9.0%2F24");
    let row = r["10.0.5.0/24"].as_str().expect("a row for a present key");
    assert!(
        row.starts_with("<tr data-key=\"10.0.5.0/24\" data-order=\"0a00050018\">")
            && row.contains("<td>eth0</td>")
            && row.contains("data-del-route=\"10.0.5.0/24\""),
        "{row}"
    );
    assert!(r["10.9.9.0/24"].is_null(), "{r}");
    let r = rows_of("table=route&q=10.1.0.0%2F16&keys=10.0.5.0%2F24,10.1.5.0%2F24");
    assert!(
        r["10.0.5.0/24"].is_null() && r["10.1.5.0/24"].is_string(),
        "{r}"
    );
    let r = rows_of("table=arp&q=192.0.2.8&keys=00:11:22:33:44:55,00:11:22:33:44:66");
    assert!(r["00:11:22:33:44:55"].is_null(), "{r}");
    assert!(
        r["00:11:22:33:44:66"]
            .as_str()
            .is_some_and(|row| row.contains("<td>192.0.2.8</td>")),
        "{r}"
    );
    // Bad keys, a bad table and too many keys are refused, naming what was wrong.
    let a = http::get(&host, "/api/rows?table=route&keys=10.0.5.1%2F24", &h);
    assert!(
        a.status == 400 && a.body.contains("10.0.5.1/24") && a.body.contains("host bits"),
        "{} {}",
        a.status,
        a.body
    );
    let a = http::get(&host, "/api/rows?table=neigh&keys=x", &h);
    assert!(
        a.status == 400 && a.body.contains("\"neigh\""),
        "{}",
        a.body
    );
    let many: Vec<String> = (0..201).map(|i| format!("10.2.{i}.0/24")).collect();
    let a = http::get(
        &host,
        &format!("/api/rows?table=route&keys={}", many.join(",")),
        &h,
    );
    assert!(
        a.status == 400 && a.body.contains("201 keys"),
        "{} {}",
        a.status,
        a.body
    );
}

#[test]
fn a_browser_that_stops_reading_is_resynced() {
    let inst = dashboard(&["--route-capacity", "65536"]);
    let (host, token) = url(&inst);
    let auth = bearer(&token);
    // Opened and then not read while far more than its queue of changes happen.
    let s = http::send(
        &host,
        "GET",
        "/events/stream",
        &[("Authorization", &auth)],
        "",
    );
    let mut r = BufReader::new(s);
    assert_eq!(http::read_head(&mut r).0, 200);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    // Two rounds of 60,000 changes, so that loopback TCP's buffers (sized by the kernel's
    // autotuning) and the feed's queue (1 MiB) cannot hold them all: one round did not always
    // overflow them under a loaded CI run.
    for (op, dev) in [("add", "eth0"), ("replace", "eth1")] {
        let batch: String = (0..60_000)
            .map(|i| format!("route {op} 10.{}.{}.0/24 dev {dev}\n", i / 256, i % 256))
            .collect();
        let o = inst.batch(&batch, false);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    // rtmd kept serving, and the stream, read again, says resync.
    assert_eq!(inst.status()["routes"], 60_000);
    inst.ctl_ok(&["route", "add", "192.0.2.0/24", "dev", "eth0"]);
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("event: resync") {
            assert!(inst.status()["counters"]["resyncs"].as_u64().unwrap() >= 1);
            return;
        }
    }
    panic!("no resync after the browser fell behind");
}

#[test]
fn the_dashboard_socket_decides_by_the_peers_uid() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dash.sock");
    let s = sock.to_str().unwrap();
    let mut inst = Instance::start_with(&["--http-socket", s, "--socket-mode", "0666"]);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o666);
    // No token: the kernel says who is on the other end.
    let a = http::request_uds(&sock, "GET", "/routes", &[], "");
    assert_eq!(a.status, 200, "{a:?}");
    let json = [("Content-Type", "application/json")];
    let body = r#"{"table":"route","op":"add","prefix":"10.3.0.0/16","dev":"eth0"}"#;
    let a = http::request_uds(&sock, "POST", "/api/change", &json, body);
    assert_eq!(a.status, 200, "{a:?}");
    assert!(inst.ctl_ok(&["route", "show"]).contains("10.3.0.0/16"));
    if nix::unistd::geteuid().is_root() {
        // Another uid reads but may not change.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let curl_as_nobody = |extra: &[&str], path: &str| {
            let mut cmd = Command::new("setpriv");
            cmd.args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "curl",
            ])
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--unix-socket",
                s,
            ])
            .args(extra)
            .arg(format!("http://localhost{path}"));
            let o = run(cmd, None, DEADLINE);
            stdout(&o)
        };
        if Command::new("curl").arg("--version").output().is_ok() {
            assert_eq!(curl_as_nobody(&[], "/routes"), "200");
            let h = ["-H", "Content-Type: application/json", "-d", body];
            assert_eq!(curl_as_nobody(&h, "/api/change"), "403");
        } else {
            eprintln!("skipped the other-uid part: no curl");
        }
    }
    inst.signal_daemon(nix::sys::signal::Signal::SIGTERM);
    assert!(inst.wait_daemon().success());
    assert!(!sock.exists(), "the dashboard socket outlived a clean stop");
}

#[test]
fn the_overview_shows_the_journal_with_a_state_dir() {
    let state = tempfile::tempdir().unwrap();
    let inst = dashboard(&["--state-dir", state.path().to_str().unwrap()]);
    inst.ctl_ok(&["route", "add", "10.1.0.0/16", "dev", "eth0"]);
    inst.ctl_ok(&["arp", "add", "00:11:22:33:44:55", "192.0.2.7"]);
    let (host, token) = url(&inst);
    let auth = bearer(&token);
    let a = http::get(&host, "/", &[("Authorization", auth.as_str())]);
    assert!(
        a.body
            .contains("<th>journal</th><td>2 commits, 0 compactions</td>"),
        "{}",
        a.body
    );
}
