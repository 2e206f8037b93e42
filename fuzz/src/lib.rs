//! Shared code of rtm's fuzz targets: structured inputs ([`gen`]), the in-process daemon
//! ([`daemon`]) and checks on decoded values ([`check`]).

pub mod check;
pub mod daemon;
pub mod gen;
