//! Talking to the service manager (systemd's `Type=notify` protocol, through `sd-notify`):
//! `READY=1` once the socket and shared memory are up, `RELOADING=1` … `READY=1` around a
//! config reload, `STOPPING=1` at a clean stop, and `WATCHDOG=1` from the supervisor's
//! [`crate::watchdog`]. Without `NOTIFY_SOCKET` in the environment every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        // The manager went away or the socket is wrong: nothing to do but say so.
        warn!("cannot notify the service manager: {e}");
    } else {
        debug!(?states, "notified the service manager");
    }
}

/// The socket is bound and the tables are published: clients may connect.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A config reload begins; [`ready`] ends it.
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    // systemd ≥ 253 requires the monotonic time with RELOADING=1.
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    states.push(NotifyState::Status("reloading the config file"));
    send(&states);
}

/// A clean stop begins.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Every actor answered: the daemon is alive.
pub fn watchdog() {
    if let Err(e) = sd_notify::notify(&[NotifyState::Watchdog]) {
        warn!("cannot send the watchdog keep-alive: {e}");
    }
}

/// The watchdog period the service manager set (`WATCHDOG_USEC`, for this process), if any.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}
