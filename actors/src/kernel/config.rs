//! `--kernel import|export|import,export` and the flags that go with it, resolved and checked.

use crate::config::{check_positive, ConfigError, Settings};

/// The kernel's main routing table.
pub const MAIN_TABLE: u32 = 254;
/// Receive buffer asked for the event socket unless `--kernel-rcvbuf` says otherwise.
pub const DEFAULT_RCVBUF: usize = 4 << 20;
/// The `proto` of the routes rtm writes into the kernel unless `--kernel-proto` says otherwise
/// (`deploy/iproute2/rt_protos.d/rtm.conf` names it `rtm` for `ip route show proto rtm`).
pub const DEFAULT_PROTO: u8 = 200;

/// Route protocol numbers the kernel or iproute2 gives a meaning (its `rt_protos`): rtm removes
/// every route of its own number it did not put there, so it refuses to take one of these.
const TAKEN_PROTOS: [(u8, &str); 23] = [
    (0, "unspec"),
    (1, "redirect"),
    (2, "kernel"),
    (3, "boot"),
    (4, "static"),
    (8, "gated"),
    (9, "ra"),
    (10, "mrt"),
    (11, "zebra"),
    (12, "bird"),
    (13, "dnrouted"),
    (14, "xorp"),
    (15, "ntk"),
    (16, "dhcp"),
    (17, "mrouted"),
    (18, "keepalived"),
    (42, "babel"),
    (99, "openr"),
    (186, "bgp"),
    (187, "isis"),
    (188, "ospf"),
    (189, "rip"),
    (192, "eigrp"),
];

/// The kernel settings, resolved (`None` when `--kernel` is off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// The kernel routing table followed and written (`--kernel-table`).
    pub table: u32,
    /// Receive buffer of the event socket (`--kernel-rcvbuf`).
    pub rcvbuf: usize,
    /// Mirror the kernel's routes into rtm (`import`).
    pub import: bool,
    /// Write rtm's own routes into the kernel (`export`).
    pub export: Option<ExportConfig>,
}

/// `--kernel export`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportConfig {
    /// The `proto` of the routes rtm writes (`--kernel-proto`).
    pub proto: u8,
    /// Leave them in the kernel at a clean stop (`--kernel-keep`).
    pub keep: bool,
}

impl KernelConfig {
    /// `None` unless `--kernel` is `import`, `export` or both; the other kernel settings need
    /// it (and `--kernel-proto`, `--kernel-keep` need `export`).
    pub fn resolve(s: &Settings) -> Result<Option<KernelConfig>, ConfigError> {
        let mode = s.kernel.as_deref().unwrap_or("off");
        let (mut import, mut export) = (false, false);
        if mode != "off" {
            for word in mode.split(',').map(str::trim) {
                match word {
                    "import" if !import => import = true,
                    "export" if !export => export = true,
                    _ => {
                        return Err(ConfigError::Value {
                            key: "kernel",
                            value: mode.to_string(),
                            why: "expected \"import\", \"export\", \"import,export\" or \"off\""
                                .into(),
                        })
                    }
                }
            }
        }
        // Each flag and the mode it needs.
        let (any, imp, exp) = ("\"import\" or \"export\"", "\"import\"", "\"export\"");
        for (set, on, key, what) in [
            (
                s.kernel_proto.map(|v| v.to_string()),
                export,
                "kernel-proto",
                exp,
            ),
            (
                s.kernel_keep.map(|v| v.to_string()),
                export,
                "kernel-keep",
                exp,
            ),
            (
                s.kernel_rcvbuf.map(|v| v.to_string()),
                import,
                "kernel-rcvbuf",
                imp,
            ),
            (
                s.kernel_table.map(|v| v.to_string()),
                import || export,
                "kernel-table",
                any,
            ),
        ] {
            if let (Some(value), false) = (set, on) {
                return Err(ConfigError::Value {
                    key,
                    value,
                    why: format!("needs kernel = {what}"),
                });
            }
        }
        if !import && !export {
            return Ok(None);
        }
        let table = s.kernel_table.unwrap_or(MAIN_TABLE);
        if table == 0 {
            return Err(ConfigError::Value {
                key: "kernel-table",
                value: "0".into(),
                why: "table 0 is not a routing table (1..=4294967295; main is 254)".into(),
            });
        }
        let rcvbuf = check_positive("kernel-rcvbuf", s.kernel_rcvbuf.unwrap_or(DEFAULT_RCVBUF))?;
        let export = export
            .then(|| {
                let proto = s.kernel_proto.unwrap_or(DEFAULT_PROTO);
                if let Some((_, name)) = TAKEN_PROTOS.iter().find(|(n, _)| *n == proto) {
                    return Err(ConfigError::Value {
                        key: "kernel-proto",
                        value: proto.to_string(),
                        why: format!(
                            "route protocol {proto} is \"{name}\"'s; rtm removes the routes of \
                             its own protocol it did not put there, so it needs a number of \
                             its own (default {DEFAULT_PROTO})"
                        ),
                    });
                }
                Ok(ExportConfig {
                    proto,
                    keep: s.kernel_keep.unwrap_or(false),
                })
            })
            .transpose()?;
        Ok(Some(KernelConfig {
            table,
            rcvbuf,
            import,
            export,
        }))
    }

    /// The protocol number the import leaves alone: rtm's own, when it exports too.
    pub fn own_proto(&self) -> Option<u8> {
        self.export.map(|e| e.proto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(kernel: &str) -> Settings {
        Settings {
            kernel: Some(kernel.into()),
            ..Settings::default()
        }
    }

    #[test]
    fn modes_and_their_flags() {
        let k = KernelConfig::resolve(&settings("import,export"))
            .unwrap()
            .unwrap();
        assert!(k.import);
        assert_eq!(
            k.export,
            Some(ExportConfig {
                proto: DEFAULT_PROTO,
                keep: false
            })
        );
        assert_eq!(KernelConfig::resolve(&settings("off")).unwrap(), None);
        let e = KernelConfig::resolve(&settings("import,import")).unwrap_err();
        assert!(e.to_string().contains("kernel = \"import,import\""), "{e}");
        let mut s = settings("import");
        s.kernel_proto = Some(201);
        let e = KernelConfig::resolve(&s).unwrap_err().to_string();
        assert!(
            e.contains("kernel-proto = \"201\": needs kernel = \"export\""),
            "{e}"
        );
        let mut s = settings("export");
        s.kernel_proto = Some(186);
        let e = KernelConfig::resolve(&s).unwrap_err().to_string();
        assert!(e.contains("\"bgp\"'s"), "{e}");
        s.kernel_rcvbuf = Some(4096);
        s.kernel_proto = None;
        let e = KernelConfig::resolve(&s).unwrap_err().to_string();
        assert!(e.contains("needs kernel = \"import\""), "{e}");
    }
}
