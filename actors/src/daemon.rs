//! Start-up and the main loop of `rtmd`: claim the socket and the shared-memory instance, create
//! the table files, then run the actor system until a clean stop.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use actix::prelude::*;
use rtm_proto::shm::{Access, ShmError, ShmWriter, TableWriter};
use rtm_proto::Neighbour;
use rustix::fs::{flock, FlockOperation};
use tracing::{info, warn};

use crate::config::Config;
use crate::counters::Health;
use crate::journal::{Journal, JournalError};
use crate::signal_broker::OsSignals;
use crate::supervisor::{Boot, Supervisor};
use crate::table::neigh::NeighTable;
use crate::table::{TableActor, TableRecord};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("another rtmd is already serving {0}")]
    SocketBusy(PathBuf),
    #[error("shared-memory instance {instance:?} in {dir} is in use by another rtmd")]
    InstanceBusy { instance: String, dir: PathBuf },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Shm(#[from] ShmError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the {table} table in the state directory holds {len} entries, more than its capacity {capacity}; raise --{table}-capacity")]
    OverCapacity {
        table: &'static str,
        len: usize,
        capacity: usize,
    },
}

/// Opens a table: with a state directory, restores it from its snapshot and journal; then
/// publishes its shared memory, complete, as a new generation (readers of a previous daemon's
/// file keep reading that one until the new one is whole and in its place).
fn open_table<R: TableRecord>(
    config: &Config,
    path: &Path,
    limit: usize,
    name: &'static str,
    health: &Arc<Health>,
) -> Result<TableActor<R>, StartError> {
    let access = Access {
        mode: config.shm_mode,
        group: config.shm_gid,
    };
    let Some(dir) = &config.state_dir else {
        let shm = ShmWriter::<R>::create(path, limit, access, Vec::new(), 0)?;
        return Ok(TableActor::new(shm, health.clone()));
    };
    let (journal, recovered) = Journal::<R>::open(dir, name, config.fsync)?;
    if recovered.entries.len() > limit {
        return Err(StartError::OverCapacity {
            table: name,
            len: recovered.entries.len(),
            capacity: limit,
        });
    }
    if let Some(at) = recovered.truncated_tail {
        warn!(
            table = name,
            offset = at,
            "dropped a torn last journal write (never acknowledged)"
        );
    }
    info!(
        table = name,
        entries = recovered.entries.len(),
        seq = recovered.seq,
        replayed = recovered.replayed,
        "table restored from the state directory"
    );
    let seq = recovered.seq;
    crate::faults::stall_before_publish(name);
    let entries = recovered.entries.into_values().collect();
    let shm = ShmWriter::<R>::create(path, limit, access, entries, seq)?;
    Ok(TableActor::durable(shm, health.clone(), journal, seq))
}

/// The kernel's neighbours, with `--kernel import` only: empty at every start, with no
/// journal (the kernel mirror dumps them again), as large as the ARP table may be
/// (`--arp-capacity`).
fn open_neigh_table(
    config: &Config,
    health: &Arc<Health>,
) -> Result<Option<NeighTable>, StartError> {
    let path = config.neigh_shm_path();
    if !config.kernel.as_ref().is_some_and(|k| k.import) {
        // One left by an rtmd that imported (killed, or stopped with --keep-shm) would be read
        // as this instance's: this one keeps none. The instance lock is held.
        match fs::remove_file(&path) {
            Ok(()) => info!(
                path = %path.display(),
                "removed the neighbour table file of an earlier rtmd with --kernel import"
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            // Not ours to remove (another user's, planted in a shared directory): clients do
            // not trust a file of another owner, so it is no reason not to start.
            Err(e) => warn!(
                path = %path.display(),
                "cannot remove a neighbour table file this rtmd does not keep: {e}"
            ),
        }
        return Ok(None);
    }
    let access = Access {
        mode: config.shm_mode,
        group: config.shm_gid,
    };
    let shm = ShmWriter::<Neighbour>::create(&path, config.arp_capacity, access, Vec::new(), 0)?;
    Ok(Some(TableActor::new(shm, health.clone())))
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StartError + 'a {
    move |source| StartError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Lock files this start holds, removed if it fails before the daemon runs (a clean stop
/// removes them too). They must be dropped while their locks are still held.
struct HeldLockFiles(Vec<PathBuf>);

impl Drop for HeldLockFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}

/// Takes an exclusive lock held for the daemon's lifetime; `Ok(None)` if someone holds it.
fn try_lock(path: &Path) -> Result<Option<File>, StartError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io("cannot open lock file", path))?;
    match flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(io("cannot lock", path)(e.into())),
    }
}

/// Claims the socket path: takes its lock, refusing to take over a live daemon's socket.
fn claim_socket(config: &Config) -> Result<File, StartError> {
    let path = &config.socket;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::socket_file::create_dir(path, dir).map_err(io("unusable socket directory", dir))?;
    }
    let lock_path = config.socket_lock_path();
    try_lock(&lock_path)?.ok_or_else(|| StartError::SocketBusy(path.clone()))
}

/// Binds the claimed socket, replacing a stale one. Done last, once the tables are ready: a
/// client that can connect finds them in shared memory.
fn bind_socket(config: &Config) -> Result<UnixListener, StartError> {
    let path = &config.socket;
    match fs::symlink_metadata(path) {
        Ok(meta) => {
            // A daemon that predates the lock file, or one in another mount namespace, still
            // answers: do not steal its socket.
            if meta.file_type().is_socket() && UnixStream::connect(path).is_ok() {
                return Err(StartError::SocketBusy(path.clone()));
            }
            fs::remove_file(path).map_err(io("cannot remove stale socket", path))?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot inspect socket path", path)(e)),
    }
    let listener =
        crate::socket_file::bind_owner_only(path).map_err(io("cannot bind socket", path))?;
    crate::faults::stall_before_publish("socket");
    if let Some(gid) = config.socket_gid {
        rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(|e| io("cannot set socket group", path)(e.into()))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(config.socket_mode))
        .map_err(io("cannot set socket mode", path))?;
    Ok(listener)
}

/// Runs the daemon until it stops; returns the process exit code.
pub fn run(config: Config) -> Result<i32, StartError> {
    let system = System::new();
    // Before the socket exists: a SIGTERM or SIGHUP from now on is handled, never fatal.
    let signals = system
        .block_on(async { OsSignals::install() })
        .map_err(io("cannot install signal handlers", Path::new("-")))?;
    let socket_lock = claim_socket(&config)?;
    // Dropped before the locks: a start that fails from here removes the lock files it holds.
    let mut held = HeldLockFiles(vec![config.socket_lock_path()]);
    fs::create_dir_all(&config.shm_dir)
        .map_err(io("cannot create shm directory", &config.shm_dir))?;
    let shm_lock_path = config.shm_lock_path();
    let shm_lock = try_lock(&shm_lock_path)?.ok_or_else(|| StartError::InstanceBusy {
        instance: config.instance.clone(),
        dir: config.shm_dir.clone(),
    })?;
    held.0.push(shm_lock_path);
    // Bound before the tables: a dashboard address in use stops the start with nothing to undo.
    let http = crate::http::bind(&config)?;
    let health = Arc::new(Health::new(config.restart_budget));
    let nofile = crate::connections::raise_fd_limit();
    health
        .connections
        .size_to(nofile, config.limits.max_connections);
    let route = open_table(
        &config,
        &config.route_shm_path(),
        config.route_capacity,
        "route",
        &health,
    )?;
    let arp = match open_table(
        &config,
        &config.arp_shm_path(),
        config.arp_capacity,
        "arp",
        &health,
    ) {
        Ok(arp) => arp,
        Err(e) => {
            route.discard();
            return Err(e);
        }
    };
    let neigh = match open_neigh_table(&config, &health) {
        Ok(neigh) => neigh,
        Err(e) => {
            route.discard();
            arp.discard();
            return Err(e);
        }
    };
    let socket = match bind_socket(&config) {
        Ok(socket) => socket,
        Err(e) => {
            route.discard();
            arp.discard();
            if let Some(n) = neigh {
                n.discard();
            }
            return Err(e);
        }
    };
    // Started: from here the supervisor's clean stop removes the socket and the lock files.
    let mut cleanup = vec![config.socket.clone()];
    cleanup.extend(http.socket_path());
    cleanup.append(&mut held.0);
    let boot = Boot {
        config,
        health,
        socket,
        route,
        arp,
        neigh,
        cleanup,
        signals,
        http,
    };
    system.block_on(async move {
        Supervisor::new(boot).start();
    });
    let code = system
        .run_with_code()
        .map_err(io("actor system failed", Path::new("-")))?;
    // The locks are released only now, after the files they guard are gone.
    drop((socket_lock, shm_lock));
    Ok(code)
}
