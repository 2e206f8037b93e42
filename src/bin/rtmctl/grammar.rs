//! The `rtmctl` command grammar (docs/cli.md), shared by the command line and `batch` files.
//! Objects, commands and aliases come from the table in `commands`; this file turns the words
//! after them into a [`Command`].
//!
//! ```text
//! route add|change|replace PREFIX [via GW] [dev IFNAME] [metric N]
//! route add|change|replace PREFIX [metric N] nexthop [via GW] [dev IFNAME] [weight W] nexthop …
//! route del PREFIX | route get ADDRESS
//! route show|flush [PREFIX | exact P | root P | match P] [dev IFNAME] [via GW]
//! arp add|change|replace MAC IP [dev IFNAME]
//! arp del MAC | arp show [MAC] [dev IFNAME] | arp get MAC | arp flush [dev IFNAME]
//! neigh add|change|replace IP lladdr MAC [dev IFNAME] | neigh del IP|MAC | neigh show|get|flush …
//! flush | clients | watch | status | batch FILE|- [--force] | completions bash|zsh|fish
//! debug panic TARGET [in handler|async|interval|stream|restart|publish]
//! debug stall TARGET MS                                    (fault-injection builds only)
//!   TARGET = route|arp|broker|listener|session|registry|kernel|kernel-export
//! ```
//! Every error names the offending word.

use std::net::Ipv4Addr;

use rtm::types::{parse_addr, parse_weight, shown, unicast_next_hop, Hop, ParseError};
use rtm::wire::{Op, Tables};
use rtm::{ArpEntry, IfName, MacAddr, Prefix, Route};

use crate::commands::{self, Object};
use crate::select::{ArpSelector, RouteSelector};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Value(#[from] ParseError),
    #[error("{0}")]
    Usage(String),
}

pub fn usage(msg: impl Into<String>) -> UsageError {
    UsageError::Usage(msg.into())
}

/// A parsed `rtmctl` command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A change (also what a batch line must be).
    Change(Op),
    RouteShow(RouteSelector),
    /// `route flush` with selectors: the deletes of the routes they pick.
    RouteFlushSome(RouteSelector),
    RouteGet(Ipv4Addr),
    ArpShow(ArpSelector),
    /// `arp flush dev IFNAME`: the deletes of its entries.
    ArpFlushSome(ArpSelector),
    ArpGet(MacAddr),
    /// `kernel-neigh show [IP]`.
    KernelNeighShow(Option<Ipv4Addr>),
    /// `neigh del IP [dev IFNAME]`: the delete of the one entry with that IP (on that device).
    NeighDel(Ipv4Addr, Option<IfName>),
    Completions(clap_complete::Shell),
    Clients,
    Watch,
    Status,
    /// A dashboard link with a token for the caller's uid.
    DashboardUrl,
    Batch {
        file: String,
        force: bool,
    },
    /// Fault injection (only in builds with the `fault-injection` feature).
    #[cfg(feature = "fault-injection")]
    Debug(rtm::wire::DebugAction),
}

/// Parses `OBJECT COMMAND [ARGS]`.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, UsageError> {
    let words: Vec<&str> = args.iter().map(|s| s.as_ref()).collect();
    let expected = || format!("expected: {}", commands::object_list());
    let Some((&word, rest)) = words.split_first() else {
        return Err(usage(format!("missing command; {}", expected())));
    };
    #[cfg(feature = "fault-injection")]
    if word == "debug" {
        return parse_debug(rest);
    }
    let Some(object) = commands::object(word) else {
        return Err(usage(format!(
            "unknown command \"{}\"; {}",
            shown(word),
            expected()
        )));
    };
    match object.names[0] {
        "route" => parse_route(object, rest),
        "arp" => parse_arp(object, rest, false),
        "neigh" => parse_arp(object, rest, true),
        "kernel-neigh" => {
            let (_, args) = verb_of(object, rest)?;
            match args[..] {
                [] => Ok(Command::KernelNeighShow(None)),
                [ip] => Ok(Command::KernelNeighShow(Some(parse_addr(ip)?))),
                [_, extra, ..] => Err(usage(format!(
                    "unexpected argument \"{}\" after kernel-neigh show IP",
                    shown(extra)
                ))),
            }
        }
        "flush" => no_more("flush", rest).map(|_| Command::Change(Op::Flush(Tables::All))),
        "clients" => no_more("clients", rest).map(|_| Command::Clients),
        "watch" => no_more("watch", rest).map(|_| Command::Watch),
        "status" => no_more("status", rest).map(|_| Command::Status),
        "batch" => parse_batch(rest),
        "dashboard-url" => no_more("dashboard-url", rest).map(|_| Command::DashboardUrl),
        "completions" => match rest {
            [shell] => shell
                .parse::<clap_complete::Shell>()
                .ok()
                .filter(|s| {
                    matches!(
                        s,
                        clap_complete::Shell::Bash
                            | clap_complete::Shell::Zsh
                            | clap_complete::Shell::Fish
                    )
                })
                .map(Command::Completions)
                .ok_or_else(|| {
                    usage(format!(
                        "unknown shell \"{}\"; expected bash, zsh or fish",
                        shown(shell)
                    ))
                }),
            [] => Err(usage("completions needs a shell: bash, zsh or fish")),
            [_, extra, ..] => Err(usage(format!(
                "unexpected argument \"{}\" after completions",
                shown(extra)
            ))),
        },
        other => Err(usage(format!("\"{other}\" is not a command here"))),
    }
}

/// The command of `object` named by the first word, by its canonical name.
fn verb_of<'a>(
    object: &Object,
    rest: &[&'a str],
) -> Result<(&'static str, Vec<&'a str>), UsageError> {
    let name = object.names[0];
    let Some((&word, args)) = rest.split_first() else {
        return Err(usage(format!(
            "{name} needs a command: {}",
            commands::verb_list(object)
        )));
    };
    match commands::verb(object, word) {
        Some(v) => Ok((v.names[0], args.to_vec())),
        None => Err(usage(format!(
            "unknown {name} command \"{}\"; expected {}",
            shown(word),
            commands::verb_list(object)
        ))),
    }
}

/// Parses one batch line: only changes are allowed. `Ok(None)` for blank lines and comments.
/// A `#` starts a comment anywhere on the line, as in `ip -batch`.
pub fn parse_batch_line(line: &str) -> Result<Option<Op>, UsageError> {
    let line = line.split('#').next().unwrap_or_default().trim();
    if line.is_empty() {
        return Ok(None);
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match parse(&words)? {
        Command::Change(op) => Ok(Some(op)),
        _ => Err(usage(format!(
            "\"{line}\" is not a change; a batch holds add, change, replace, del and flush lines"
        ))),
    }
}

fn no_more(cmd: &str, rest: &[&str]) -> Result<(), UsageError> {
    match rest.first() {
        None => Ok(()),
        Some(w) => Err(usage(format!(
            "unexpected argument \"{}\" after {cmd}",
            shown(w)
        ))),
    }
}

fn parse_batch(rest: &[&str]) -> Result<Command, UsageError> {
    let mut file = None;
    let mut force = false;
    for &w in rest {
        match w {
            "--force" | "-f" => force = true,
            _ if file.is_none() => file = Some(w.to_string()),
            _ => {
                return Err(usage(format!(
                    "unexpected argument \"{}\" for batch",
                    shown(w)
                )))
            }
        }
    }
    let file = file.ok_or_else(|| usage("batch needs a FILE (or - for standard input)"))?;
    Ok(Command::Batch { file, force })
}

#[cfg(feature = "fault-injection")]
fn parse_debug(rest: &[&str]) -> Result<Command, UsageError> {
    use rtm::wire::{DebugAction, DebugTarget, PanicPoint};
    const USE: &str = "debug panic TARGET [in handler|async|interval|stream|restart|publish] | \
                       debug stall TARGET MS, \
                       TARGET = route|arp|neigh|broker|listener|session|registry|kernel|kernel-export";
    let target = |w: Option<&&str>| match w.copied() {
        Some("route") => Ok(DebugTarget::Route),
        Some("arp") => Ok(DebugTarget::Arp),
        Some("neigh") => Ok(DebugTarget::Neigh),
        Some("broker") => Ok(DebugTarget::Broker),
        Some("listener") => Ok(DebugTarget::Listener),
        Some("session") => Ok(DebugTarget::Session),
        Some("registry") => Ok(DebugTarget::Registry),
        Some("kernel") => Ok(DebugTarget::Kernel),
        Some("kernel-export") => Ok(DebugTarget::KernelExport),
        Some(w) => Err(usage(format!(
            "unknown debug target \"{}\"; {USE}",
            shown(w)
        ))),
        None => Err(usage(format!("missing debug target; {USE}"))),
    };
    match rest {
        ["panic", t, more @ ..] => {
            let target = target(Some(t))?;
            let point = match more {
                [] => PanicPoint::Handler,
                ["in", p] => match *p {
                    "handler" => PanicPoint::Handler,
                    "async" => PanicPoint::Async,
                    "interval" => PanicPoint::Interval,
                    "stream" => PanicPoint::Stream,
                    "restart" => PanicPoint::Restart,
                    "publish" => PanicPoint::Publish,
                    other => {
                        return Err(usage(format!(
                            "unknown panic point \"{}\"; {USE}",
                            shown(other)
                        )))
                    }
                },
                [w, ..] => {
                    return Err(usage(format!(
                        "unexpected argument \"{}\"; {USE}",
                        shown(w)
                    )))
                }
            };
            Ok(Command::Debug(DebugAction::Panic { target, point }))
        }
        ["stall", t, ms] => {
            let target = target(Some(t))?;
            let ms = ms
                .parse()
                .map_err(|_| usage(format!("invalid milliseconds \"{ms}\"; {USE}")))?;
            Ok(Command::Debug(DebugAction::Stall { target, ms }))
        }
        ["panic"] | ["stall"] => Err(usage(format!("missing debug target; {USE}"))),
        [w, ..] => Err(usage(format!(
            "unknown debug command \"{}\"; {USE}",
            shown(w)
        ))),
        [] => Err(usage(format!("debug needs a command; {USE}"))),
    }
}

fn parse_route(object: &Object, rest: &[&str]) -> Result<Command, UsageError> {
    let (cmd, args) = verb_of(object, rest)?;
    let args = &args[..];
    match cmd {
        "add" | "change" | "replace" => {
            let route = parse_route_spec(cmd, args)?;
            Ok(Command::Change(match cmd {
                "add" => Op::RouteAdd(route),
                "change" => Op::RouteChange(route),
                _ => Op::RouteReplace(route),
            }))
        }
        "del" => Ok(Command::Change(Op::RouteDel(parse_prefix(one_arg(
            "route del",
            "PREFIX",
            args,
        )?)?))),
        "show" => Ok(Command::RouteShow(RouteSelector::parse(
            "route show",
            args,
        )?)),
        "get" => Ok(Command::RouteGet(parse_addr(one_arg(
            "route get",
            "ADDRESS",
            args,
        )?)?)),
        _ => {
            let sel = RouteSelector::parse("route flush", args)?;
            Ok(if sel.is_empty() {
                Command::Change(Op::Flush(Tables::Route))
            } else {
                Command::RouteFlushSome(sel)
            })
        }
    }
}

fn parse_arp(object: &Object, rest: &[&str], ip_order: bool) -> Result<Command, UsageError> {
    let name = object.names[0];
    let (cmd, args) = verb_of(object, rest)?;
    let args = &args[..];
    match cmd {
        "add" | "change" | "replace" => {
            let entry = if ip_order && args.first().is_some_and(|w| w.parse::<Ipv4Addr>().is_ok()) {
                parse_neigh_spec(cmd, args)?
            } else {
                parse_arp_spec(name, cmd, args)?
            };
            Ok(Command::Change(match cmd {
                "add" => Op::ArpAdd(entry),
                "change" => Op::ArpChange(entry),
                _ => Op::ArpReplace(entry),
            }))
        }
        "del" if ip_order && args.first().is_some_and(|w| w.parse::<Ipv4Addr>().is_ok()) => {
            let ip = parse_addr(args[0])?;
            let (_, dev) = keywords(&format!("{name} del"), &args[1..], false)?;
            Ok(Command::NeighDel(ip, dev))
        }
        "del" => {
            let word = one_arg(
                &format!("{name} del"),
                if ip_order { "IP" } else { "MAC" },
                args,
            )?;
            Ok(Command::Change(Op::ArpDel(word.parse()?)))
        }
        "show" => Ok(Command::ArpShow(ArpSelector::parse(
            &format!("{name} show"),
            args,
        )?)),
        "get" => Ok(Command::ArpGet(
            one_arg(&format!("{name} get"), "MAC", args)?.parse()?,
        )),
        _ => {
            let sel = ArpSelector::parse(&format!("{name} flush"), args)?;
            if sel.mac.is_some() {
                return Err(usage(format!(
                    "{name} flush takes dev IFNAME, not a MAC; use {name} del"
                )));
            }
            Ok(if sel.is_empty() {
                Command::Change(Op::Flush(Tables::Arp))
            } else {
                Command::ArpFlushSome(sel)
            })
        }
    }
}

fn one_arg<'a>(cmd: &str, what: &str, args: &[&'a str]) -> Result<&'a str, UsageError> {
    match args {
        [a] => Ok(a),
        [] => Err(usage(format!("{cmd} needs {} {what}", article(what)))),
        [_, extra, ..] => Err(usage(format!(
            "unexpected argument \"{}\" after {cmd}",
            shown(extra)
        ))),
    }
}

/// "an" before a word that starts with a vowel letter (ADDRESS, IP), else "a".
fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U' | 'a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// A route's PREFIX; `default` is `0.0.0.0/0`, as in `ip route`.
pub fn parse_prefix(word: &str) -> Result<Prefix, UsageError> {
    if word == "default" {
        return Ok(Prefix::DEFAULT);
    }
    Ok(word.parse()?)
}

/// `PREFIX [via GW] [dev IFNAME] [metric N]`, each keyword at most once; or a multipath
/// route, `PREFIX [metric N] nexthop NH nexthop NH …`, as `ip route` has it: everything after
/// the first `nexthop` belongs to the next hops ([`parse_nexthops`]). A single `nexthop` makes
/// an ordinary route, as the kernel does.
fn parse_route_spec(cmd: &str, args: &[&str]) -> Result<Route, UsageError> {
    let Some((&dst, mut rest)) = args.split_first() else {
        return Err(usage(format!("route {cmd} needs a PREFIX")));
    };
    let dst = parse_prefix(dst)?;
    let (mut via, mut dev, mut metric) = (None, None, None);
    while let Some((&kw, tail)) = rest.split_first() {
        if kw == "nexthop" {
            break;
        }
        if !matches!(kw, "via" | "dev" | "metric") {
            return Err(usage(format!(
                "unknown argument \"{}\" for route {cmd}; expected via, dev, metric or nexthop",
                shown(kw)
            )));
        }
        let Some((&value, tail)) = tail.split_first() else {
            return Err(usage(format!("\"{kw}\" needs a value")));
        };
        match kw {
            "via" => {
                let ip = parse_addr(value)?;
                unicast_next_hop("gateway", ip)?;
                set_once(&mut via, kw, ip)?
            }
            "dev" => set_once(&mut dev, kw, value.parse::<IfName>()?)?,
            "metric" => set_once(
                &mut metric,
                kw,
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .filter(|_| value == "0" || !value.starts_with('0'))
                    .ok_or_else(|| ParseError::Metric(value.to_string()))?,
            )?,
            _ => unreachable!("keyword checked above"),
        }
        rest = tail;
    }
    let metric = metric.unwrap_or(0);
    let route = if rest.is_empty() {
        Route::new(dst, via, dev, metric)
    } else {
        if let Some(w) = via
            .map(|v| format!("via {v}"))
            .or_else(|| dev.map(|d| format!("dev {d}")))
        {
            return Err(usage(format!(
                "route {cmd} {dst}: \"{}\" before nexthop; a route with nexthops gives its \
                 gateways and devices in them only",
                shown(&w)
            )));
        }
        Route::multipath(dst, metric, parse_nexthops(cmd, dst, rest)?)
    };
    route.validate()?;
    Ok(route)
}

/// `nexthop NH nexthop NH …`, `NH = [via GW] [dev IFNAME] [weight W]` (weight 1..=256,
/// default 1), each keyword at most once per next hop; every next hop checked on its own.
fn parse_nexthops(cmd: &str, dst: Prefix, mut words: &[&str]) -> Result<Vec<Hop>, UsageError> {
    let mut hops = Vec::new();
    while let Some((_nexthop, mut rest)) = words.split_first() {
        let n = hops.len() + 1;
        let (mut via, mut dev, mut weight) = (None, None, None);
        while let Some((&kw, tail)) = rest.split_first() {
            if kw == "nexthop" {
                break;
            }
            if !matches!(kw, "via" | "dev" | "weight") {
                let hint = if kw == "metric" {
                    "; metric goes before the first nexthop"
                } else {
                    ""
                };
                return Err(usage(format!(
                    "unknown argument \"{}\" in nexthop {n} of route {cmd} {dst}; expected \
                     via, dev, weight or nexthop{hint}",
                    shown(kw)
                )));
            }
            let Some((&value, tail)) = tail.split_first() else {
                return Err(usage(format!("\"{kw}\" needs a value")));
            };
            let twice = || usage(format!("\"{kw}\" given twice in nexthop {n}"));
            match kw {
                "via" => {
                    let ip = parse_addr(value)?;
                    set_once(&mut via, kw, ip).map_err(|_| twice())?
                }
                "dev" => set_once(&mut dev, kw, value.parse::<IfName>()?).map_err(|_| twice())?,
                _ => set_once(&mut weight, kw, parse_weight(value)?).map_err(|_| twice())?,
            }
            rest = tail;
        }
        let hop = Hop {
            via,
            dev,
            weight: weight.unwrap_or(1),
        };
        hop.validate(dst)?;
        hops.push(hop);
        words = rest;
    }
    Ok(hops)
}

/// `MAC IP [dev IFNAME]`.
fn parse_arp_spec(object: &str, cmd: &str, args: &[&str]) -> Result<ArpEntry, UsageError> {
    let (mac, ip, rest) = match args {
        [mac, ip, rest @ ..] => (mac.parse::<MacAddr>()?, parse_addr(ip)?, rest),
        [mac] => {
            mac.parse::<MacAddr>()?;
            return Err(usage(format!("{object} {cmd} needs an IP after the MAC")));
        }
        [] => return Err(usage(format!("{object} {cmd} needs a MAC and an IP"))),
    };
    let (_, dev) = keywords(&format!("{object} {cmd}"), rest, false)?;
    neighbour(ArpEntry { mac, ip, dev })
}

/// ip neigh's order: `IP lladdr MAC [dev IFNAME]` (keywords in any order).
fn parse_neigh_spec(cmd: &str, args: &[&str]) -> Result<ArpEntry, UsageError> {
    let (&ip, rest) = args.split_first().expect("checked by the caller");
    let ip = parse_addr(ip)?;
    let (mac, dev) = keywords(&format!("neigh {cmd}"), rest, true)?;
    let mac = mac.ok_or_else(|| usage(format!("neigh {cmd} needs lladdr MAC after the IP")))?;
    neighbour(ArpEntry { mac, ip, dev })
}

/// `[dev IFNAME]`, and with `lladdr` also `[lladdr MAC]`, each at most once.
fn keywords(
    what: &str,
    mut rest: &[&str],
    lladdr: bool,
) -> Result<(Option<MacAddr>, Option<IfName>), UsageError> {
    let (mut mac, mut dev) = (None, None);
    while let Some((&kw, tail)) = rest.split_first() {
        if kw != "dev" && !(lladdr && kw == "lladdr") {
            let expected = if lladdr { "lladdr or dev" } else { "dev" };
            return Err(usage(format!(
                "unknown argument \"{}\" for {what}; expected {expected}",
                shown(kw)
            )));
        }
        let Some((&value, tail)) = tail.split_first() else {
            return Err(usage(format!("\"{kw}\" needs a value")));
        };
        if kw == "dev" {
            set_once(&mut dev, kw, value.parse::<IfName>()?)?;
        } else {
            set_once(&mut mac, kw, value.parse::<MacAddr>()?)?;
        }
        rest = tail;
    }
    Ok((mac, dev))
}

/// An ARP entry whose IP and MAC can be a neighbour's.
fn neighbour(e: ArpEntry) -> Result<ArpEntry, UsageError> {
    e.validate().map_err(|e| usage(e.to_string()))?;
    Ok(e)
}

pub fn set_once<T>(slot: &mut Option<T>, kw: &str, v: T) -> Result<(), UsageError> {
    if slot.is_some() {
        return Err(usage(format!("\"{kw}\" given twice")));
    }
    *slot = Some(v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, UsageError> {
        parse(&s.split_whitespace().collect::<Vec<_>>())
    }

    #[test]
    fn routes() {
        let Command::Change(Op::RouteAdd(r)) =
            p("route add 10.1.0.0/16 via 192.168.1.1 dev eth0 metric 10").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            r.to_string(),
            "10.1.0.0/16 via 192.168.1.1 dev eth0 metric 10"
        );
        assert_eq!(
            p("route show").unwrap(),
            Command::RouteShow(Default::default())
        );
        assert_eq!(
            p("route ls").unwrap(),
            Command::RouteShow(Default::default())
        );
        let Command::Change(Op::RouteReplace(r)) =
            p("route replace default via 192.168.1.1").unwrap()
        else {
            panic!()
        };
        assert_eq!(r.to_string(), "0.0.0.0/0 via 192.168.1.1");
        assert_eq!(
            p("route del default").unwrap(),
            Command::Change(Op::RouteDel("0.0.0.0/0".parse().unwrap()))
        );
        let Command::RouteShow(sel) = p("route show default").unwrap() else {
            panic!()
        };
        assert_eq!(sel.only_exact(), Some("0.0.0.0/0".parse().unwrap()));
        assert!(matches!(
            p("route get 10.1.2.3").unwrap(),
            Command::RouteGet(_)
        ));
    }

    #[test]
    fn errors_name_the_value() {
        for (line, needle) in [
            ("route add 10.0.0.1/8 dev eth0", "10.0.0.0/8"),
            ("route add 10.0.0.0/8 via 1.2.3", "1.2.3"),
            ("route add 10.0.0.0/8 dev eth0 metric -1", "-1"),
            (
                "route add 10.0.0.0/8 dev eth0 metric 4294967296",
                "4294967296",
            ),
            ("route add 10.0.0.0/8 dev a/b", "a/b"),
            ("route add 10.0.0.0/8", "10.0.0.0/8"),
            ("route add 10.0.0.0/8 dev eth0 bogus 1", "bogus"),
            ("route add 10.0.0.0/8 dev eth0 dev eth1", "dev"),
            ("arp add zz:bb:cc:dd:ee:ff 10.0.0.1", "zz:bb:cc:dd:ee:ff"),
            ("arp add aa:bb:cc:dd:ee:ff 10.0.0.300", "10.0.0.300"),
            ("frobnicate", "frobnicate"),
        ] {
            let e = p(line).unwrap_err().to_string();
            assert!(e.contains(needle), "{line}: {e}");
        }
    }

    /// `ip route`'s multipath form: next hops after the metric, weight 1 unless given; one
    /// nexthop is an ordinary route; every refusal names the word or value.
    #[test]
    fn multipath_routes() {
        let route = |line: &str| match p(line).unwrap() {
            Command::Change(Op::RouteAdd(r) | Op::RouteChange(r) | Op::RouteReplace(r)) => r,
            other => panic!("{line}: {other:?}"),
        };
        let r = route(
            "route add 10.2.0.0/16 metric 10 nexthop via 192.0.2.1 dev eth0 weight 3 \
             nexthop dev eth1 nexthop via 192.0.2.2",
        );
        assert_eq!(
            r.to_string(),
            "10.2.0.0/16 metric 10 nexthop via 192.0.2.1 dev eth0 weight 3 \
             nexthop dev eth1 weight 1 nexthop via 192.0.2.2 weight 1"
        );
        assert!(matches!(
            p("route replace default nexthop via 192.0.2.1 nexthop via 192.0.2.2").unwrap(),
            Command::Change(Op::RouteReplace(r)) if r.dst == Prefix::DEFAULT && r.nexthops.len() == 2
        ));
        let one = route("route change 10.2.0.0/16 nexthop via 192.0.2.1 dev eth0 weight 7");
        assert_eq!(one.to_string(), "10.2.0.0/16 via 192.0.2.1 dev eth0");
        assert!(!one.is_multipath());
        let most: String = (0..256)
            .map(|i| format!(" nexthop via 10.{}.{}.1", i / 256 + 1, i % 256))
            .collect();
        assert_eq!(
            route(&format!("route add 10.2.0.0/16{most}"))
                .nexthops
                .len(),
            256
        );
        for (line, needles) in [
            (
                "route add 10.2.0.0/16 nexthop via 192.0.2.1 weight 0 nexthop via 192.0.2.2",
                &["\"0\"", "1..=256"][..],
            ),
            (
                "route add 10.2.0.0/16 nexthop via 192.0.2.1 nexthop via 192.0.2.2 weight 300",
                &["\"300\"", "1..=256"],
            ),
            (
                "route add 10.2.0.0/16 nexthop via 192.0.2.1 weight 0",
                &["\"0\""],
            ),
            (
                "route add 10.2.0.0/16 via 192.0.2.9 nexthop via 192.0.2.1 nexthop via 192.0.2.2",
                &["via 192.0.2.9", "before nexthop"],
            ),
            (
                "route add 10.2.0.0/16 dev eth0 nexthop via 192.0.2.1",
                &["dev eth0", "before nexthop"],
            ),
            (
                "route add 10.2.0.0/16 nexthop via 192.0.2.1 metric 5 nexthop via 192.0.2.2",
                &["\"metric\"", "nexthop 1", "before the first nexthop"],
            ),
            (
                "route add 10.2.0.0/16 nexthop via 192.0.2.1 nexthop weight 2",
                &["10.2.0.0/16", "via", "dev"],
            ),
            (
                "route add 10.2.0.0/16 nexthop",
                &["10.2.0.0/16", "via", "dev"],
            ),
            (
                "route add 10.2.0.0/16 nexthop via 192.0.2.1 via 192.0.2.2",
                &["\"via\" given twice in nexthop 1"],
            ),
            (
                "route add 10.2.0.0/16 nexthop via 224.0.0.1 nexthop via 192.0.2.2",
                &["224.0.0.1"],
            ),
            (
                "route add 10.2.0.0/16 nexthop via 192.0.2.1 weight",
                &["\"weight\" needs"],
            ),
            (
                "route add 10.2.0.0/16 nexthop via 192.0.2.1 onlink",
                &["\"onlink\"", "nexthop 1"],
            ),
            (
                "route add 10.2.0.0/16 weight 2 nexthop via 192.0.2.1",
                &["\"weight\""],
            ),
        ] {
            let e = p(line).unwrap_err().to_string();
            for n in needles {
                assert!(e.contains(n), "{line}: {n}: {e}");
            }
        }
        let too_many = format!("route add 10.2.0.0/16{most} nexthop via 192.0.2.1");
        let e = p(&too_many).unwrap_err().to_string();
        assert!(
            e.contains("257 nexthops") && e.contains("at most 256"),
            "{e}"
        );
        // In a batch too.
        assert!(matches!(
            parse_batch_line("route add 10.2.0.0/16 nexthop via 192.0.2.1 nexthop dev eth1 # two"),
            Ok(Some(Op::RouteAdd(r))) if r.nexthops.len() == 2
        ));
    }

    #[test]
    fn batch_lines() {
        assert_eq!(parse_batch_line("  # c").unwrap(), None);
        assert_eq!(
            parse_batch_line("route del 10.0.0.0/8 # gone").unwrap(),
            Some(Op::RouteDel("10.0.0.0/8".parse().unwrap()))
        );
        assert_eq!(parse_batch_line("").unwrap(), None);
        assert!(parse_batch_line("route show").is_err());
        assert!(parse_batch_line("route del 10.0.0.0/8").unwrap().is_some());
    }
}
