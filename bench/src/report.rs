//! Medians, the result table (Markdown) and the machine description.

use crate::setup::Bins;
use anyhow::Result;
use std::path::Path;
use std::process::Command;

/// Which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Better {
    /// More is better (throughput, rates).
    Higher,
    /// Less is better (latency, time, memory).
    Lower,
}

/// What a row must reach.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// PRA / OpenSSH at least (Higher) or at most (Lower) this.
    Ratio(f64),
    /// PRA's own value at least (Higher) or at most (Lower) this.
    Absolute(f64),
    /// Growth of at most 1 MiB (flat memory), on PRA's side.
    Flat,
    /// Shown for information.
    None,
}

/// One line of the table.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    what: String,
    ours: f64,
    theirs: f64,
    better: Better,
    target: Target,
}

/// Largest growth that counts as flat (KiB).
const FLAT_KIB: f64 = 1024.0;

impl Row {
    /// A row whose target is a ratio (or none).
    pub(crate) fn new(
        what: &str,
        ours: f64,
        theirs: f64,
        better: Better,
        ratio: Option<f64>,
    ) -> Row {
        Row {
            what: what.into(),
            ours,
            theirs,
            better,
            target: ratio.map(Target::Ratio).unwrap_or(Target::None),
        }
    }

    /// A row whose target is PRA's own value.
    pub(crate) fn absolute(what: &str, ours: f64, theirs: f64, better: Better, limit: f64) -> Row {
        Row {
            what: what.into(),
            ours,
            theirs,
            better,
            target: Target::Absolute(limit),
        }
    }

    /// A memory-growth row (flat: at most 1 MiB).
    pub(crate) fn flat(what: &str, ours: f64, theirs: f64) -> Row {
        Row {
            what: what.into(),
            ours,
            theirs,
            better: Better::Lower,
            target: Target::Flat,
        }
    }

    fn ratio(&self) -> Option<f64> {
        (self.theirs.abs() > f64::EPSILON).then(|| self.ours / self.theirs)
    }

    fn target_text(&self) -> String {
        let cmp = match self.better {
            Better::Higher => "≥",
            Better::Lower => "≤",
        };
        match self.target {
            Target::Ratio(r) => format!("ratio {cmp} {r}"),
            Target::Absolute(v) => format!("PRA {cmp} {}", num(v)),
            Target::Flat => format!("PRA ≤ {} KiB", num(FLAT_KIB)),
            Target::None => "—".into(),
        }
    }

    fn met(&self) -> Option<bool> {
        let ok = |v: f64, limit: f64| match self.better {
            Better::Higher => v >= limit,
            Better::Lower => v <= limit,
        };
        match self.target {
            Target::Ratio(r) => Some(self.ratio().is_some_and(|x| ok(x, r))),
            Target::Absolute(v) => Some(ok(self.ours, v)),
            Target::Flat => Some(self.ours <= FLAT_KIB),
            Target::None => None,
        }
    }
}

/// Median (mean of the middle two for an even count).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The machine and the versions compared.
pub(crate) struct Machine {
    entries: Vec<(String, String)>,
}

fn first_line(cmd: &mut Command) -> String {
    match cmd.output() {
        Ok(o) => {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        }
        Err(e) => format!("unknown ({e})"),
    }
}

impl Machine {
    /// Read it now.
    pub(crate) fn read(bins: &Bins) -> Result<Machine> {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let has = |f: &str| flags.split_whitespace().any(|w| w == f);
        let mem = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let entries = vec![
            ("date".into(), first_line(Command::new("date").arg("-u"))),
            (
                "cores (nproc)".into(),
                first_line(&mut Command::new("nproc")),
            ),
            (
                "CPU".into(),
                format!(
                    "{cpu} (AES-NI: {}, VAES: {}, AVX-512: {})",
                    has("aes"),
                    has("vaes"),
                    has("avx512f")
                ),
            ),
            (
                "memory".into(),
                mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
            ),
            (
                "kernel".into(),
                first_line(Command::new("uname").args(["-srm"])),
            ),
            (
                "load average at start".into(),
                std::fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            ),
            ("OpenSSH".into(), first_line(Command::new("ssh").arg("-V"))),
            (
                "iperf3".into(),
                first_line(Command::new("iperf3").arg("--version")),
            ),
            ("rustc".into(), first_line(Command::new("rustc").arg("-V"))),
            (
                "pra".into(),
                first_line(Command::new(&bins.pra).arg("--version")),
            ),
            (
                "pra-registry".into(),
                first_line(Command::new(&bins.registry).arg("--version")),
            ),
            (
                "PRA commit".into(),
                first_line(Command::new("git").args(["log", "-1", "--format=%h %s"])),
            ),
        ];
        Ok(Machine { entries })
    }

    /// `key: value` lines.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect()
    }
}

/// The Markdown block: machine, settings, table, notes.
pub(crate) fn render(m: &Machine, settings: &str, rows: &[Row], notes: &[String]) -> String {
    let mut s = String::new();
    s.push_str("### Machine\n\n");
    for l in m.lines() {
        s.push_str(&format!("- {l}\n"));
    }
    s.push_str(&format!(
        "- load average at the end: {}\n",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    ));
    s.push_str(&format!("\n### Results\n\n{settings}.\n\n"));
    s.push_str("| measurement | PRA | OpenSSH | PRA / OpenSSH | target | met |\n");
    s.push_str("|---|---:|---:|---:|---|---|\n");
    for r in rows {
        let ratio = r
            .ratio()
            .map(|x| format!("{x:.2}×"))
            .unwrap_or_else(|| "—".into());
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.what,
            num(r.ours),
            num(r.theirs),
            ratio,
            r.target_text(),
            met
        ));
    }
    if !notes.is_empty() {
        s.push('\n');
        for n in notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s
}

const BEGIN: &str = "<!-- bench:begin (written by scripts/bench.sh) -->";
const END: &str = "<!-- bench:end -->";

/// Put `block` between the markers of `path` (appending them when absent).
pub(crate) fn write_into(path: &Path, block: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let fresh = format!("{BEGIN}\n{block}{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(b)) if b > a => format!("{}{fresh}{}", &old[..a], &old[b + END.len()..]),
        _ => format!("{old}{}{fresh}\n", if old.is_empty() { "" } else { "\n" }),
    };
    std::fs::write(path, new)?;
    Ok(())
}
