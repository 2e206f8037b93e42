//! The routes page reads the route table's shared-memory file directly, as any client may:
//! one page of a 1M-route table is a ranged read of about a hundred entries (whole slots
//! before it are counted from their block words), not a copy of the table from its actor.

use std::sync::Mutex;

use rtm_proto::shm::{RouteReader, ShmError, TableReader, Versioned};
use rtm_proto::{Prefix, Route};

/// The route file, opened on first use and reopened when rtmd replaces it (a restart of the
/// table actor, a flush that recreates it).
#[derive(Debug)]
pub struct RouteFile {
    path: String,
    reader: Mutex<Option<RouteReader>>,
}

/// One page of the routes inside a prefix, and how many there are in all.
#[derive(Debug)]
pub struct RoutePage {
    pub rows: Vec<Versioned<Route>>,
    pub total: usize,
}

impl RouteFile {
    pub fn new(path: &str) -> RouteFile {
        RouteFile {
            path: path.to_string(),
            reader: Mutex::new(None),
        }
    }

    /// Runs `f` on a reader of the current file.
    fn with<T>(&self, f: impl FnOnce(&RouteReader) -> T) -> Result<T, ShmError> {
        let mut g = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        match g.as_mut() {
            Some(r) => {
                r.refresh()?;
            }
            None => *g = Some(RouteReader::open(std::path::Path::new(&self.path))?),
        }
        Ok(f(g.as_ref().expect("opened above")))
    }

    /// The `skip`th route inside `within` on, at most `limit`, and the count of all inside it.
    pub fn page(&self, within: &Prefix, skip: usize, limit: usize) -> Result<RoutePage, ShmError> {
        self.with(|r| RoutePage {
            total: r.count_within(within),
            rows: r.entries_within(within, skip, limit),
        })
    }

    /// The route with exactly the prefix `p`, if there is one.
    pub fn get(&self, p: &Prefix) -> Result<Option<Route>, ShmError> {
        self.with(|r| {
            r.entries_from(p, 1)
                .into_iter()
                .map(|v| v.entry)
                .find(|e| e.dst == *p)
        })
    }
}
