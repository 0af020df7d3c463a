//! `pra-bench`: PRA against stock OpenSSH, side by side on loopback.
//!
//! `pra-bench run` starts both sides (see [`setup`]), measures each
//! quantity on both alternately (PRA first on even runs, OpenSSH first on
//! odd ones), prints the table of medians and writes it into
//! `docs/performance.md` between the `bench:begin`/`bench:end` markers.
//! `scripts/bench.sh` builds the release binaries and runs it; the test
//! command never does.
//!
//! # Layout
//! - [`setup`]: both sides and the targets, started as their users start them.
//! - [`measure`]: iperf3, short connections, start-up, stalled streams.
//! - [`delay`]: a userspace delay proxy for the delayed-link case.
//! - [`sessions`]: many sessions from this process (idle memory, logins/s).
//! - [`procs`]: child processes, listening ports, RSS/PSS from `/proc`.
//! - [`report`]: medians, the table, the machine description.
//! - [`targets`]: `pra-bench targets`, the echo/firehose/black-hole servers.

mod delay;
mod measure;
mod procs;
mod report;
mod sessions;
mod setup;
mod targets;

use anyhow::{Context, Result, bail};
use measure::Direction;
use report::{Better, Row, median};
use setup::{Bins, PraSide, SshSide, Targets};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "usage: pra-bench run [--bin-dir DIR] [--runs N] [--secs S] [--short N] \
[--sessions N,N] [--sshd-sessions N] [--logins-secs S] [--stall-secs S] [--rtts MS,MS] [--only LIST] [--out FILE]
       pra-bench targets
LIST: comma-separated of startup,throughput,short,stall,delay,idle,logins (default: all),
      or hold (start both sides, print their ports, wait for a line on stdin)
delay: throughput both ways through a delay proxy between client and server,
      one round trip of each --rtts (default 20,80,200 ms)";

/// Settings of one run.
#[derive(Clone, Debug)]
struct Opts {
    bin_dir: PathBuf,
    runs: usize,
    secs: u32,
    short: usize,
    sessions: Vec<usize>,
    sshd_sessions: usize,
    logins_secs: u64,
    stall_secs: u64,
    rtts: Vec<u64>,
    only: Vec<String>,
    out: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        bin_dir: PathBuf::from("target/release"),
        runs: 5,
        secs: 5,
        short: 2000,
        sessions: vec![1000, 10000],
        sshd_sessions: 100,
        logins_secs: 5,
        stall_secs: 10,
        rtts: vec![20, 80, 200],
        only: Vec::new(),
        out: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--bin-dir" => o.bin_dir = PathBuf::from(val()?),
            "--runs" => o.runs = val()?.parse()?,
            "--secs" => o.secs = val()?.parse()?,
            "--short" => o.short = val()?.parse()?,
            "--sessions" => {
                o.sessions = val()?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--sshd-sessions" => o.sshd_sessions = val()?.parse()?,
            "--logins-secs" => o.logins_secs = val()?.parse()?,
            "--stall-secs" => o.stall_secs = val()?.parse()?,
            "--rtts" => {
                o.rtts = val()?
                    .split(',')
                    .map(|s| s.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--only" => o.only = val()?.split(',').map(|s| s.trim().to_string()).collect(),
            "--out" => o.out = Some(PathBuf::from(val()?)),
            _ => bail!("unknown argument {a}\n{USAGE}"),
        }
    }
    if o.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(o)
}

impl Opts {
    /// Is `what` measured? Everything by default; `hold` only when named.
    fn wants(&self, what: &str) -> bool {
        (self.only.is_empty() && what != "hold") || self.only.iter().any(|w| w == what)
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("targets") => targets::run(),
        Some("run") => run(parse(&args[1..])?),
        _ => bail!("{USAGE}"),
    }
}

/// Alternate the two sides: PRA first on even runs.
fn both<T, U>(
    run: usize,
    mut pra: impl FnMut() -> Result<T>,
    mut ssh: impl FnMut() -> Result<U>,
) -> Result<(T, U)> {
    if run.is_multiple_of(2) {
        let a = pra()?;
        let b = ssh()?;
        Ok((a, b))
    } else {
        let b = ssh()?;
        let a = pra()?;
        Ok((a, b))
    }
}

fn run(o: Opts) -> Result<()> {
    let bins = Bins {
        pra: o.bin_dir.join("pra"),
        registry: o.bin_dir.join("pra-registry"),
    };
    for b in [&bins.pra, &bins.registry] {
        if !b.exists() {
            bail!(
                "{} is missing: build the release binaries first (scripts/bench.sh does)",
                b.display()
            );
        }
    }
    let machine = report::Machine::read(&bins)?;
    eprintln!("{}", machine.lines().join("\n"));
    let dir = tempfile::Builder::new().prefix("pra-bench.").tempdir()?;
    eprintln!("bench folder: {}", dir.path().display());
    let targets = Targets::start(dir.path())?;
    let mut pra = PraSide::setup(&bins, dir.path(), &targets)?;
    pra.start_gateway()?;
    let mut ssh = SshSide::setup(dir.path(), &targets, &pra.lib_key)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut gcm_rows: Vec<Row> = Vec::new();

    if o.wants("startup") {
        eprintln!("== start-up ({} runs each)", o.runs);
        let (mut a, mut b, mut bx) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..o.runs {
            let (x, (y, yx)) = both(
                r,
                || measure::startup_pra(&pra),
                || measure::startup_ssh(&ssh),
            )?;
            eprintln!(
                "  run {r}: pra {:.1} ms, ssh {:.1} ms (ssh -f back in the shell after {:.1} ms)",
                ms(x),
                ms(y),
                ms(yx)
            );
            a.push(ms(x));
            b.push(ms(y));
            bx.push(ms(yx));
        }
        rows.push(Row::new(
            "Start-up: `pra connect` / `ssh -f -N` until all 4 forwards listen (ms)",
            median(&a),
            median(&b),
            Better::Lower,
            Some(0.5),
        ));
        notes.push(format!(
            "`ssh -f` returned to the shell after {:.1} ms (median).",
            median(&bx)
        ));
    }

    if o.wants("throughput") || o.wants("short") || o.wants("stall") || o.wants("hold") {
        pra.start_connect()?;
        ssh.start_client()?;
    }
    if o.wants("hold") {
        // For profiling by hand: both sides up until stdin closes.
        println!(
            "gateway pid {:?} connect pid {:?} forwards {:?}; sshd pid {:?} ssh pid {:?} forwards {:?}; \
             targets iperf {} echo {}; folder {}",
            pra.gateway_pid(),
            pra.connect_pid(),
            pra.fwd,
            ssh.sshd_pid(),
            ssh.client_pid(),
            ssh.fwd,
            targets.iperf,
            targets.echo,
            dir.path().display()
        );
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return Ok(());
    }

    if o.wants("throughput") {
        for (dir, label) in [
            (Direction::Up, "client → target"),
            (Direction::Down, "target → client"),
            (Direction::Both, "two-way (sum)"),
        ] {
            eprintln!(
                "== throughput {label} ({} runs of {} s each)",
                o.runs, o.secs
            );
            let direct = measure::iperf(targets.iperf, dir, o.secs)?;
            eprintln!("  direct loopback: {direct:.0} MB/s");
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            for r in 0..o.runs {
                // PRA, OpenSSH default, OpenSSH aes128-gcm, in turns.
                let mut got = [0.0f64; 3];
                for k in 0..3 {
                    let which = (r + k) % 3;
                    let port = [pra.fwd.iperf, ssh.fwd.iperf, ssh.fwd_gcm.iperf][which];
                    got[which] = measure::iperf(port, dir, o.secs)?;
                }
                let [x, y, z] = got;
                eprintln!(
                    "  run {r}: pra {x:.0} MB/s, ssh {y:.0} MB/s, ssh -c aes128-gcm {z:.0} MB/s"
                );
                a.push(x);
                b.push(y);
                c.push(z);
            }
            rows.push(Row::new(
                &format!("Throughput {label}, iperf3 (MB/s)"),
                median(&a),
                median(&b),
                Better::Higher,
                Some(1.3),
            ));
            gcm_rows.push(Row::new(
                &format!("Throughput {label} vs `ssh -c {}` (MB/s)", setup::GCM),
                median(&a),
                median(&c),
                Better::Higher,
                None,
            ));
            notes.push(format!(
                "Direct loopback iperf3 {label} (no tunnel): {direct:.0} MB/s."
            ));
        }
    }

    rows.append(&mut gcm_rows);

    if o.wants("short") {
        eprintln!("== short connections ({} runs of {} each)", o.runs, o.short);
        let direct = measure::short_connections(targets.echo, o.short)?;
        eprintln!(
            "  direct: {:.0}/s p50 {:.3} ms p99 {:.3} ms",
            direct.rate, direct.p50_ms, direct.p99_ms
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for r in 0..o.runs {
            let (x, y) = both(
                r,
                || measure::short_connections(pra.fwd.echo, o.short),
                || measure::short_connections(ssh.fwd.echo, o.short),
            )?;
            eprintln!(
                "  run {r}: pra {:.0}/s p50 {:.3} p99 {:.3} ms; ssh {:.0}/s p50 {:.3} p99 {:.3} ms",
                x.rate, x.p50_ms, x.p99_ms, y.rate, y.p50_ms, y.p99_ms
            );
            a.push(x);
            b.push(y);
        }
        let m = |v: &[measure::Short], f: fn(&measure::Short) -> f64| {
            median(&v.iter().map(f).collect::<Vec<_>>())
        };
        rows.push(Row::new(
            "Short connections (connect, 1-byte echo, close; sequential) per s",
            m(&a, |s| s.rate),
            m(&b, |s| s.rate),
            Better::Higher,
            Some(1.5),
        ));
        rows.push(Row::new(
            "Short connection latency p50 (ms)",
            m(&a, |s| s.p50_ms),
            m(&b, |s| s.p50_ms),
            Better::Lower,
            None,
        ));
        rows.push(Row::new(
            "Short connection latency p99 (ms)",
            m(&a, |s| s.p99_ms),
            m(&b, |s| s.p99_ms),
            Better::Lower,
            Some(1.0),
        ));
        notes.push(format!(
            "Direct short connections (no tunnel): {:.0}/s, p50 {:.3} ms, p99 {:.3} ms.",
            direct.rate, direct.p50_ms, direct.p99_ms
        ));
    }

    if o.wants("stall") {
        let pra_pids = || {
            [pra.gateway_pid(), pra.connect_pid()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
        };
        let ssh_pids = || {
            let mut v: Vec<u32> = ssh.sshd_pid().map(procs::descendants).unwrap_or_default();
            v.extend(ssh.client_pid());
            v
        };
        for (firehose, label, port_a, port_b) in [
            (
                true,
                "local reader stalled (target writes)",
                pra.fwd.firehose,
                ssh.fwd.firehose,
            ),
            (
                false,
                "target stalled (local program writes)",
                pra.fwd.blackhole,
                ssh.fwd.blackhole,
            ),
        ] {
            eprintln!("== memory with a {label}, {} s", o.stall_secs);
            let x = measure::stall(port_a, firehose, o.stall_secs, pra_pids)?;
            let y = measure::stall(port_b, firehose, o.stall_secs, ssh_pids)?;
            eprintln!(
                "  pra: +{} KiB in all, +{} KiB after 2 s, {} bytes taken; ssh: +{} KiB, +{} KiB, {} bytes",
                x.added_kib, x.growth_kib, x.buffered, y.added_kib, y.growth_kib, y.buffered
            );
            rows.push(Row::flat(
                &format!(
                    "Memory growth 2–{} s, {label} (KiB, client + server)",
                    o.stall_secs
                ),
                x.growth_kib as f64,
                y.growth_kib as f64,
            ));
            notes.push(format!(
                "{label}: the stalled stream added {} KiB (PRA) / {} KiB (OpenSSH) in all{}.",
                x.added_kib,
                y.added_kib,
                if firehose {
                    String::new()
                } else {
                    format!(
                        "; the local writer got rid of {:.1} MiB (PRA) / {:.1} MiB (OpenSSH) before it blocked",
                        x.buffered as f64 / 1048576.0,
                        y.buffered as f64 / 1048576.0
                    )
                }
            ));
        }
    }
    pra.stop_connect();
    ssh.stop_client();

    if o.wants("delay") {
        delayed(&o, &mut pra, &mut ssh, &mut rows, &mut notes)?;
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let key = Arc::new(pra.lib_key.clone());
    let gw_login = sessions::Login {
        addr: SocketAddr::from(([127, 0, 0, 1], pra.gw_port)),
        pin: pra.host_key.clone(),
        user: setup::USER.into(),
        key: key.clone(),
        rules: true,
    };
    let sshd_login = sessions::Login {
        addr: SocketAddr::from(([127, 0, 0, 1], ssh.port)),
        pin: ssh.host_key.clone(),
        user: ssh.user.clone(),
        key,
        rules: false,
    };

    if o.wants("idle") {
        eprintln!(
            "== idle sessions: gateway {:?}, sshd {}",
            o.sessions, o.sshd_sessions
        );
        // A fresh gateway, so the baseline is a gateway without history.
        pra.start_gateway()?;
        let gw_pid = pra.gateway_pid().context("gateway pid")?;
        let ours = rt.block_on(sessions::idle(
            &gw_login,
            &o.sessions,
            8,
            || vec![gw_pid],
            procs::rss_kib,
        ))?;
        let sshd_pid = ssh.sshd_pid().context("sshd pid")?;
        let sshd_idle = |measure: fn(u32) -> u64| {
            rt.block_on(sessions::idle(
                &sshd_login,
                &[o.sshd_sessions],
                8,
                || procs::descendants(sshd_pid),
                measure,
            ))
        };
        let theirs = sshd_idle(procs::pss_kib)?;
        let theirs_rss = sshd_idle(procs::rss_kib)?;
        let sshd_per = theirs.first().map(|t| t.1).unwrap_or(0.0);
        for (n, per) in ours {
            rows.push(Row::absolute(
                &format!(
                    "Memory per idle session, {n} sessions (KiB; sshd: PSS, {} sessions)",
                    o.sshd_sessions
                ),
                per,
                sshd_per,
                Better::Lower,
                64.0,
            ));
        }
        notes.push(format!(
            "Idle sessions: RSS of the gateway process over its baseline / sessions (each \
             session logged in and fetched its rules, as `pra connect` does, then idles with \
             its keepalives). sshd: the PSS (shared pages split among their users) of sshd's \
             per-session processes / sessions; their RSS is {:.0} KiB per session.",
            theirs_rss.first().map(|t| t.1).unwrap_or(0.0)
        ));
    }

    if o.wants("logins") {
        pra.start_gateway()?;
        let runs = o.runs.min(3);
        // The same work on both sides: TCP, key exchange, public-key login.
        let gw_auth = sessions::Login {
            rules: false,
            ..gw_login.clone()
        };
        eprintln!(
            "== logins per second ({runs} runs of {} s, 8 at a time)",
            o.logins_secs
        );
        let gw_pid = pra.gateway_pid().context("gateway pid")?;
        let sshd_pid = ssh.sshd_pid().context("sshd pid")?;
        // A run and the server's CPU time per completed login over it, in
        // ms (with its reaped children: sshd's per-connection processes).
        let measured = |login: &sessions::Login, pid: u32| -> Result<(sessions::Logins, f64)> {
            let cpu = procs::tree_cpu_seconds(pid);
            let r = rt.block_on(sessions::logins(login, 8, o.logins_secs))?;
            let per = (procs::tree_cpu_seconds(pid) - cpu) * 1000.0 / r.completed.max(1) as f64;
            Ok((r, per))
        };
        let (mut a, mut b, mut fails) = (Vec::new(), Vec::new(), (0, 0));
        let (mut a_cpu, mut b_cpu) = (Vec::new(), Vec::new());
        for r in 0..runs {
            let ((x, x_cpu), (y, y_cpu)) = both(
                r,
                || measured(&gw_auth, gw_pid),
                || measured(&sshd_login, sshd_pid),
            )?;
            eprintln!(
                "  run {r}: gateway {:.0}/s ({} failed, {:.3} ms CPU per login), sshd {:.0}/s ({} failed, {:.3} ms CPU per login)",
                x.rate, x.failed, x_cpu, y.rate, y.failed, y_cpu
            );
            a.push(x.rate);
            b.push(y.rate);
            a_cpu.push(x_cpu);
            b_cpu.push(y_cpu);
            fails = (fails.0 + x.failed, fails.1 + y.failed);
        }
        notes.push(format!(
            "Logins: {} attempts turned away by the gateway, {} by sshd, over all runs (not counted as logins).",
            fails.0, fails.1
        ));
        rows.push(Row::absolute(
            "Completed logins per second (8 in parallel: TCP, key exchange, public-key login; the 8 clients share the cores)",
            median(&a),
            median(&b),
            Better::Higher,
            2000.0,
        ));
        rows.push(Row::new(
            "Server CPU per login, same runs (ms; sshd: its processes for the connections)",
            median(&a_cpu),
            median(&b_cpu),
            Better::Lower,
            None,
        ));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        rows.push(Row::absolute(
            &format!(
                "Logins per second the server's CPU allows on this machine's {cores} cores, clients elsewhere ({cores} s / CPU per login)"
            ),
            cores * 1000.0 / median(&a_cpu),
            cores * 1000.0 / median(&b_cpu),
            Better::Higher,
            2000.0,
        ));
    }
    pra.stop_gateway();
    drop(ssh);

    let table = report::render(&machine, &o_summary(&o), &rows, &notes);
    println!("{table}");
    if let Some(out) = &o.out {
        report::write_into(out, &table)?;
        eprintln!("written to {}", out.display());
    }
    Ok(())
}

/// Throughput both ways over a delayed link: a delay proxy between client
/// and server (`pra connect` → proxy → gateway, `ssh -N -L` → proxy →
/// sshd), one round trip after the other.
fn delayed(
    o: &Opts,
    pra: &mut PraSide,
    ssh: &mut SshSide,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> Result<()> {
    for &rtt in &o.rtts {
        let one_way = Duration::from_millis(rtt) / 2;
        let pra_proxy =
            delay::Proxy::start(SocketAddr::from(([127, 0, 0, 1], pra.gw_port)), one_way)?;
        let ssh_proxy = delay::Proxy::start(SocketAddr::from(([127, 0, 0, 1], ssh.port)), one_way)?;
        pra.server_via(Some(pra_proxy.port()))?;
        let started = pra
            .start_connect()
            .and_then(|()| ssh.start_client_via(ssh_proxy.port()));
        let measured = started.and_then(|()| {
            for (dir, label) in [
                (Direction::Up, "client → target"),
                (Direction::Down, "target → client"),
            ] {
                eprintln!(
                    "== throughput {label} over a {rtt} ms round trip ({} runs of {} s each)",
                    o.runs, o.secs
                );
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for r in 0..o.runs {
                    let (x, y) = both(
                        r,
                        || measure::iperf(pra.fwd.iperf, dir, o.secs),
                        || measure::iperf(ssh.fwd.iperf, dir, o.secs),
                    )?;
                    eprintln!("  run {r}: pra {x:.1} MB/s, ssh {y:.1} MB/s");
                    a.push(x);
                    b.push(y);
                }
                rows.push(Row::new(
                    &format!("Throughput {label}, {rtt} ms round trip, iperf3 (MB/s)"),
                    median(&a),
                    median(&b),
                    Better::Higher,
                    Some(4.0),
                ));
            }
            Ok(())
        });
        pra.stop_connect();
        ssh.stop_client();
        pra.server_via(None)?;
        measured?;
    }
    notes.push(format!(
        "Delayed link: a userspace proxy between client and server delays each direction by half the round trip ({} ms), bandwidth unlimited; OpenSSH with its default cipher.",
        o.rtts
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

fn o_summary(o: &Opts) -> String {
    format!(
        "{} runs per measurement (median shown), iperf3 {} s per run (+1 s omitted), {} short \
         connections per run, idle sessions {:?} (sshd {}), logins {} s per run, stalls {} s",
        o.runs, o.secs, o.short, o.sessions, o.sshd_sessions, o.logins_secs, o.stall_secs
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
