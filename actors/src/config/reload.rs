//! A config reload (SIGHUP): the file is read and checked whole, as at start; then each key
//! whose value changed is applied if it is a reloadable limit, or reported as needing a
//! restart (and not applied), or reported as overridden by a flag.

use super::{check, Config, ConfigError, LimitValues};

/// The keys a reload applies (see [`super::limits`]).
pub const RELOADABLE: [&str; 6] = [
    "max-clients",
    "client-queue",
    "handshake-timeout",
    "max-frame",
    "max-inflight",
    "max-batch",
];

/// One key whose value in the file changed; values as TOML, `None` where the file omits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What a reload found.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// The limits now in force.
    pub limits: LimitValues,
    /// Reloadable keys that changed: applied.
    pub applied: Vec<Change>,
    /// Keys that changed but take effect only at the next start: not applied.
    pub need_restart: Vec<Change>,
    /// Keys that changed in the file while a flag sets them: the flag still wins.
    pub overridden: Vec<Change>,
}

impl Config {
    /// Re-reads the config file; `Ok(None)` without one. On an error nothing changes.
    pub fn reload(&mut self) -> Result<Option<Reloaded>, ConfigError> {
        let Some(path) = self.config_file.clone() else {
            return Ok(None);
        };
        let (new_file, text) = check::load(&path)?;
        let placed = |e| check::in_file(e, Some((&path, &text)), &self.flags);
        let candidate = Config::resolve(&self.flags.over(&new_file)).map_err(placed)?;
        let mut out = Reloaded {
            limits: candidate.limits,
            ..Reloaded::default()
        };
        let flags = self.flags.entries();
        let old = self.file.entries();
        for ((key, old), ((_, new), (_, flag))) in old
            .into_iter()
            .zip(new_file.entries().into_iter().zip(flags))
        {
            if old == new {
                continue;
            }
            let change = Change { key, old, new };
            if flag.is_some() {
                out.overridden.push(change);
            } else if RELOADABLE.contains(&change.key.as_str()) {
                self.file.take_key(&change.key, &new_file);
                out.applied.push(change);
            } else {
                out.need_restart.push(change);
            }
        }
        self.limits = out.limits;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn reload_sorts_changes_and_applies_only_limits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rtmd.toml");
        std::fs::write(
            &p,
            "max-clients = 3\nroute-capacity = 100\nmax-batch = 10\n",
        )
        .unwrap();
        let flags = Settings {
            max_batch: Some(7),
            ..Settings::default()
        };
        let mut c = Config::from_flags(flags, Some(p.clone())).unwrap();
        std::fs::write(&p, "max-clients = 5\nroute-capacity = 5\nmax-batch = 20\n").unwrap();
        let r = c.reload().unwrap().unwrap();
        let keys = |v: &[Change]| v.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&r.applied), ["max-clients"]);
        assert_eq!(keys(&r.need_restart), ["route-capacity"]);
        assert_eq!(keys(&r.overridden), ["max-batch"]);
        assert_eq!((r.limits.max_clients, r.limits.max_batch), (5, 7));
        assert_eq!(c.route_capacity, 100);
        // Still pending: a second reload warns again.
        let r = c.reload().unwrap().unwrap();
        assert!(r.applied.is_empty());
        assert_eq!(keys(&r.need_restart), ["route-capacity"]);
        // A bad value anywhere refuses the whole reload.
        std::fs::write(&p, "max-clients = 9\narp-capacity = 0\n").unwrap();
        let e = c.reload().unwrap_err().to_string();
        assert!(e.contains(":2:1: arp-capacity"), "{e}");
        assert_eq!(c.limits.max_clients, 5);
    }
}
