//! `pra-gui`: parse arguments, install logging, open the window.
// No console window behind the app on Windows (logs go to System.log).
#![cfg_attr(windows, windows_subsystem = "windows")]

use anyhow::Context as _;
use clap::Parser;
use eframe::egui;
use pra_client::home::Home;
use pra_gui::i18n::Lang;
use pra_gui::settings::LangChoice;
use pra_gui::{AppOptions, PraApp};
use std::path::PathBuf;
use std::sync::Arc;

/// PRA desktop app: window and tray icon, one-click Connect.
#[derive(Debug, Parser)]
#[command(name = "pra-gui", version, about)]
struct Cli {
    /// Folder for everything the client keeps (config, key, logs).
    #[arg(long, env = "PRA_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// UI language for this run (default: the setting, else the system's).
    #[arg(long, value_enum, value_name = "LANG")]
    lang: Option<CliLang>,
    /// Do not create a tray icon (closing the window then quits).
    #[arg(long)]
    no_tray: bool,
    /// Connect at start (with PRA_PASSPHRASE or the passphrase remembered on
    /// this PC; otherwise the passphrase dialog opens).
    #[arg(long)]
    connect: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum CliLang {
    Auto,
    En,
    Ja,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("pra-gui: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// System.log and User.log in the home's `log/` (as `pra` writes them); on
/// stderr when that folder cannot be used.
fn install_logging(home: &Home) {
    if let Err(e) = pra_client::logging::init(home) {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_writer(std::io::stderr)
            .init();
        tracing::warn!(error = %e.line(), "logging to stderr only");
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let home = Home::resolve(cli.home.as_deref()).map_err(|e| anyhow::anyhow!(e.line()))?;
    install_logging(&home);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), home = %home.root().display(), "pra-gui starting");
    let lang_override = cli.lang.map(|l| match l {
        CliLang::Auto => LangChoice::Auto,
        CliLang::En => LangChoice::En,
        CliLang::Ja => LangChoice::Ja,
    });
    let icon = egui::IconData {
        rgba: pra_gui::tray::icon_rgba(pra_gui::view::Tone::Good),
        width: pra_gui::tray::ICON_SIZE,
        height: pra_gui::tray::ICON_SIZE,
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("PRA")
            .with_app_id("pra-gui")
            .with_inner_size([760.0, 480.0])
            .with_min_inner_size([520.0, 320.0])
            .with_icon(Arc::new(icon)),
        ..Default::default()
    };
    let (tray, connect) = (!cli.no_tray, cli.connect);
    eframe::run_native(
        "PRA",
        options,
        Box::new(move |cc| {
            let opts = AppOptions {
                home,
                os_lang: Lang::from_os(),
                lang_override,
                cjk_font: pra_gui::fonts::find(),
                store: Arc::new(pra_gui::credstore::OsStore),
                timing: Default::default(),
                tray,
                connect,
                // As the CLI: scripts and tests give the passphrase this way.
                passphrase: std::env::var(pra_client::passphrase::ENV_VAR)
                    .ok()
                    .map(pra_client::passphrase::Passphrase::new),
            };
            Ok(Box::new(PraApp::new(&cc.egui_ctx, opts)?))
        }),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("cannot open the window")
}
