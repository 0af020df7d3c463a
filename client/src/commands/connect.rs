//! `pra connect [--json]`: load the key, start the tunnel, print one line
//! per change (or one JSON object per line) until Ctrl-C/SIGTERM, then
//! disconnect in order and exit 0. A fatal error ends it with its one line
//! and a non-zero exit status.

use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::tunnel::setup::{runtime, tunnel_config};
use crate::tunnel::{Event, Tunnel, TunnelState};
use crate::{instance, logging};
use pra_proto::codes::Severity;
use std::io::Write;
use std::process::ExitCode;

/// `pra connect`.
pub fn run(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let _ = logging::init(home);
    connect(home, json)
}

/// The tunnel writes its own fatal line to User.log; the failures before
/// it starts are written here (each once).
fn connect(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let logged = |e: ClientError| {
        logging::user_line(&e.line());
        e
    };
    // Before the passphrase is asked: is this home connected already?
    let _lock = instance::acquire(home, "pra connect").map_err(logged)?;
    let cfg = tunnel_config(home).map_err(logged)?;
    let rt = runtime().map_err(logged)?;
    rt.block_on(async move {
        let tunnel = Tunnel::start(cfg);
        let mut rx = tunnel.state();
        let cancel = tunnel.cancel_handle();
        tokio::spawn(async move {
            pra_proto::rt::shutdown_signal(|_| {}).await;
            tracing::info!("stop requested (Ctrl-C / SIGTERM)");
            cancel.cancel();
        });
        let mut printer = Printer::new(json);
        let wait = tunnel.wait();
        tokio::pin!(wait);
        loop {
            tokio::select! {
                r = &mut wait => {
                    printer.show(&rx.borrow_and_update());
                    return r.map(|()| ExitCode::SUCCESS);
                }
                changed = rx.changed() => {
                    if changed.is_ok() {
                        printer.show(&rx.borrow_and_update());
                    }
                }
            }
        }
    })
}

/// Prints the events between successive states.
struct Printer {
    json: bool,
    prev: Option<TunnelState>,
}

impl Printer {
    fn new(json: bool) -> Printer {
        Printer { json, prev: None }
    }

    fn show(&mut self, next: &TunnelState) {
        let mut out = std::io::stdout().lock();
        for ev in crate::tunnel::status::changes(self.prev.as_ref(), next) {
            let line = if self.json {
                ev.json()
            } else {
                // The fatal error is the process's one error line (stderr).
                if let Event::Error(e) = &ev
                    && e.code.severity() == Severity::Err
                {
                    continue;
                }
                ev.text()
            };
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
        self.prev = Some(next.clone());
    }
}
