//! Whose table files a reader maps. A file planted by another local user in the shared-memory
//! directory (or named by a fake daemon) would serve fake tables: a reader maps only files owned
//! by root, by itself, or by the uid it has reason to trust — the daemon's, as its socket
//! reports it (`SO_PEERCRED`), or, with the daemon down, the shm directory's owner.

use std::path::Path;

/// The uid, besides root and the reader's own effective uid, whose table files a reader maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// The daemon's uid, as the peer credentials of its socket report it: a client the daemon
    /// registered, mapping the paths the daemon named.
    Daemon(u32),
    /// The owner of the directory that holds the file: a reader with no daemon to ask (the
    /// one-shot readers while rtmd is down, a program given a path).
    DirOwner,
}

impl Owners {
    /// The uids a file at `path` may be owned by: root, the caller's effective uid, and the
    /// daemon's uid or the directory's owner; ascending, without repeats.
    pub fn uids(self, path: &Path) -> Vec<u32> {
        let mut v = vec![0, rustix::process::geteuid().as_raw()];
        match self {
            Owners::Daemon(uid) => v.push(uid),
            Owners::DirOwner => v.extend(dir_owner(path)),
        }
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The owner of the directory holding `path` (`None` if it cannot be read).
fn dir_owner(path: &Path) -> Option<u32> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    rustix::fs::stat(dir).ok().map(|st| st.st_uid)
}

/// `uid 0`, `uid 0 or uid 999`, `uid 0, uid 999 or uid 1000`.
pub(crate) fn uid_list(uids: &[u32]) -> String {
    let words: Vec<String> = uids.iter().map(|u| format!("uid {u}")).collect();
    match words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => "nobody".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_lists_read_as_a_sentence() {
        assert_eq!(uid_list(&[0]), "uid 0");
        assert_eq!(uid_list(&[0, 999]), "uid 0 or uid 999");
        assert_eq!(uid_list(&[0, 999, 1000]), "uid 0, uid 999 or uid 1000");
    }

    #[test]
    fn root_and_the_callers_uid_are_always_accepted() {
        let me = rustix::process::geteuid().as_raw();
        let daemon = Owners::Daemon(4242).uids(Path::new("/nonexistent/x.route"));
        assert!(daemon.contains(&0) && daemon.contains(&me) && daemon.contains(&4242));
        // An unreadable directory adds nobody.
        let dir = Owners::DirOwner.uids(Path::new("/nonexistent/x.route"));
        assert_eq!(dir, if me == 0 { vec![0] } else { vec![0, me] });
    }
}
