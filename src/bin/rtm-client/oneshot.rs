//! The one-shot readers `rtm-client dump|lookup|arp|neigh`: straight from shared memory,
//! print, exit. They ask a running daemon where its files are, and otherwise take
//! `--shm-dir`/`--instance`, so they keep working while the daemon is down.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rtm::shm::{
    ArpReader, NeighReader, Owners, Record, RouteReader, ShmError, ShmReader, TableReader,
};
use rtm::types::parse_addr;
use rtm::wire::{Caps, Table, Tables};
use rtm::{paths, ArpEntry, Client, Entry, IfName, MacAddr, Neighbour, Route};

use crate::cli::{self, json, render};
use crate::{print, Args, Cmd};

/// The shm paths and whose files to map: explicit flags first, then what a running daemon says
/// (files of root, ours or the daemon's uid from its socket's peer credentials), then the
/// defaults (files of root, ours or the shm directory's owner).
async fn shm_paths(args: &Args) -> (PathBuf, PathBuf, Owners) {
    if args.shm_dir.is_none() && args.instance.is_none() {
        let socket = paths::client_socket_path(args.socket.clone());
        let ask = Client::connect(&socket, "rtm-client-oneshot", Caps::default());
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(1), ask).await {
            let w = c.welcome();
            return (
                PathBuf::from(&w.route_shm),
                PathBuf::from(&w.arp_shm),
                c.shm_owners(),
            );
        }
    }
    let dir = args
        .shm_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(paths::DEFAULT_SHM_DIR));
    let inst = args.instance.as_deref().unwrap_or(paths::DEFAULT_INSTANCE);
    (
        paths::shm_path(&dir, inst, Table::Route),
        paths::shm_path(&dir, inst, Table::Arp),
        Owners::DirOwner,
    )
}

/// As [`open_fail`], saying why the neighbour file may be missing.
fn neigh_open_fail(path: &Path, e: ShmError) -> u8 {
    open_fail(path, rtm::mirror::neighbours_missing(e))
}

fn open_fail(path: &Path, e: impl std::fmt::Display) -> u8 {
    cli::warn(format_args!(
        "rtm-client: cannot read shared memory {}: {e}",
        path.display()
    ));
    3
}

/// Runs a one-shot command; returns the exit code.
pub async fn run(args: &Args, cmd: &Cmd) -> u8 {
    if let Cmd::Neigh { key, dev } = cmd {
        return neighbours(args, key, dev.as_deref()).await;
    }
    let stdin_keys =
        matches!(cmd, Cmd::Lookup { address: k, .. } | Cmd::Arp { mac: k } if k == "-");
    let hash = match cmd {
        Cmd::Lookup { flow_hash, .. } => *flow_hash,
        _ => None,
    };
    // Validate input before touching anything.
    let target = match cmd {
        Cmd::Dump => None,
        _ if stdin_keys => None,
        Cmd::Lookup { address, .. } => match parse_addr(address) {
            Ok(a) => Some(Ok(a)),
            Err(e) => {
                cli::warn(format_args!("rtm-client: {e}"));
                return 1;
            }
        },
        Cmd::Arp { mac } => match mac.parse::<MacAddr>() {
            Ok(m) => Some(Err(m)),
            Err(e) => {
                cli::warn(format_args!("rtm-client: {e}"));
                return 1;
            }
        },
        // Answered above.
        Cmd::Neigh { .. } => None,
    };
    let (route_path, arp_path, owners) = shm_paths(args).await;
    if stdin_keys {
        return match cmd {
            Cmd::Lookup { .. } => match RouteReader::open_owned(&route_path, owners) {
                Ok(r) => many(args.json, |line| {
                    let addr = parse_addr(line).map_err(|e| e.to_string())?;
                    match route_to(&r, addr, hash) {
                        Ok(found) => {
                            Ok(found.map(Entry::Route).ok_or(format!("no route to {addr}")))
                        }
                        Err(e) => Err(format!("cannot read shared memory: {e}")),
                    }
                }),
                Err(e) => open_fail(&route_path, e),
            },
            _ => match ArpReader::open_owned(&arp_path, owners) {
                Ok(r) => many(args.json, |line| {
                    let mac = line.parse::<MacAddr>().map_err(|e| e.to_string())?;
                    match r.lookup(&mac) {
                        Ok(found) => Ok(found
                            .map(|v| Entry::Arp(v.entry))
                            .ok_or(format!("no ARP entry for {mac}"))),
                        Err(e) => Err(format!("cannot read shared memory: {e}")),
                    }
                }),
                Err(e) => open_fail(&arp_path, e),
            },
        };
    }
    match target {
        Some(Ok(addr)) => {
            match RouteReader::open_owned(&route_path, owners).map(|r| route_to(&r, addr, hash)) {
                Ok(Ok(Some(v))) => print(&render::entry(&Entry::Route(v), args.json)),
                Ok(Ok(None)) => {
                    cli::warn(format_args!("rtm-client: no route to {addr}"));
                    return 2;
                }
                Ok(Err(e)) | Err(e) => return open_fail(&route_path, e),
            }
        }
        Some(Err(mac)) => match ArpReader::open_owned(&arp_path, owners).map(|r| r.lookup(&mac)) {
            Ok(Ok(Some(v))) => print(&render::entry(&Entry::Arp(v.entry), args.json)),
            Ok(Ok(None)) => {
                cli::warn(format_args!("rtm-client: no ARP entry for {mac}"));
                return 2;
            }
            Ok(Err(e)) | Err(e) => return open_fail(&arp_path, e),
        },
        None => return dump(args, &route_path, &arp_path, owners),
    }
    0
}

/// What `rtm-client neigh` asks for: the neighbours with an IP (on one device, or all), or
/// those with a MAC.
enum NeighQuery {
    Ip(Ipv4Addr, Option<IfName>),
    Mac(MacAddr),
}

impl NeighQuery {
    fn parse(key: &str, dev: Option<&str>) -> Result<NeighQuery, String> {
        let dev = dev
            .map(|d| d.parse::<IfName>().map_err(|e| e.to_string()))
            .transpose()?;
        if let Ok(ip) = parse_addr(key) {
            return Ok(NeighQuery::Ip(ip, dev));
        }
        match key.parse::<MacAddr>() {
            Ok(mac) if dev.is_none() => Ok(NeighQuery::Mac(mac)),
            Ok(mac) => Err(format!(
                "--dev goes with an IP address, not with the MAC {mac}: a MAC's neighbours are \
                 shown on every device"
            )),
            Err(_) => Err(format!(
                "invalid neighbour \"{}\": expected an IPv4 address or a MAC address",
                rtm::types::shown(key)
            )),
        }
    }

    fn ask(&self, r: &NeighReader) -> Result<Vec<Neighbour>, ShmError> {
        let found = match self {
            NeighQuery::Ip(ip, Some(dev)) => r.lookup(*ip, dev)?.into_iter().collect(),
            NeighQuery::Ip(ip, None) => r.by_ip(*ip)?,
            NeighQuery::Mac(mac) => r.by_mac(mac)?,
        };
        Ok(found.into_iter().map(|v| v.entry).collect())
    }
}

impl std::fmt::Display for NeighQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NeighQuery::Ip(ip, Some(dev)) => write!(f, "{ip} dev {dev}"),
            NeighQuery::Ip(ip, None) => write!(f, "{ip}"),
            NeighQuery::Mac(mac) => write!(f, "{mac}"),
        }
    }
}

/// `rtm-client neigh IP [--dev IFNAME] | MAC`: the kernel's neighbours with that key, one per
/// line, from shared memory. Exit 2 if none has it.
async fn neighbours(args: &Args, key: &str, dev: Option<&str>) -> u8 {
    let query = match NeighQuery::parse(key, dev) {
        Ok(q) => q,
        Err(e) => {
            cli::warn(format_args!("rtm-client: {e}"));
            return 1;
        }
    };
    let (route_path, _, owners) = shm_paths(args).await;
    let path = paths::neigh_shm_of(&route_path);
    let found = match NeighReader::open_owned(&path, owners).and_then(|r| query.ask(&r)) {
        Ok(found) => found,
        Err(e) => return neigh_open_fail(&path, e),
    };
    if found.is_empty() {
        cli::warn(format_args!("rtm-client: no neighbour {query}"));
        return 2;
    }
    let text: String = found
        .into_iter()
        .map(|n| render::entry(&Entry::Neigh(n), args.json))
        .collect();
    print(&text);
    0
}

/// The route to `addr`; with a flow hash, narrowed to the one path that flow takes (its
/// gateway and device, the route's metric and origin).
fn route_to(r: &RouteReader, addr: Ipv4Addr, hash: Option<u32>) -> Result<Option<Route>, ShmError> {
    let Some(hash) = hash else {
        return r.lookup(addr);
    };
    Ok(r.lookup_path(addr, hash)?.map(|(at, hop)| {
        let mut route = Route::new(at.dst, hop.via, hop.dev, hop.metric);
        route.origin = at.origin;
        route
    }))
}

/// `lookup -` / `arp -`: one key per line of standard input, one answer per line on standard
/// output, each written as soon as its key is read. A key with no entry prints `no route to
/// KEY` (JSON: `null`); a bad key prints `error: MESSAGE` (JSON: `null`) and its message on
/// stderr. Exit: 1 if any key was bad, else 2 if any had no entry, else 0.
fn many(json: bool, mut answer: impl FnMut(&str) -> Result<Result<Entry, String>, String>) -> u8 {
    use std::io::BufRead;
    let (mut bad, mut missing) = (false, false);
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let Ok(line) = line else {
            cli::warn(format_args!("rtm-client: line {}: not valid UTF-8", i + 1));
            bad = true;
            continue;
        };
        let key = line.trim();
        if key.is_empty() {
            continue;
        }
        let out = match answer(key) {
            Ok(Ok(e)) => render::entry(&e, json),
            Ok(Err(none)) => {
                missing = true;
                if json {
                    "null\n".to_string()
                } else {
                    none + "\n"
                }
            }
            Err(e) => {
                bad = true;
                cli::warn(format_args!("rtm-client: line {}: {e}", i + 1));
                if json {
                    "null\n".to_string()
                } else {
                    format!("error: {e}\n")
                }
            }
        };
        if cli::print(&out).is_err() {
            break;
        }
    }
    if bad {
        1
    } else if missing {
        2
    } else {
        0
    }
}

/// Every entry of a table file, sorted by key.
fn sorted_entries<R: Record>(path: &Path, owners: Owners) -> Result<Vec<R>, u8> {
    let reader = ShmReader::<R>::open_owned(path, owners).map_err(|e| open_fail(path, e))?;
    // `entries` comes in key order.
    Ok(reader.entries().into_iter().map(|v| v.entry).collect())
}

fn dump(args: &Args, route_path: &Path, arp_path: &Path, owners: Owners) -> u8 {
    let tables: Tables = args.table.into();
    let neigh_path = paths::neigh_shm_of(route_path);
    let read = || -> Result<_, u8> {
        let routes = tables
            .contains(Table::Route)
            .then(|| sorted_entries::<Route>(route_path, owners))
            .transpose()?;
        let arps = tables
            .contains(Table::Arp)
            .then(|| sorted_entries::<ArpEntry>(arp_path, owners))
            .transpose()?;
        let neighs = tables
            .contains(Table::Neigh)
            .then(
                || match ShmReader::<Neighbour>::open_owned(&neigh_path, owners) {
                    Ok(r) => Ok(r
                        .entries()
                        .into_iter()
                        .map(|v| v.entry)
                        .collect::<Vec<Neighbour>>()),
                    Err(e) => Err(neigh_open_fail(&neigh_path, e)),
                },
            )
            .transpose()?;
        Ok((routes, arps, neighs))
    };
    let (routes, arps, neighs) = match read() {
        Ok(t) => t,
        Err(code) => return code,
    };
    if args.json {
        let mut obj = serde_json::Map::new();
        if let Some(r) = &routes {
            let v: Vec<json::RouteJson> = r.iter().map(Into::into).collect();
            obj.insert(
                "routes".into(),
                serde_json::to_value(v).expect("serializes"),
            );
        }
        if let Some(a) = &arps {
            let v: Vec<json::ArpJson> = a.iter().map(Into::into).collect();
            obj.insert("arps".into(), serde_json::to_value(v).expect("serializes"));
        }
        if let Some(n) = &neighs {
            let v: Vec<json::NeighJson> = n.iter().map(Into::into).collect();
            obj.insert(
                "neighs".into(),
                serde_json::to_value(v).expect("serializes"),
            );
        }
        print(&(serde_json::Value::Object(obj).to_string() + "\n"));
    } else {
        if let Some(r) = &routes {
            print(&render::routes(r, false));
        }
        if let Some(a) = &arps {
            print(&render::arps(a, false));
        }
        if let Some(n) = &neighs {
            print(&render::neighbours(n, false));
        }
    }
    0
}
