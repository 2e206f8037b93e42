//! The figures of a run: each is echoed to stderr as it is taken, and all are printed at the
//! end as `name: value unit` lines or, with `--json`, as one object. BENCHMARKS.md documents
//! the names; they are the interface of this tool and do not change.

use serde_json::Value;

use crate::args::{Args, Sizes};
use crate::pump::BATCH;

struct Metric {
    name: String,
    value: f64,
    unit: &'static str,
}

#[derive(Default)]
pub struct Report {
    metrics: Vec<Metric>,
    notes: Vec<String>,
    /// `name: skipped (why)` lines for parts that could not run.
    skipped: Vec<(String, String)>,
}

impl Report {
    pub fn add(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        let m = Metric {
            name: name.into(),
            value,
            unit,
        };
        eprintln!("  {}: {} {}", m.name, fmt_value(m.value), m.unit);
        self.metrics.push(m);
    }

    pub fn skip(&mut self, name: &str, why: &str) {
        eprintln!("  {name}: skipped ({why})");
        self.skipped.push((name.to_string(), why.to_string()));
    }

    pub fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("  {s}");
        self.notes.push(s);
    }
}

fn fmt_value(v: f64) -> String {
    if (v.fract() == 0.0 && v.abs() < 1e15) || v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Announces a phase on stderr.
pub fn phase(name: &str) {
    eprintln!("rtm-bench: {name}");
}

/// Prints the whole report on stdout.
pub fn print_report(args: &Args, s: &Sizes, rep: &Report, elapsed_s: f64) {
    if args.json {
        let mut metrics = serde_json::Map::new();
        let mut units = serde_json::Map::new();
        for m in &rep.metrics {
            let v = serde_json::Number::from_f64(m.value).map_or(Value::Null, Value::Number);
            metrics.insert(m.name.clone(), v);
            units.insert(m.name.clone(), Value::from(m.unit));
        }
        let out = serde_json::json!({
            "params": {
                "routes": s.routes,
                "arps": s.arps,
                "clients": args.clients,
                "quick": args.quick,
                "seed": args.seed,
                "latency_samples": s.lat_samples,
                "latency_rate": args.latency_rate,
                "batch_ops": BATCH,
                "compare_kernel": args.compare_kernel,
                "elapsed_s": elapsed_s,
            },
            "metrics": metrics,
            "units": units,
            "notes": rep.notes,
            "skipped": rep.skipped.iter().map(|(n, w)| (n.clone(), Value::from(w.clone()))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{out}");
    } else {
        let mut out = String::new();
        for n in &rep.notes {
            out += &format!("# {n}\n");
        }
        for m in &rep.metrics {
            out += &format!("{}: {} {}\n", m.name, fmt_value(m.value), m.unit);
        }
        for (name, why) in &rep.skipped {
            out += &format!("{name}: skipped ({why})\n");
        }
        out += &format!("# elapsed {elapsed_s:.1} s\n");
        print!("{out}");
    }
}
