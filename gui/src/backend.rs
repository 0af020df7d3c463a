//! All work the app does away from the frame loop: a tokio runtime owned by
//! the app runs the tunnel and every file, key, registry and credential-store
//! call (blocking ones on the blocking pool). Results come back to the UI as
//! [`Outcome`]s on a channel, each followed by a repaint request, so the
//! window never waits for the network.
//!
//! The UI calls the `Backend` methods (they return at once) and drains
//! [`Backend::poll`] each frame.

use crate::credstore::{SecretStore, StoreError};
use crate::view::Problem;
use pra_client::config::Config;
use pra_client::doctor::{self, Check, DoctorInput, KeyAccess, Report};
use pra_client::enroll::{self, Enrolled};
use pra_client::error::{ClientError, ClientResult};
use pra_client::home::Home;
use pra_client::instance::{self, ConnectLock};
use pra_client::keystore::{self, KeyInfo};
use pra_client::logging;
use pra_client::passphrase::{self, Passphrase};
use pra_client::registry_client::{self, Submitted};
use pra_client::tunnel::{CancelHandle, Timing, Tunnel, TunnelConfig, TunnelState};
use pra_proto::api::KeyStatusReply;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// Wakes the UI after an outcome was sent (`egui::Context::request_repaint`).
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

/// The public facts of the stored key, for the dialogs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyView {
    /// As `ssh-keygen -l` prints it (`SHA256:…`).
    pub(crate) fingerprint: String,
    pub(crate) user: String,
    /// Unix time of creation.
    pub(crate) created: u64,
    /// What the key is bound to.
    pub(crate) bound: String,
    /// OpenSSH public-key line.
    pub(crate) public_key: String,
}

impl KeyView {
    fn of(info: &KeyInfo) -> KeyView {
        KeyView {
            fingerprint: info.fingerprint(),
            user: info.meta.user.clone(),
            created: info.meta.created,
            bound: info.meta.bound_summary(),
            public_key: info.meta.public_key.clone(),
        }
    }
}

/// What `config.toml` says, for the status line and the dialogs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConfigView {
    /// `HOST:PORT` of the gateway.
    pub(crate) gateway: Option<String>,
    /// Further gateways of the registry, tried in order after `gateway`
    /// (Settings → Server keeps them when it saves).
    pub(crate) alternates: Vec<String>,
    /// Pinned host key.
    pub(crate) host_key: Option<String>,
    /// Remembered registry URL.
    pub(crate) registry: Option<String>,
}

impl ConfigView {
    fn of(cfg: &Config) -> ConfigView {
        ConfigView {
            gateway: cfg.gateway().ok().map(|g| g.to_string()),
            alternates: cfg
                .gateways()
                .map(|all| all.iter().skip(1).map(ToString::to_string).collect())
                .unwrap_or_default(),
            host_key: cfg.host_key_pin().map(str::to_string),
            registry: cfg.registry_url().map(str::to_string),
        }
    }
}

/// Something the user is told that is not an error of the current action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// The passphrase was stored in the credential store.
    Remembered,
    /// The remembered passphrase was removed.
    Forgotten,
    /// The credential store could not be used (`WAR(10230)`).
    Store(Problem),
}

/// A result sent from the backend to the UI.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// The tunnel of run `run` changed state.
    Tunnel {
        /// Which Connect this belongs to.
        run: u64,
        /// The new state.
        state: Box<TunnelState>,
    },
    /// The tunnel of run `run` ended (after Disconnect, or a fatal error).
    TunnelEnded {
        /// Which Connect this belongs to.
        run: u64,
        /// The fatal error, if any.
        error: Option<Problem>,
    },
    /// Connect failed before the tunnel started (config, key, passphrase).
    ConnectFailed(Problem),
    /// No remembered passphrase could be used: ask for one. Carries why a
    /// remembered one failed, if it did.
    NeedPassphrase(Option<Problem>),
    /// An informational notice.
    Notice(Notice),
    /// `config.toml` as read now, or why it cannot be read.
    Config(Result<ConfigView, Problem>),
    /// The stored key, or why there is none.
    Key(Result<KeyView, Problem>),
    /// Key → Generate finished.
    Generated(Result<KeyView, Problem>),
    /// Key → Export finished.
    Exported(Result<PathBuf, Problem>),
    /// Key → Submit finished.
    Submitted(Result<Submitted, Problem>),
    /// Key → Show key state: the registry's answer.
    KeyStatus(Result<KeyStatusReply, Problem>),
    /// Settings → Server saved (notes for the user).
    ServerSaved(Result<Vec<String>, Problem>),
    /// Help → Run diagnostics: one check finished.
    DoctorCheck(Check),
    /// Help → Run diagnostics: all checks done.
    DoctorDone(Report),
    /// Help → Export logs: the bundle written (and the doctor's summary).
    LogsExported(Result<(PathBuf, String), Problem>),
    /// Key → Enroll with an invite finished: fingerprint and `pending` or
    /// `approved`.
    Enrolled(Result<Enrolled, Problem>),
}

struct Running {
    run: u64,
    cancel: CancelHandle,
    task: tokio::task::JoinHandle<()>,
    /// This home's connection, held while the tunnel runs (`ERR(10111)`
    /// for a `pra connect` on the same home meanwhile).
    _lock: ConnectLock,
}

/// The app's worker: a tokio runtime and the state shared with its tasks.
pub(crate) struct Backend {
    /// Kept to shut it down with a time limit on drop.
    runtime: Option<tokio::runtime::Runtime>,
    rt: tokio::runtime::Handle,
    home: Home,
    store: Arc<dyn SecretStore>,
    timing: Timing,
    preset: Option<Passphrase>,
    tx: mpsc::Sender<Outcome>,
    rx: mpsc::Receiver<Outcome>,
    waker: Waker,
    running: Arc<Mutex<Option<Running>>>,
    next_run: AtomicU64,
}

/// Sends outcomes and wakes the UI.
#[derive(Clone)]
struct Reply {
    tx: mpsc::Sender<Outcome>,
    waker: Waker,
}

impl Reply {
    fn send(&self, o: Outcome) {
        if self.tx.send(o).is_ok() {
            (self.waker)();
        }
    }
}

fn problem(e: &ClientError) -> Problem {
    Problem::from_error(e)
}

fn store_problem(e: &StoreError) -> Problem {
    Problem::from_error(&e.to_client_error())
}

/// Read `config.toml` and the key's public facts ([`Outcome::Config`],
/// [`Outcome::Key`]).
async fn send_state(home: Home, reply: &Reply) {
    let Some((cfg, key)) = blocking(move || {
        let cfg = Config::load(&home).map(|c| ConfigView::of(&c));
        let key = keystore::read_public(&home).map(|k| KeyView::of(&k));
        (cfg, key)
    })
    .await
    else {
        return;
    };
    reply.send(Outcome::Config(cfg.map_err(|e| problem(&e))));
    reply.send(Outcome::Key(key.map_err(|e| problem(&e))));
}

/// Run a blocking job on the runtime's blocking pool (`None` if it panicked).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

impl Backend {
    /// A backend for `home` with its own runtime (two worker threads).
    /// `preset` is a passphrase given to the process (`PRA_PASSPHRASE`),
    /// used whenever none is typed.
    pub(crate) fn new(
        home: Home,
        store: Arc<dyn SecretStore>,
        timing: Timing,
        preset: Option<Passphrase>,
        waker: Waker,
    ) -> std::io::Result<Backend> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pra-gui-worker")
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::channel();
        Ok(Backend {
            rt: rt.handle().clone(),
            runtime: Some(rt),
            home,
            store,
            timing,
            preset,
            tx,
            rx,
            waker,
            running: Arc::new(Mutex::new(None)),
            next_run: AtomicU64::new(1),
        })
    }

    /// The client's folder.
    pub(crate) fn home(&self) -> &Home {
        &self.home
    }

    /// Everything that arrived since the last call.
    pub(crate) fn poll(&self) -> Vec<Outcome> {
        self.rx.try_iter().collect()
    }

    fn reply(&self) -> Reply {
        Reply {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Read `config.toml` and the key's public facts ([`Outcome::Config`],
    /// [`Outcome::Key`]).
    pub(crate) fn refresh(&self) {
        let (home, reply) = (self.home.clone(), self.reply());
        self.rt.spawn(async move { send_state(home, &reply).await });
    }

    /// True while a tunnel runs (connecting, connected or reconnecting).
    pub(crate) fn is_running(&self) -> bool {
        self.lock_running().is_some()
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connect. With `pass` `None` the preset passphrase (`PRA_PASSPHRASE`)
    /// or the remembered one is used; if there is none the answer is
    /// [`Outcome::NeedPassphrase`]. With `remember`
    /// the passphrase is stored after the key opened with it.
    pub(crate) fn connect(&self, pass: Option<Passphrase>, remember: bool) {
        if self.is_running() {
            return;
        }
        let pass = pass.or_else(|| self.preset.clone());
        let run = self.next_run.fetch_add(1, Ordering::Relaxed);
        let (home, store, timing, reply, running) = (
            self.home.clone(),
            self.store.clone(),
            self.timing.clone(),
            self.reply(),
            self.running.clone(),
        );
        self.rt.spawn(async move {
            let prepared = blocking(move || prepare(&home, &*store, pass, remember, timing)).await;
            let (cfg, lock) = match prepared {
                Some(Prepared::Ready { cfg, notice, lock }) => {
                    if let Some(n) = notice {
                        reply.send(Outcome::Notice(n));
                    }
                    (cfg, lock)
                }
                Some(Prepared::NeedPassphrase(why)) => {
                    reply.send(Outcome::NeedPassphrase(why));
                    return;
                }
                Some(Prepared::Failed(p)) => {
                    reply.send(Outcome::ConnectFailed(p));
                    return;
                }
                None => return,
            };
            let mut guard = running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if guard.is_some() {
                // Another Connect won the race.
                return;
            }
            let tunnel = Tunnel::start(*cfg);
            let cancel = tunnel.cancel_handle();
            let task = tokio::spawn(drive(run, tunnel, reply, running.clone()));
            *guard = Some(Running {
                run,
                cancel,
                task,
                _lock: lock,
            });
        });
    }

    /// Disconnect the running tunnel (orderly; [`Outcome::TunnelEnded`] follows).
    pub(crate) fn disconnect(&self) {
        if let Some(r) = self.lock_running().as_ref() {
            r.cancel.cancel();
        }
    }

    /// Disconnect and wait (at most `limit`) until the tunnel has closed its
    /// forwards and said goodbye to the gateway. For Quit.
    pub(crate) fn shutdown(&self, limit: Duration) {
        let task = self.lock_running().take().map(|r| {
            r.cancel.cancel();
            r.task
        });
        if let Some(task) = task {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(limit, task).await });
        }
    }

    /// Forget the remembered passphrase of the stored key.
    pub(crate) fn forget_passphrase(&self) {
        let (home, store, reply) = (self.home.clone(), self.store.clone(), self.reply());
        self.rt.spawn(async move {
            let r = blocking(move || {
                let fp = keystore::read_public(&home).map_err(|e| problem(&e))?;
                store
                    .delete(&fp.fingerprint())
                    .map_err(|e| store_problem(&e))
            })
            .await;
            match r {
                Some(Ok(())) => reply.send(Outcome::Notice(Notice::Forgotten)),
                Some(Err(p)) => reply.send(Outcome::Notice(Notice::Store(p))),
                None => {}
            }
        });
    }

    /// Settings → Server: validate and save (what `pra server set` does).
    pub(crate) fn save_server(&self, address: String, host_key: Option<String>) {
        let (home, reply) = (self.home.clone(), self.reply());
        self.rt.spawn(async move {
            let home2 = home.clone();
            let r = blocking(move || {
                pra_client::config::set_gateway(&home2, &address, host_key.as_deref())
            })
            .await;
            let Some(r) = r else { return };
            match r {
                Ok((cfg, notes)) => {
                    reply.send(Outcome::Config(Ok(ConfigView::of(&cfg))));
                    reply.send(Outcome::ServerSaved(Ok(notes)));
                }
                Err(e) => reply.send(Outcome::ServerSaved(Err(problem(&e)))),
            }
        });
    }

    /// Key → Generate (what `pra keygen` does; `force` replaces a key).
    pub(crate) fn generate(&self, user: String, pass: Passphrase, again: Passphrase, force: bool) {
        let (home, store, reply) = (self.home.clone(), self.store.clone(), self.reply());
        self.rt.spawn(async move {
            let r = blocking(move || -> ClientResult<KeyView> {
                keystore::check_user(&user)?;
                let pass =
                    passphrase::confirm_entries(passphrase::require_nonempty(pass)?, &again)?;
                let old = keystore::read_public(&home).ok();
                let info = keystore::generate(&home, &user, &pass, force)?;
                if let Some(old) = old {
                    // A passphrase remembered for the replaced key is useless now.
                    let _ = store.delete(&old.fingerprint());
                }
                Ok(KeyView::of(&info))
            })
            .await;
            let Some(r) = r else { return };
            let r = r.map_err(|e| problem(&e));
            if let Ok(k) = &r {
                reply.send(Outcome::Key(Ok(k.clone())));
            }
            reply.send(Outcome::Generated(r));
        });
    }

    /// Key → Export public key (the hand-over file of `pra key export FILE`).
    pub(crate) fn export(&self, path: PathBuf) {
        let (home, reply) = (self.home.clone(), self.reply());
        self.rt.spawn(async move {
            let r = blocking(move || keystore::export_public(&home, &path).map(|_| path)).await;
            if let Some(r) = r {
                reply.send(Outcome::Exported(r.map_err(|e| problem(&e))));
            }
        });
    }

    /// Key → Submit to registry (what `pra key submit` does). With `pass`
    /// `None` the remembered passphrase is used.
    pub(crate) fn submit(&self, url: String, pass: Option<Passphrase>) {
        let pass = pass.or_else(|| self.preset.clone());
        let (home, store, reply) = (self.home.clone(), self.store.clone(), self.reply());
        self.rt.spawn(async move {
            let home2 = home.clone();
            let r = blocking(move || {
                registry_client::submit_key(&home2, Some(&url), || {
                    passphrase_for(&home2, &*store, pass)
                })
            })
            .await;
            let Some(r) = r else { return };
            reply.send(Outcome::Submitted(r.map_err(|e| problem(&e))));
            if let Some(Ok(cfg)) = blocking(move || Config::load(&home)).await {
                reply.send(Outcome::Config(Ok(ConfigView::of(&cfg))));
            }
        });
    }

    /// Key → Show key state: ask the registry at `url` (signed with the key).
    pub(crate) fn key_status(&self, url: String, pass: Option<Passphrase>) {
        let pass = pass.or_else(|| self.preset.clone());
        let (home, store, reply) = (self.home.clone(), self.store.clone(), self.reply());
        self.rt.spawn(async move {
            let r = blocking(move || -> ClientResult<KeyStatusReply> {
                let info = keystore::read_public(&home)?;
                let pass = passphrase_for(&home, &*store, pass)?;
                let key = keystore::load(&home, &pass)?;
                // the CA remembered with this URL (`pra key submit --ca`)
                let cfg = Config::load(&home)?;
                let ca = cfg
                    .registry_ca()
                    .filter(|_| cfg.registry_url() == Some(url.as_str()));
                registry_client::key_status_with_ca(&url, ca, &key, &info.meta.user)
            })
            .await;
            if let Some(r) = r {
                reply.send(Outcome::KeyStatus(r.map_err(|e| problem(&e))));
            }
        });
    }
}

impl Backend {
    /// Key → Enroll with an invite (what `pra enroll INVITE` does, on the
    /// blocking pool): a new key's passphrase is `pass`, confirmed by
    /// `again`; for a key of the invite's user already here, `pass` is its
    /// passphrase (empty: the preset or remembered one). With `remember`
    /// the passphrase is stored for the enrolled key; one remembered for a
    /// key this replaced is dropped. [`Outcome::Enrolled`] follows, then the
    /// new config and key.
    pub(crate) fn enroll(
        &self,
        invite: String,
        pass: Passphrase,
        again: Passphrase,
        remember: bool,
        force: bool,
    ) {
        let preset = self.preset.clone();
        let (home, store, reply) = (self.home.clone(), self.store.clone(), self.reply());
        self.rt.spawn(async move {
            let home2 = home.clone();
            let r = blocking(move || -> ClientResult<(Enrolled, Option<Notice>)> {
                let old = keystore::read_public(&home2).ok().map(|k| k.fingerprint());
                let mut used = None;
                let done = enroll::enroll(&home2, &invite, force, |new| {
                    let p = if new {
                        passphrase::confirm_entries(passphrase::require_nonempty(pass)?, &again)?
                    } else {
                        let typed = (!pass.is_empty()).then_some(pass).or(preset);
                        passphrase_for(&home2, &*store, typed)?
                    };
                    used = Some(p.clone());
                    Ok(p)
                })?;
                if let Some(old) = old.filter(|fp| *fp != done.fingerprint) {
                    // A passphrase remembered for the replaced key is useless now.
                    let _ = store.delete(&old);
                }
                let notice = match used {
                    Some(p) if remember => Some(match store.set(&done.fingerprint, &p) {
                        Ok(()) => Notice::Remembered,
                        Err(e) => Notice::Store(store_problem(&e)),
                    }),
                    _ => None,
                };
                Ok((done, notice))
            })
            .await;
            let Some(r) = r else { return };
            let r = match r {
                Ok((done, notice)) => {
                    if let Some(n) = notice {
                        reply.send(Outcome::Notice(n));
                    }
                    Ok(done)
                }
                Err(e) => Err(problem(&e)),
            };
            reply.send(Outcome::Enrolled(r));
            send_state(home, &reply).await;
        });
    }

    /// How the doctor gets the key: the given / preset / remembered
    /// passphrase, else the key checks are skipped (the app never blocks on
    /// a prompt).
    fn key_access(&self, pass: Option<Passphrase>) -> impl FnOnce() -> KeyAccess + Send + 'static {
        let pass = pass.or_else(|| self.preset.clone());
        let (home, store) = (self.home.clone(), self.store.clone());
        move || {
            let pass = pass.or_else(|| {
                let fp = keystore::read_public(&home).ok()?.fingerprint();
                store.get(&fp).ok().flatten()
            });
            match pass {
                Some(pass) => KeyAccess::Unlock(Box::new(move || {
                    let info = keystore::read_public(&home)?;
                    let key = keystore::load(&home, &pass)?;
                    Ok((key, info.meta.user))
                })),
                None => KeyAccess::Skip(
                    "no passphrase was typed and none is remembered on this PC".into(),
                ),
            }
        }
    }

    /// Help → Run diagnostics: [`Outcome::DoctorCheck`] per check as it
    /// completes, then [`Outcome::DoctorDone`]. Every line goes to User.log.
    pub(crate) fn doctor(&self, pass: Option<Passphrase>) {
        let access = self.key_access(pass);
        let (home, timing, reply) = (self.home.clone(), self.timing.clone(), self.reply());
        self.rt.spawn(async move {
            let Some(key) = blocking(access).await else {
                return;
            };
            let each = reply.clone();
            let report = run_doctor(&home, key, timing, move |c| {
                each.send(Outcome::DoctorCheck(c.clone()));
            })
            .await;
            reply.send(Outcome::DoctorDone(report));
        });
    }

    /// Help → Export logs: a fresh doctor report, then the helpdesk bundle
    /// (what `pra logs export FILE` writes).
    pub(crate) fn export_logs(&self, path: PathBuf, pass: Option<Passphrase>) {
        let access = self.key_access(pass);
        let (home, timing, reply) = (self.home.clone(), self.timing.clone(), self.reply());
        self.rt.spawn(async move {
            let Some(key) = blocking(access).await else {
                return;
            };
            let report = run_doctor(&home, key, timing, |_| {}).await;
            let r = blocking(move || {
                let b = pra_client::bundle::export_bundle(&home, &path, &report)?;
                logging::user_line(&format!("log bundle written: {}", b.path.display()));
                Ok::<_, ClientError>((b.path, report.summary()))
            })
            .await;
            if let Some(r) = r {
                if let Err(e) = &r {
                    logging::user_line(&e.line());
                }
                reply.send(Outcome::LogsExported(r.map_err(|e| problem(&e))));
            }
        });
    }
}

/// The doctor on the app's runtime, each line also in User.log.
async fn run_doctor(
    home: &Home,
    key: KeyAccess,
    timing: Timing,
    mut each: impl FnMut(&Check) + Send,
) -> Report {
    let input = DoctorInput {
        key,
        registry: None,
        timing,
    };
    logging::user_line("doctor: started");
    let report = doctor::run(home, input, |c| {
        logging::user_line(&format!("doctor: {}", c.line()));
        each(c);
    })
    .await;
    logging::user_line(&report.summary());
    report
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(3));
        // Blocking jobs (a registry request, a keyring call) are not waited for.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(500));
        }
    }
}

/// The given passphrase, else the preset one (`PRA_PASSPHRASE`), else the
/// remembered one, else `ERR(10197)`.
fn passphrase_for(
    home: &Home,
    store: &dyn SecretStore,
    pass: Option<Passphrase>,
) -> ClientResult<Passphrase> {
    if let Some(p) = pass {
        return Ok(p);
    }
    let fp = keystore::read_public(home)?.fingerprint();
    match store.get(&fp) {
        Ok(Some(p)) => Ok(p),
        _ => Err(ClientError::with_fix(
            pra_proto::codes::Code::PassphraseUnavailable,
            "no passphrase was given and none is remembered on this PC",
            "type the passphrase of your key",
        )),
    }
}

enum Prepared {
    Ready {
        cfg: Box<TunnelConfig>,
        notice: Option<Notice>,
        lock: ConnectLock,
    },
    NeedPassphrase(Option<Problem>),
    Failed(Problem),
}

/// Everything before the tunnel starts (blocking): config, key, passphrase
/// (given or remembered), the credential store.
fn prepare(
    home: &Home,
    store: &dyn SecretStore,
    pass: Option<Passphrase>,
    remember: bool,
    timing: Timing,
) -> Prepared {
    let fail = |e: ClientError| Prepared::Failed(problem(&e));
    // Another `pra connect` (or app) on this home: say which, ask nothing.
    let lock = match instance::acquire(home, "pra-gui") {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let cfg = match Config::load(home) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Err(e) = cfg.gateway() {
        return fail(e);
    }
    let info = match keystore::read_public(home) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let fp = info.fingerprint();
    let (pass, from_store) = match pass {
        Some(p) => (p, false),
        None => match store.get(&fp) {
            Ok(Some(p)) => (p, true),
            Ok(None) | Err(StoreError::Unavailable(_)) => return Prepared::NeedPassphrase(None),
            Err(e) => return Prepared::NeedPassphrase(Some(store_problem(&e))),
        },
    };
    let key = match keystore::load(home, &pass) {
        Ok(k) => Arc::new(k),
        Err(e) if from_store => {
            // The remembered passphrase no longer opens the key: drop it, ask.
            let _ = store.delete(&fp);
            return Prepared::NeedPassphrase(Some(problem(&e)));
        }
        Err(e) => return fail(e),
    };
    let notice = if remember && !from_store {
        Some(match store.set(&fp, &pass) {
            Ok(()) => Notice::Remembered,
            Err(e) => Notice::Store(store_problem(&e)),
        })
    } else {
        None
    };
    drop(pass);
    match pra_client::tunnel::setup::tunnel_config_with_key(home, &cfg, info.meta.user.clone(), key)
    {
        Ok(mut tc) => {
            tc.timing = timing;
            Prepared::Ready {
                cfg: Box::new(tc),
                notice,
                lock,
            }
        }
        Err(e) => fail(e),
    }
}

/// Forward every state of the tunnel to the UI until it ends.
async fn drive(run: u64, tunnel: Tunnel, reply: Reply, running: Arc<Mutex<Option<Running>>>) {
    let mut rx = tunnel.state();
    let watcher = {
        let reply = reply.clone();
        tokio::spawn(async move {
            loop {
                let state = rx.borrow_and_update().clone();
                reply.send(Outcome::Tunnel {
                    run,
                    state: Box::new(state),
                });
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    let last = tunnel.state();
    let ended = tunnel.wait().await;
    let _ = watcher.await;
    // The final state, in case the watcher stopped before reading it.
    let state = last.borrow().clone();
    reply.send(Outcome::Tunnel {
        run,
        state: Box::new(state),
    });
    {
        let mut g = running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.as_ref().is_some_and(|r| r.run == run) {
            *g = None;
        }
    }
    reply.send(Outcome::TunnelEnded {
        run,
        error: ended.err().map(|e| problem(&e)),
    });
}
