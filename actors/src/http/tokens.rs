//! Dashboard tokens: 256 random bits, minted for the uid the kernel reports on the Unix socket,
//! valid until they expire or are revoked. Kept in memory only: a restarted rtmd forgets them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// Most live tokens at once; minting beyond drops the ones closest to expiry first.
pub const MAX_TOKENS: usize = 4096;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub uid: u32,
    /// Decided when the token was minted, by the same rule as `rtmctl`'s changes.
    pub may_change: bool,
    pub expires: Instant,
}

#[derive(Debug)]
pub struct TokenStore {
    ttl: Duration,
    live: Mutex<HashMap<String, Grant>>,
}

impl TokenStore {
    pub fn new(ttl: Duration) -> Self {
        TokenStore {
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Grant>> {
        // A panic while holding the lock cannot leave the map half-changed.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new token for `uid`.
    pub fn mint(&self, uid: u32, may_change: bool) -> (String, Grant) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let grant = Grant {
            uid,
            may_change,
            expires: Instant::now() + self.ttl,
        };
        let mut live = self.live();
        let now = Instant::now();
        live.retain(|_, g| g.expires > now);
        while live.len() >= MAX_TOKENS {
            let Some(oldest) = live
                .iter()
                .min_by_key(|(_, g)| g.expires)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            live.remove(&oldest);
        }
        live.insert(token.clone(), grant);
        (token, grant)
    }

    /// The grant of a live token; an expired one is forgotten.
    pub fn check(&self, token: &str) -> Option<Grant> {
        let mut live = self.live();
        let g = *live.get(token)?;
        if g.expires <= Instant::now() {
            live.remove(token);
            return None;
        }
        Some(g)
    }

    /// Revokes one token; whether it was live.
    pub fn revoke(&self, token: &str) -> bool {
        self.live().remove(token).is_some()
    }

    /// Revokes every token of `uid`; how many there were.
    pub fn revoke_uid(&self, uid: u32) -> usize {
        let mut live = self.live();
        let before = live.len();
        live.retain(|_, g| g.uid != uid);
        before - live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_check_expire_revoke() {
        let s = TokenStore::new(Duration::from_millis(50));
        let (t, g) = s.mint(1000, false);
        assert_eq!(t.len(), 64);
        assert_eq!(s.check(&t), Some(g));
        assert_eq!(s.check("nope"), None);
        let (t2, _) = s.mint(1000, false);
        assert_ne!(t, t2);
        assert_eq!(s.revoke_uid(1000), 2);
        assert_eq!(s.check(&t), None);
        let (t3, _) = s.mint(0, true);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(s.check(&t3), None);
        assert!(!s.revoke(&t3));
    }
}
