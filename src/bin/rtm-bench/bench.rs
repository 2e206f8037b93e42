//! What every measured phase of a run works with.

use std::path::Path;

use anyhow::Result;
use rtm::{ArpEntry, Route};

use crate::args::{Args, Sizes};
use crate::clients::ClientProc;
use crate::daemon::Daemon;
use crate::deadline::Deadline;
use crate::perf::Perf;
use crate::report::Report;

/// What every phase works with: the daemon under test, the entries it is loaded with, the
/// overall deadline and the report the figures go to.
pub struct Bench<'a> {
    pub args: &'a Args,
    pub sizes: &'a Sizes,
    pub dl: &'a Deadline,
    pub daemon: &'a Daemon,
    pub routes: &'a [Route],
    pub arps: &'a [ArpEntry],
    /// Where the client processes write their stderr.
    pub client_log: &'a Path,
    pub rep: &'a mut Report,
}

impl Bench<'_> {
    /// A `perf record` of rtmd if `--perf-out` asked for `phase`.
    pub fn perf(&self, phase: &str) -> Result<Perf> {
        let out = if self.args.perf_phase == phase {
            self.args.perf_out.as_ref()
        } else {
            None
        };
        Perf::start(out, self.daemon.pid())
    }

    /// A client process of this run in `mode`.
    pub fn client(&self, mode: &str, name: &str) -> Result<ClientProc> {
        ClientProc::spawn(mode, &self.daemon.socket, name, self.client_log)
    }
}
