//! The `rtmctl` command table: every object, its commands, their arguments and one line on
//! what each does. The parser (`grammar`) looks commands and aliases up here, and the help
//! (`rtmctl help`, `--help` at every level), the shell completions and the man page are all
//! built from it, so they cannot drift apart.

use clap::{Arg, ArgAction, Command as ClapCommand};

/// One command of an object (`route add`).
pub struct Verb {
    /// The name, then its aliases.
    pub names: &'static [&'static str],
    /// Its arguments, in docs/cli.md's notation.
    pub args: &'static str,
    pub about: &'static str,
}

/// An object (`route`) with its commands, or a command on its own (`status`: no verbs).
pub struct Object {
    pub names: &'static [&'static str],
    pub about: &'static str,
    /// Arguments of an object without verbs.
    pub args: &'static str,
    pub verbs: &'static [Verb],
}

const SELECTORS: &str =
    "[PREFIX | exact PREFIX | root PREFIX | match PREFIX] [dev IFNAME] [via GW]";

/// A route: one next hop, or several as `ip route` gives them (weight 1..=256, default 1).
const ROUTE_SPEC: &str = "PREFIX [via GW] [dev IFNAME] [metric N] | \
     PREFIX [metric N] nexthop [via GW] [dev IFNAME] [weight W] nexthop ...";

const ROUTE_VERBS: &[Verb] = &[
    Verb {
        names: &["add"],
        args: ROUTE_SPEC,
        about: "Add a route; fails if PREFIX exists",
    },
    Verb {
        names: &["change"],
        args: ROUTE_SPEC,
        about: "Set the whole route of an existing PREFIX (omitted fields take their defaults)",
    },
    Verb {
        names: &["replace"],
        args: ROUTE_SPEC,
        about: "Create the route or set the whole of it",
    },
    Verb {
        names: &["del", "delete"],
        args: "PREFIX",
        about: "Delete the route of PREFIX; fails if absent",
    },
    Verb {
        names: &["show", "list", "ls"],
        args: SELECTORS,
        about: "List routes, all or those the selectors pick (root: inside PREFIX, match: covering it)",
    },
    Verb {
        names: &["get"],
        args: "ADDRESS",
        about: "The route a lookup of ADDRESS finds (longest-prefix match)",
    },
    Verb {
        names: &["flush"],
        args: SELECTORS,
        about: "Empty the route table (clients get SIGUSR1); with selectors, delete the routes they pick",
    },
];

const ARP_VERBS: &[Verb] = &[
    Verb {
        names: &["add"],
        args: "MAC IP [dev IFNAME]",
        about: "Add an ARP entry; fails if MAC exists",
    },
    Verb {
        names: &["change"],
        args: "MAC IP [dev IFNAME]",
        about: "Set the whole entry of an existing MAC",
    },
    Verb {
        names: &["replace"],
        args: "MAC IP [dev IFNAME]",
        about: "Create the entry or set the whole of it",
    },
    Verb {
        names: &["del", "delete"],
        args: "MAC",
        about: "Delete the entry of MAC; fails if absent",
    },
    Verb {
        names: &["show", "list", "ls"],
        args: "[MAC] [dev IFNAME]",
        about: "List ARP entries, all or those the selectors pick",
    },
    Verb {
        names: &["get"],
        args: "MAC",
        about: "The entry of MAC",
    },
    Verb {
        names: &["flush"],
        args: "[dev IFNAME]",
        about: "Empty the ARP table (clients get SIGUSR1); with dev, delete its entries",
    },
];

const NEIGH_VERBS: &[Verb] = &[
    Verb {
        names: &["add"],
        args: "IP lladdr MAC [dev IFNAME]",
        about: "As arp add, in ip neigh's order (MAC IP also accepted)",
    },
    Verb {
        names: &["change"],
        args: "IP lladdr MAC [dev IFNAME]",
        about: "As arp change, in ip neigh's order",
    },
    Verb {
        names: &["replace"],
        args: "IP lladdr MAC [dev IFNAME]",
        about: "As arp replace, in ip neigh's order",
    },
    Verb {
        names: &["del", "delete"],
        args: "IP | MAC",
        about:
            "Delete the entry with that IP (refused, listing them, if several MACs have it) or MAC",
    },
    Verb {
        names: &["show", "list", "ls"],
        args: "[MAC] [dev IFNAME]",
        about: "As arp show",
    },
    Verb {
        names: &["get"],
        args: "MAC",
        about: "As arp get",
    },
    Verb {
        names: &["flush"],
        args: "[dev IFNAME]",
        about: "As arp flush",
    },
];

const KERNEL_NEIGH_VERBS: &[Verb] = &[Verb {
    names: &["show", "list", "ls"],
    args: "[IP]",
    about: "List the kernel's neighbours, all or those with IP (on every device)",
}];

/// Every object, in the order help lists them.
pub const OBJECTS: &[Object] = &[
    Object {
        names: &["route"],
        about: "The routing table",
        args: "",
        verbs: ROUTE_VERBS,
    },
    Object {
        names: &["arp"],
        about: "The ARP table",
        args: "",
        verbs: ARP_VERBS,
    },
    Object {
        names: &["neigh", "neighbour", "neighbor"],
        about: "The ARP table in ip neigh's grammar",
        args: "",
        verbs: NEIGH_VERBS,
    },
    Object {
        names: &["kernel-neigh"],
        about: "The kernel's neighbours, keyed by IP and device (rtmd --kernel import; read-only)",
        args: "",
        verbs: KERNEL_NEIGH_VERBS,
    },
    Object {
        names: &["flush"],
        about: "Empty both tables (clients get SIGUSR1)",
        args: "",
        verbs: &[],
    },
    Object {
        names: &["clients"],
        about: "Registered subscribers (rtm-client, rtmctl watch, library users)",
        args: "",
        verbs: &[],
    },
    Object {
        names: &["watch"],
        about: "Print every change as it happens, until interrupted",
        args: "",
        verbs: &[],
    },
    Object {
        names: &["status"],
        about: "Version, uptime, sizes, capacities, clients, restarts, counters",
        args: "",
        verbs: &[],
    },
    Object {
        names: &["batch"],
        about: "One change per line, as ip -batch; - reads standard input and applies lines as they arrive",
        args: "FILE|- [--force]",
        verbs: &[],
    },
    Object {
        names: &["dashboard-url"],
        about: "A link to the web dashboard with a token for your uid (rtmd --http-listen/--http-socket)",
        args: "",
        verbs: &[],
    },
    Object {
        names: &["completions"],
        about: "Print a completion script for bash, zsh or fish",
        args: "bash|zsh|fish",
        verbs: &[],
    },
    Object {
        names: &["help"],
        about: "Help on an object or one of its commands",
        args: "[OBJECT [COMMAND]]",
        verbs: &[],
    },
];

/// The object named `word` (or one of its aliases).
pub fn object(word: &str) -> Option<&'static Object> {
    OBJECTS.iter().find(|o| o.names.contains(&word))
}

/// The command of `object` named `word` (or one of its aliases).
pub fn verb(object: &Object, word: &str) -> Option<&'static Verb> {
    object.verbs.iter().find(|v| v.names.contains(&word))
}

/// "add, change, replace, del, show, get, flush"
pub fn verb_list(object: &Object) -> String {
    let names: Vec<&str> = object.verbs.iter().map(|v| v.names[0]).collect();
    names.join(", ")
}

/// "route|arp|neigh|flush|…"
pub fn object_list() -> String {
    let names: Vec<&str> = OBJECTS.iter().map(|o| o.names[0]).collect();
    names.join("|")
}

/// The keywords and fixed words of an argument notation, for completion (`via`, `dev`, `bash`).
fn keywords(args: &'static str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = args
        .split(|c: char| c.is_whitespace() || "[]|".contains(c))
        .filter(|w| {
            !w.is_empty() && *w != "-" && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .collect();
    // Each once, in the order of first mention (a multipath route names via and dev again).
    let mut seen = std::collections::HashSet::new();
    out.retain(|w| seen.insert(*w));
    out
}

fn args_arg(args: &'static str) -> Arg {
    let words = keywords(args);
    let arg = Arg::new("ARGS")
        .value_name("ARGS")
        .num_args(0..)
        .action(ArgAction::Append)
        .hide_possible_values(true)
        .help(args);
    if words.is_empty() {
        arg
    } else {
        // Offered by the completions; any other word (a prefix, a name) is still taken.
        arg.value_parser(clap::builder::PossibleValuesParser::new(words))
    }
}

/// The whole command line as a clap command: `rtmctl`'s global options from `globals`, then a
/// subcommand per object and per verb, each with its usage and about line from the table.
pub fn command(globals: ClapCommand) -> ClapCommand {
    let mut cmd = globals
        .subcommand_value_name("OBJECT")
        .subcommand_help_heading("Objects");
    for o in OBJECTS {
        let mut sub = ClapCommand::new(o.names[0])
            .about(o.about)
            .visible_aliases(o.names[1..].iter().copied());
        if o.verbs.is_empty() {
            if !o.args.is_empty() {
                sub = sub
                    .override_usage(format!("rtmctl {} {}", o.names[0], o.args))
                    .arg(args_arg(o.args));
            }
        } else {
            sub = sub
                .override_usage(format!("rtmctl {} COMMAND [ARGS]", o.names[0]))
                .subcommand_value_name("COMMAND")
                .subcommand_help_heading("Commands");
            for v in o.verbs {
                let mut vc = ClapCommand::new(v.names[0])
                    .about(v.about)
                    .visible_aliases(v.names[1..].iter().copied())
                    .override_usage(format!("rtmctl {} {} {}", o.names[0], v.names[0], v.args));
                if !v.args.is_empty() {
                    vc = vc.arg(args_arg(v.args));
                }
                sub = sub.subcommand(vc);
            }
        }
        cmd = cmd.subcommand(sub);
    }
    cmd
}

/// The man page's COMMANDS section: every line of the grammar with its about line.
pub fn grammar_lines() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for o in OBJECTS {
        if o.verbs.is_empty() {
            out.push((
                format!("{} {}", o.names[0], o.args).trim_end().to_string(),
                o.about,
            ));
        }
        for v in o.verbs {
            out.push((format!("{} {} {}", o.names[0], v.names[0], v.args), v.about));
        }
    }
    out
}
