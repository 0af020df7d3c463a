//! `pra connect [--json]`: load the key, start the tunnel, print one line
//! per change (or one JSON object per line) until Ctrl-C/SIGTERM, then
//! disconnect in order and exit 0. A fatal error ends it with its one line
//! and a non-zero exit status.

use crate::config::{self, Config};
use crate::error::{ClientError, ClientResult};
use crate::home::Home;
use crate::tunnel::{Event, PinStore, RefusalExplainer, Timing, Tunnel, TunnelConfig, TunnelState};
use crate::{keystore, logging, passphrase, registry_client};
use pra_proto::codes::{Code, Severity};
use russh::keys::PrivateKey;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// `pra connect`.
pub fn run(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let _ = logging::init(home);
    let r = connect(home, json);
    if let Err(e) = &r {
        logging::user_line(&e.line());
    }
    r
}

fn connect(home: &Home, json: bool) -> ClientResult<ExitCode> {
    let cfg = tunnel_config(home)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let tunnel = Tunnel::start(cfg);
        let mut rx = tunnel.state();
        let cancel = tunnel.cancel_handle();
        tokio::spawn(async move {
            shutdown_signal().await;
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

/// Build the tunnel's settings from `config.toml`, the key store and the
/// passphrase (`PRA_PASSPHRASE` or asked on the terminal).
pub fn tunnel_config(home: &Home) -> ClientResult<TunnelConfig> {
    let cfg = Config::load(home)?;
    // Refuse before asking for the passphrase when nothing could connect.
    cfg.gateway()?;
    let info = keystore::read_public(home)?;
    let pass = passphrase::obtain("Passphrase for the PRA key: ", false)?;
    let key = Arc::new(keystore::load(home, &pass)?);
    drop(pass);
    tunnel_config_with_key(home, &cfg, info.meta.user.clone(), key)
}

/// The tunnel's settings for an unlocked key (the GUI unlocks it itself):
/// gateway and pin from `cfg`, the pin stored on first use, refusals
/// explained by the registry when its URL is known.
pub fn tunnel_config_with_key(
    home: &Home,
    cfg: &Config,
    user: String,
    key: Arc<PrivateKey>,
) -> ClientResult<TunnelConfig> {
    let gateway = cfg.gateway()?;
    let pin_store: PinStore = {
        let home = home.clone();
        let gw = gateway.clone();
        Arc::new(move |fp: &str| config::pin_host_key(&home, &gw, fp))
    };
    let explain_refusal = cfg
        .registry_url()
        .map(|url| refusal_explainer(url.to_string(), key.clone(), user.clone()));
    Ok(TunnelConfig {
        gateway,
        host_key: cfg.host_key_pin().map(str::to_string),
        pin_store: Some(pin_store),
        user,
        key,
        explain_refusal,
        timing: Timing::default(),
    })
}

/// Asks the registry for the key's status: `Some(ERR(10205))` pending,
/// `Some(ERR(10206))` revoked, `None` when it cannot tell.
pub fn refusal_explainer(url: String, key: Arc<PrivateKey>, user: String) -> RefusalExplainer {
    Arc::new(
        move || match registry_client::key_status(&url, &key, &user) {
            Ok(reply) => registry_client::status_error(&reply).map(|e| {
                let fix = e.fix().to_string();
                ClientError::with_fix(
                    e.code(),
                    format!("the gateway did not accept the key: {e}"),
                    fix,
                )
            }),
            Err(e) => {
                tracing::info!(error = %e.line(), "registry could not tell why the key was refused");
                None
            }
        },
    )
}

pub(crate) fn runtime() -> ClientResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            ClientError::new(
                Code::GatewayProtocol,
                format!("cannot start the network runtime: {e}"),
            )
        })
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
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
