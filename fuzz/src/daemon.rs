//! An in-process `rtmd` for the request-handling fuzz target.
//!
//! The daemon runs once per fuzz process, on its own thread, with a temporary socket and shm
//! directory and small tables (so "table full" is reachable). Being in-process, its code is
//! instrumented and steers the fuzzer; and because libFuzzer's panic hook aborts on any panic
//! on any thread, a panic inside an actor is reported as a crash even where the daemon would
//! catch it and restart the actor.
//!
//! Per input: connect, write the input's bytes (from a writer thread, while this thread reads
//! and decodes everything the daemon sends), then a sentinel `Status` request and a half-close;
//! wait for the sentinel's answer or EOF. Then, on a fresh connection, the daemon must answer
//! `Status`, and the tables must agree with themselves: `show` vs `status` counts, capacities,
//! and the shared-memory files vs `show`. Finally both tables are flushed so that every input
//! starts from empty tables (crashes reproduce from the input alone).

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use rtm_actors::config::{Config, Settings};
use rtm_proto::shm::{ArpReader, RouteReader, TableReader};
use rtm_proto::wire::{
    self, Caps, ClientMsg, Hello, Op, Reply, Request, ServerMsg, Status, Tables,
};
use rtm_proto::{ArpEntry, Route};

pub const ROUTE_CAPACITY: usize = 48;
pub const ARP_CAPACITY: usize = 16;
/// Small, so oversized frames are cheap to produce.
pub const MAX_FRAME: usize = 16 << 10;
/// The harness's own request id (fuzzed requests never use it).
pub const SENTINEL: u32 = u32::MAX;
/// How long one input may take before the daemon counts as stalled.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub struct Daemon {
    pub socket: PathBuf,
    pub route_shm: PathBuf,
    pub arp_shm: PathBuf,
    _dir: tempfile::TempDir,
}

static DAEMON: OnceLock<Daemon> = OnceLock::new();

/// The process-wide daemon, started on first use.
pub fn daemon() -> &'static Daemon {
    DAEMON.get_or_init(start)
}

fn start() -> Daemon {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // libFuzzer's main is not Rust's: SIGPIPE is not ignored for us. And a fuzzed Hello may
    // announce a SIGUSR1 handler for this very process, which a flush then signals.
    for sig in [Signal::SIGPIPE, Signal::SIGUSR1] {
        // SAFETY: installing SIG_IGN runs no code of ours in signal context.
        unsafe { signal(sig, SigHandler::SigIgn) }.expect("ignore signal");
    }
    let dir = tempfile::Builder::new()
        .prefix("rtm-fuzz-")
        .tempdir()
        .expect("tempdir");
    let socket = dir.path().join("rtm.sock");
    let shm_dir = dir.path().join("shm");
    // Through the daemon's own settings, so that the harness gets exactly the checks rtmd's
    // command line gets.
    let settings = Settings {
        socket: Some(socket.clone()),
        shm_dir: Some(shm_dir.clone()),
        instance: Some("fuzz".into()),
        route_capacity: Some(ROUTE_CAPACITY),
        arp_capacity: Some(ARP_CAPACITY),
        socket_mode: Some("0600".into()),
        max_clients: Some(64),
        client_queue: Some(256),
        handshake_timeout: Some("5s".into()),
        max_frame: Some(MAX_FRAME),
        ..Settings::default()
    };
    let config = Config::resolve(&settings).expect("the harness's settings are valid");
    let route_shm = config.route_shm_path();
    let arp_shm = config.arp_shm_path();
    thread::Builder::new()
        .name("rtmd".into())
        .spawn(move || {
            let r = rtm_actors::run(config);
            panic!(
                "the in-process rtmd stopped: {:?}",
                r.map_err(|e| e.to_string())
            );
        })
        .expect("spawn rtmd thread");
    let end = Instant::now() + DEADLINE;
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < end, "rtmd did not come up");
        thread::sleep(Duration::from_millis(5));
    }
    Daemon {
        socket,
        route_shm,
        arp_shm,
        _dir: dir,
    }
}

fn frame(msg: &ClientMsg) -> Vec<u8> {
    crate::gen::framed(&wire::encode(msg).expect("encode"))
}

/// Reads one frame; `None` at EOF (or reset). Panics past `end`: the daemon stalled.
fn read_frame(s: &mut UnixStream, end: Instant, what: &str) -> Option<ServerMsg> {
    let mut len = [0u8; 4];
    if !read_exact(s, &mut len, end, what) {
        return None;
    }
    let n = u32::from_be_bytes(len) as usize;
    assert!(
        n <= wire::MAX_SERVER_FRAME,
        "{what}: daemon sent a {n}-byte frame"
    );
    let mut body = vec![0u8; n];
    if !read_exact(s, &mut body, end, what) {
        return None;
    }
    match wire::decode::<ServerMsg>(&body) {
        Ok(m) => Some(m),
        Err(e) => panic!("{what}: the daemon sent a frame that does not decode: {e}"),
    }
}

fn read_exact(s: &mut UnixStream, buf: &mut [u8], end: Instant, what: &str) -> bool {
    let mut got = 0;
    while got < buf.len() {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{what}: the daemon stalled (no answer, no EOF)"
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{what}: read: {e}"),
        }
    }
    true
}

impl Daemon {
    /// Writes `bytes` (then a sentinel request and a half-close) on a new connection and
    /// reads everything until the sentinel's answer or EOF.
    pub fn session(&self, bytes: Vec<u8>) {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        let mut w = s.try_clone().expect("clone socket");
        w.set_write_timeout(Some(DEADLINE)).unwrap();
        let writer = thread::spawn(move || {
            // The daemon may close the session at any point: write errors are expected.
            let _ = w.write_all(&bytes);
            let _ = w.write_all(&frame(&ClientMsg::Request {
                id: SENTINEL,
                req: Request::Status,
            }));
            let _ = w.shutdown(Shutdown::Write);
        });
        let end = Instant::now() + DEADLINE;
        while let Some(msg) = read_frame(&mut s, end, "fuzzed session") {
            if let ServerMsg::Reply { id: SENTINEL, .. } = msg {
                break;
            }
        }
        drop(s);
        writer.join().expect("writer thread");
    }

    /// A fresh one-shot connection after its Hello.
    fn connect(&self) -> UnixStream {
        let mut s = UnixStream::connect(&self.socket).expect("connect for the health check");
        s.write_all(&frame(&ClientMsg::Hello(Hello {
            version: wire::PROTOCOL_VERSION,
            name: "fuzz-health".into(),
            caps: Caps::default(),
        })))
        .unwrap();
        s
    }

    /// Sends one request and collects its answer (all chunks of a `show`).
    fn request(&self, s: &mut UnixStream, id: u32, req: Request) -> Vec<Reply> {
        s.write_all(&frame(&ClientMsg::Request {
            id,
            req: req.clone(),
        }))
        .unwrap_or_else(|e| panic!("health check {req:?}: write: {e}"));
        let end = Instant::now() + DEADLINE;
        let mut out = Vec::new();
        loop {
            let what = format!("health check {req:?}");
            match read_frame(s, end, &what) {
                None => panic!("{what}: the daemon closed a healthy session"),
                Some(ServerMsg::Welcome(_)) | Some(ServerMsg::Events(_)) => {}
                Some(ServerMsg::Refused(f)) => panic!("{what}: refused: {f}"),
                Some(ServerMsg::Reply { id: rid, result }) => {
                    assert_eq!(rid, id, "{what}: reply to another request");
                    let reply = result.unwrap_or_else(|f| panic!("{what}: failed: {f}"));
                    let more = matches!(
                        reply,
                        Reply::Routes { more: true, .. } | Reply::Arps { more: true, .. }
                    );
                    out.push(reply);
                    if !more {
                        return out;
                    }
                }
            }
        }
    }

    /// The daemon still answers, its tables are consistent; then both tables are emptied.
    pub fn check_and_reset(&self) {
        let mut s = self.connect();
        let status = match self.request(&mut s, 1, Request::Status).as_slice() {
            [Reply::Status(st)] => st.clone(),
            other => panic!("status answered {other:?}"),
        };
        check_status(&status);
        if status.routes == 0 && status.arps == 0 {
            return;
        }
        let mut routes: Vec<Route> = Vec::new();
        for r in self.request(&mut s, 2, Request::RouteShow(None)) {
            match r {
                Reply::Routes { routes: mut v, .. } => routes.append(&mut v),
                other => panic!("route show answered {other:?}"),
            }
        }
        let mut arps: Vec<ArpEntry> = Vec::new();
        for r in self.request(&mut s, 3, Request::ArpShow(None)) {
            match r {
                Reply::Arps { entries: mut v, .. } => arps.append(&mut v),
                other => panic!("arp show answered {other:?}"),
            }
        }
        assert_eq!(routes.len() as u64, status.routes, "route show vs status");
        assert_eq!(arps.len() as u64, status.arps, "arp show vs status");
        for r in &routes {
            assert!(r.validate().is_ok(), "the daemon stored {r:?}");
        }
        // Shared memory holds exactly the authoritative copy.
        let mut shm_routes: Vec<Route> = RouteReader::open(&self.route_shm)
            .expect("open route shm")
            .entries()
            .into_iter()
            .map(|v| v.entry)
            .collect();
        let mut shm_arps: Vec<ArpEntry> = ArpReader::open(&self.arp_shm)
            .expect("open arp shm")
            .entries()
            .into_iter()
            .map(|v| v.entry)
            .collect();
        routes.sort_by_key(|r| r.dst);
        shm_routes.sort_by_key(|r| r.dst);
        arps.sort_by_key(|a| a.mac);
        shm_arps.sort_by_key(|a| a.mac);
        assert_eq!(routes, shm_routes, "route show vs shared memory");
        assert_eq!(arps, shm_arps, "arp show vs shared memory");
        match self
            .request(&mut s, 4, Request::Apply(Op::Flush(Tables::All)))
            .as_slice()
        {
            [Reply::Done { .. }] => {}
            other => panic!("flush answered {other:?}"),
        }
    }
}

fn check_status(st: &Status) {
    assert!(st.routes <= st.route_capacity, "{st:?}");
    assert!(st.arps <= st.arp_capacity, "{st:?}");
    assert_eq!(st.route_capacity, ROUTE_CAPACITY as u64, "{st:?}");
    assert_eq!(st.arp_capacity, ARP_CAPACITY as u64, "{st:?}");
    let r = &st.restarts;
    assert_eq!(
        r.route + r.arp + r.broker + r.listener,
        0,
        "an actor failed and was restarted: {:?}",
        st.last_failure
    );
}
