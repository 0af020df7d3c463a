//! One SSH connection to the gateway, step by step, each step with its own
//! code: name resolution (`ERR(10201)`), TCP (`ERR(10202)`), SSH handshake
//! with the host key checked against the pin before anything else is sent
//! (`ERR(10204)`, fail closed), public-key authentication (`ERR(10207)`,
//! refined to pending/revoked by the caller), the rules request
//! (`ERR(10203)`/`ERR(10208)`). `pra doctor` runs the steps one by one;
//! [`Connector`] runs them in a row for the tunnel.
//!
//! russh is tuned for forwarding: AES-GCM first where the CPU has AES
//! instructions, large windows and packets, TCP_NODELAY, keepalives, and
//! `auto_window_adjust` off: every channel's receive window is refilled by
//! its consumer (see `forward`), so a slow reader backpressures only itself.

use super::setup::{PinStore, RefusalExplainer, Timing, TunnelConfig};
use crate::config::{self, GatewayAddr, HostKeyCheck};
use crate::error::{ClientError, ClientResult};
use pra_proto::codes::Code;
use pra_proto::rules::RulesDocument;
use pra_proto::sanitize::sanitize;
use russh::client::{self, DisconnectReason, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelOpenFailure, Preferred, cipher, compression, kex, mac};
use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Receive window per channel. The gateway may have this much unread data
/// in flight per channel; with consumer-driven refills it is also the most
/// a stalled local reader makes us hold.
pub(crate) const WINDOW_SIZE: u32 = 8 * 1024 * 1024;
/// Largest data packet we accept (russh's limit for a channel packet).
pub(crate) const MAX_PACKET: u32 = 65535;
/// Messages russh queues per channel before its consumer takes them.
const CHANNEL_BUFFER: usize = 256;
/// Largest rules document accepted.
const MAX_RULES_BYTES: usize = 1024 * 1024;

/// The russh client configuration of every PRA connection.
pub fn ssh_config(timing: &Timing) -> Arc<client::Config> {
    Arc::new(client::Config {
        window_size: WINDOW_SIZE,
        maximum_packet_size: MAX_PACKET,
        channel_buffer_size: CHANNEL_BUFFER,
        preferred: preferred(),
        keepalive_interval: Some(timing.keepalive_interval),
        keepalive_max: timing.keepalive_max,
        inactivity_timeout: None,
        nodelay: true,
        auto_window_adjust: false,
        ..Default::default()
    })
}

/// Modern algorithms only; AES-GCM first on CPUs with AES instructions,
/// ChaCha20-Poly1305 first elsewhere; no SHA-1; no compression.
fn preferred() -> Preferred {
    let ciphers: &'static [cipher::Name] = if aes_in_hardware() {
        &[
            cipher::AES_256_GCM,
            cipher::AES_128_GCM,
            cipher::CHACHA20_POLY1305,
        ]
    } else {
        &[
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_GCM,
            cipher::AES_128_GCM,
        ]
    };
    Preferred {
        kex: Cow::Borrowed(&[
            kex::MLKEM768X25519_SHA256,
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
        ]),
        cipher: Cow::Borrowed(ciphers),
        mac: Cow::Borrowed(&[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM]),
        compression: Cow::Borrowed(&[compression::NONE]),
        ..Preferred::default()
    }
}

fn aes_in_hardware() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The russh handler: checks the host key against the pin and reports how
/// the session ended.
pub(crate) struct Gate {
    pin: Option<String>,
    offered: Arc<Mutex<Option<String>>>,
    algorithms: Arc<Mutex<Option<String>>>,
    closed: watch::Sender<Option<String>>,
}

/// Errors the handler can raise.
#[derive(Debug)]
pub(crate) enum GateError {
    /// Transport or protocol failure reported by russh.
    Ssh(russh::Error),
    /// The host key is not the pinned one.
    HostKeyChanged {
        /// Pinned fingerprint.
        pinned: String,
        /// Offered fingerprint.
        offered: String,
    },
}

impl From<russh::Error> for GateError {
    fn from(e: russh::Error) -> Self {
        GateError::Ssh(e)
    }
}

impl client::Handler for Gate {
    type Error = GateError;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, GateError> {
        let fp = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => pra_proto::fingerprint(key),
            PublicKeyOrCertificate::Certificate(cert) => {
                pra_proto::fingerprint(&russh::keys::PublicKey::new(cert.public_key().clone(), ""))
            }
        };
        if let Ok(mut o) = self.offered.lock() {
            *o = Some(fp.clone());
        }
        match config::check_host_key(self.pin.as_deref(), &fp) {
            HostKeyCheck::Matches | HostKeyCheck::FirstUse => Ok(true),
            HostKeyCheck::Changed { pinned } => Err(GateError::HostKeyChanged {
                pinned,
                offered: fp,
            }),
        }
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        _session: &mut client::Session,
    ) -> Result<(), GateError> {
        let text = format!(
            "kex={} hostkey={} cipher={} mac={}",
            names.kex.as_ref(),
            names.key,
            names.cipher.as_ref(),
            names.client_mac.as_ref()
        );
        if let Ok(mut a) = self.algorithms.lock() {
            *a = Some(text);
        }
        Ok(())
    }

    async fn disconnected(&mut self, reason: DisconnectReason<GateError>) -> Result<(), GateError> {
        let text = match reason {
            DisconnectReason::ReceivedDisconnect(info) => {
                let msg = sanitize(&info.message, 200);
                if msg.is_empty() {
                    format!("the gateway closed the session ({:?})", info.reason_code)
                } else {
                    format!("the gateway closed the session: {msg}")
                }
            }
            DisconnectReason::Error(GateError::Ssh(e)) => describe_ssh_error(&e),
            DisconnectReason::Error(GateError::HostKeyChanged { .. }) => {
                "the host key changed during the session".to_string()
            }
        };
        self.closed.send_replace(Some(text));
        Ok(())
    }
}

fn describe_ssh_error(e: &russh::Error) -> String {
    match e {
        russh::Error::KeepaliveTimeout => {
            "the gateway stopped answering keepalives (network path lost)".into()
        }
        russh::Error::HUP | russh::Error::Disconnect => "the gateway closed the connection".into(),
        russh::Error::IO(io) => format!("network error: {io}"),
        other => format!("SSH error: {other}"),
    }
}

/// An authenticated (or at least handshaken) SSH connection.
pub struct SshSession {
    handle: Handle<Gate>,
    closed: watch::Receiver<Option<String>>,
    /// `SHA256:` fingerprint of the gateway's host key.
    pub host_key: String,
    /// Negotiated algorithms, for System.log.
    pub algorithms: String,
    /// The address connected to.
    pub peer: SocketAddr,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession")
            .field("peer", &self.peer)
            .field("host_key", &self.host_key)
            .finish_non_exhaustive()
    }
}

impl SshSession {
    /// The russh handle (open channels, grant windows).
    pub(crate) fn handle(&self) -> &Handle<Gate> {
        &self.handle
    }

    /// True once the connection is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.closed.borrow().is_some()
    }

    /// Resolves when the connection ends, with the reason.
    pub fn closed(&self) -> impl Future<Output = String> + Send + 'static {
        let mut rx = self.closed.clone();
        async move {
            loop {
                if let Some(r) = rx.borrow_and_update().clone() {
                    return r;
                }
                if rx.changed().await.is_err() {
                    return "the connection ended".into();
                }
            }
        }
    }

    /// Open a `direct-tcpip` channel to `host:port`.
    pub(crate) async fn open_direct_tcpip(
        &self,
        host: &str,
        port: u16,
        origin: SocketAddr,
    ) -> Result<russh::Channel<client::Msg>, OpenError> {
        match self
            .handle
            .channel_open_direct_tcpip(
                host,
                u32::from(port),
                origin.ip().to_string(),
                u32::from(origin.port()),
            )
            .await
        {
            Ok(ch) => Ok(ch),
            Err(russh::Error::ChannelOpenFailure(f)) => Err(OpenError::Refused(refusal_text(&f))),
            Err(e) => Err(OpenError::Session(describe_ssh_error(&e))),
        }
    }

    /// Send SSH_MSG_DISCONNECT so the gateway logs a clean end, not a loss.
    pub async fn disconnect(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "pra disconnect", "en")
            .await;
    }
}

/// Why a channel did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The gateway refused it (the target is down or not permitted).
    Refused(String),
    /// The session is gone.
    Session(String),
}

fn refusal_text(f: &ChannelOpenFailure) -> String {
    match f {
        ChannelOpenFailure::AdministrativelyProhibited => "not permitted by your rules".into(),
        ChannelOpenFailure::ConnectFailed => "the target did not accept the connection".into(),
        ChannelOpenFailure::ResourceShortage => "the gateway is short of resources".into(),
        ChannelOpenFailure::UnknownChannelType => "forwarding is not supported".into(),
        ChannelOpenFailure::Other { reason, .. } => sanitize(reason, 200),
    }
}

async fn with_timeout<T>(
    d: Duration,
    fut: impl Future<Output = ClientResult<T>>,
    on_timeout: impl FnOnce() -> ClientError,
) -> ClientResult<T> {
    match tokio::time::timeout(d, fut).await {
        Ok(r) => r,
        Err(_) => Err(on_timeout()),
    }
}

/// Step 1: the gateway's addresses (`ERR(10201)`).
pub async fn resolve(gw: &GatewayAddr, timing: &Timing) -> ClientResult<Vec<SocketAddr>> {
    let host = gw.host.clone();
    let port = gw.port;
    with_timeout(
        timing.connect_timeout,
        async {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| {
                    ClientError::new(
                        Code::GatewayNotResolved,
                        format!("the gateway name {} does not resolve ({e})", gw.host),
                    )
                })?
                .collect();
            if addrs.is_empty() {
                return Err(ClientError::new(
                    Code::GatewayNotResolved,
                    format!("the gateway name {} has no address", gw.host),
                ));
            }
            Ok(addrs)
        },
        || {
            ClientError::new(
                Code::GatewayNotResolved,
                format!(
                    "resolving the gateway name {} took longer than {} s",
                    gw.host,
                    timing.connect_timeout.as_secs()
                ),
            )
        },
    )
    .await
}

/// Step 2: a TCP connection to the first address that answers (`ERR(10202)`).
pub async fn tcp_connect(
    gw: &GatewayAddr,
    addrs: &[SocketAddr],
    timing: &Timing,
) -> ClientResult<TcpStream> {
    let mut last = String::new();
    for addr in addrs {
        match tokio::time::timeout(timing.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => {
                last = format!(
                    "{addr}: no answer within {} s",
                    timing.connect_timeout.as_secs()
                )
            }
        }
    }
    Err(ClientError::new(
        Code::GatewayUnreachable,
        format!("cannot reach the gateway {gw} over TCP ({last})"),
    ))
}

/// Step 3: the SSH handshake with the host key checked against `pin`
/// (`ERR(10204)` on a mismatch, before authentication).
pub async fn handshake(
    gw: &GatewayAddr,
    stream: TcpStream,
    pin: Option<&str>,
    config: Arc<client::Config>,
    timing: &Timing,
) -> ClientResult<SshSession> {
    let peer = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], gw.port)));
    let offered = Arc::new(Mutex::new(None));
    let algorithms = Arc::new(Mutex::new(None));
    let (closed_tx, closed_rx) = watch::channel(None);
    let gate = Gate {
        pin: pin.map(str::to_string),
        offered: offered.clone(),
        algorithms: algorithms.clone(),
        closed: closed_tx,
    };
    let handle = with_timeout(
        timing.ssh_timeout,
        async {
            client::connect_stream(config, stream, gate)
                .await
                .map_err(|e| match e {
                    GateError::HostKeyChanged { pinned, offered } => {
                        config::host_key_changed(gw, &pinned, &offered)
                    }
                    GateError::Ssh(e) => ClientError::new(
                        Code::GatewayProtocol,
                        format!(
                            "the SSH handshake with {gw} failed ({}); is this the PRA gateway's address and port?",
                            describe_ssh_error(&e)
                        ),
                    ),
                })
        },
        || {
            ClientError::new(
                Code::GatewayProtocol,
                format!(
                    "the SSH handshake with {gw} did not finish within {} s",
                    timing.ssh_timeout.as_secs()
                ),
            )
        },
    )
    .await?;
    let host_key = offered.lock().ok().and_then(|o| o.clone()).ok_or_else(|| {
        ClientError::new(
            Code::GatewayProtocol,
            format!("{gw} finished the handshake without showing a host key"),
        )
    })?;
    let algorithms = algorithms
        .lock()
        .ok()
        .and_then(|a| a.clone())
        .unwrap_or_default();
    Ok(SshSession {
        handle,
        closed: closed_rx,
        host_key,
        algorithms,
        peer,
    })
}

/// Step 4: public-key authentication. A refusal is `ERR(10207)` here; the
/// caller may refine it with the registry.
pub async fn authenticate(
    session: &mut SshSession,
    user: &str,
    key: Arc<PrivateKey>,
    timing: &Timing,
) -> ClientResult<()> {
    let fp = pra_proto::fingerprint(key.public_key());
    let handle = &mut session.handle;
    let accepted = login_step(timing, async {
        let hash = if key.algorithm().is_rsa() {
            handle
                .best_supported_rsa_hash()
                .await
                .ok()
                .flatten()
                .flatten()
        } else {
            None
        };
        handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
            .await
    })
    .await?;
    if accepted {
        Ok(())
    } else {
        Err(key_refused(user, &fp))
    }
}

/// Password authentication (only the enrollment login `pra-enroll` uses
/// it). `Ok(false)` when the gateway refused the password; a dropped
/// connection or a timeout is `ERR(10209)`.
pub(crate) async fn authenticate_password(
    session: &mut SshSession,
    user: &str,
    password: &str,
    timing: &Timing,
) -> ClientResult<bool> {
    let handle = &mut session.handle;
    login_step(timing, handle.authenticate_password(user, password)).await
}

/// One login request within the SSH step timeout: `Ok(true)` when the
/// gateway accepted it; a dropped connection or a timeout is `ERR(10209)`.
async fn login_step(
    timing: &Timing,
    request: impl Future<Output = Result<client::AuthResult, russh::Error>>,
) -> ClientResult<bool> {
    with_timeout(
        timing.ssh_timeout,
        async {
            let res = request.await.map_err(|e| {
                ClientError::new(
                    Code::GatewayProtocol,
                    format!("the gateway ended the login ({})", describe_ssh_error(&e)),
                )
            })?;
            Ok(res.success())
        },
        || {
            ClientError::new(
                Code::GatewayProtocol,
                format!(
                    "the login did not finish within {} s",
                    timing.ssh_timeout.as_secs()
                ),
            )
        },
    )
    .await
}

fn key_refused(user: &str, fp: &str) -> ClientError {
    ClientError::new(
        Code::KeyRefused,
        format!("the gateway did not accept the key {fp} for user {user}"),
    )
}

/// Step 5: `exec pra-rules` on a session channel; the JSON answer.
pub async fn fetch_rules(session: &SshSession, timing: &Timing) -> ClientResult<RulesDocument> {
    let bad = |what: String| ClientError::new(Code::RulesNotFetched, what);
    let doc = with_timeout(
        timing.ssh_timeout,
        async {
            let mut ch = session.handle.channel_open_session().await.map_err(|e| {
                bad(format!(
                    "the gateway refused the rules request ({})",
                    describe_ssh_error(&e)
                ))
            })?;
            ch.exec(true, pra_proto::RULES_COMMAND)
                .await
                .map_err(|e| bad(format!("cannot send the rules request: {e}")))?;
            let mut out: Vec<u8> = Vec::new();
            let mut err: Vec<u8> = Vec::new();
            let mut status: Option<u32> = None;
            let mut refused = false;
            while let Some(msg) = ch.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        grant(session, ch.id(), data.len());
                        if out.len() + data.len() > MAX_RULES_BYTES {
                            return Err(bad(format!(
                                "the rules document is larger than {MAX_RULES_BYTES} bytes"
                            )));
                        }
                        out.extend_from_slice(&data);
                    }
                    ChannelMsg::ExtendedData { data, .. } => {
                        grant(session, ch.id(), data.len());
                        if err.len() < 4096 {
                            err.extend_from_slice(&data);
                        }
                    }
                    ChannelMsg::Failure => refused = true,
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            let stderr = sanitize(String::from_utf8_lossy(&err).trim(), 300);
            if refused && out.is_empty() {
                return Err(bad(format!(
                    "the gateway does not answer the rules request `{}`; is this a PRA gateway?",
                    pra_proto::RULES_COMMAND
                )));
            }
            match status {
                Some(0) | None if !out.is_empty() => {}
                Some(n) => {
                    return Err(bad(format!(
                        "the rules request failed (exit status {n}{})",
                        if stderr.is_empty() {
                            String::new()
                        } else {
                            format!(": {stderr}")
                        }
                    )));
                }
                None => {
                    return Err(bad(
                        "the gateway closed the rules request without an answer".into(),
                    ));
                }
            }
            RulesDocument::parse(&out).map_err(|e| bad(sanitize(&e, 300)))
        },
        || {
            bad(format!(
                "the gateway did not answer the rules request within {} s",
                timing.ssh_timeout.as_secs()
            ))
        },
    )
    .await?;
    if doc.rules.is_empty() {
        return Err(ClientError::new(
            Code::NoRules,
            format!(
                "the gateway has no forwarding rules for user {}",
                sanitize(&doc.user, 64)
            ),
        ));
    }
    Ok(doc)
}

/// Refill `n` bytes of a channel's receive window (`auto_window_adjust` is off).
pub(crate) fn grant(session: &SshSession, id: russh::ChannelId, n: usize) {
    if n > 0 {
        let _ = session
            .handle
            .window_adjust(id, u32::try_from(n).unwrap_or(u32::MAX));
    }
}

/// Runs the steps in a row: new sessions for the tunnel, with the pin kept
/// across reconnects (pinned on first use when nothing was pinned). Knows
/// every gateway of the registry (`address`, then the alternates); the
/// caller picks which one to dial, the pin is shared by all.
pub(crate) struct Connector {
    gateways: Vec<GatewayAddr>,
    current: AtomicUsize,
    user: String,
    key: Arc<PrivateKey>,
    pin: RwLock<Option<String>>,
    pin_store: Option<PinStore>,
    explain_refusal: Option<RefusalExplainer>,
    timing: Timing,
    config: Arc<client::Config>,
}

/// What [`Connector::open_at`] adds to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    /// This connection pinned the host key (trust on first use).
    pub pinned_now: bool,
    /// The gateway it went to.
    pub gateway: GatewayAddr,
}

impl Connector {
    /// A connector for the tunnel's settings.
    pub(crate) fn new(cfg: &TunnelConfig) -> Connector {
        Connector {
            gateways: cfg.gateways(),
            current: AtomicUsize::new(0),
            user: cfg.user.clone(),
            key: cfg.key.clone(),
            pin: RwLock::new(cfg.host_key.clone()),
            pin_store: cfg.pin_store.clone(),
            explain_refusal: cfg.explain_refusal.clone(),
            timing: cfg.timing.clone(),
            config: ssh_config(&cfg.timing),
        }
    }

    /// How many gateways there are (at least one).
    pub(crate) fn count(&self) -> usize {
        self.gateways.len().max(1)
    }

    /// Index of the gateway of the last successful connection (0 before).
    pub(crate) fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// The gateway at `i` (modulo the count).
    pub(crate) fn gateway_at(&self, i: usize) -> &GatewayAddr {
        &self.gateways[i % self.count()]
    }

    /// The gateway in use (the last one connected to, for log and error
    /// lines).
    pub(crate) fn gateway(&self) -> &GatewayAddr {
        self.gateway_at(self.current())
    }

    fn current_pin(&self) -> Option<String> {
        self.pin.read().ok().and_then(|p| p.clone())
    }

    /// Resolve, connect, handshake (pin checked), authenticate on gateway
    /// `i`; pin the host key if nothing was pinned.
    pub(crate) async fn open_at(&self, i: usize) -> ClientResult<(SshSession, Opened)> {
        let gateway = self.gateway_at(i);
        let addrs = resolve(gateway, &self.timing).await?;
        let stream = tcp_connect(gateway, &addrs, &self.timing).await?;
        let pin = self.current_pin();
        let mut session = handshake(
            gateway,
            stream,
            pin.as_deref(),
            self.config.clone(),
            &self.timing,
        )
        .await?;
        if let Err(e) = authenticate(&mut session, &self.user, self.key.clone(), &self.timing).await
        {
            session.disconnect().await;
            return Err(self.explain(e).await);
        }
        let mut pinned_now = false;
        if pin.is_none() {
            if let Some(store) = &self.pin_store {
                store(gateway, &session.host_key)?;
            }
            if let Ok(mut p) = self.pin.write() {
                *p = Some(session.host_key.clone());
            }
            pinned_now = true;
        }
        Ok((
            session,
            Opened {
                pinned_now,
                gateway: gateway.clone(),
            },
        ))
    }

    /// [`Connector::open_at`] and the rules request; on success gateway
    /// `i` becomes the current one.
    pub(crate) async fn open_with_rules_at(
        &self,
        i: usize,
    ) -> ClientResult<(SshSession, Opened, RulesDocument)> {
        let (session, opened) = self.open_at(i).await?;
        match fetch_rules(&session, &self.timing).await {
            Ok(doc) => {
                self.current.store(i % self.count(), Ordering::Relaxed);
                Ok((session, opened, doc))
            }
            Err(e) => {
                session.disconnect().await;
                Err(e)
            }
        }
    }

    /// Turn a key refusal into pending/revoked where the registry tells.
    async fn explain(&self, e: ClientError) -> ClientError {
        if e.code() != Code::KeyRefused {
            return e;
        }
        let Some(explain) = self.explain_refusal.clone() else {
            return e;
        };
        let asked = tokio::time::timeout(
            self.timing.connect_timeout,
            tokio::task::spawn_blocking(move || explain()),
        )
        .await;
        match asked {
            Ok(Ok(Some(finer))) => finer,
            _ => e,
        }
    }
}

/// The gateway's reason when it ended a live session because the registry
/// no longer allows the key or the account: `key_revoked` for the session
/// closed with "…access revoked (key_revoked)". `None` for every other
/// ending (network loss, restart, an admin's disconnect, a registry
/// outage), after which the tunnel reconnects.
pub(crate) fn revocation(closed: &str) -> Option<&str> {
    let rest = &closed[closed.find("access revoked (")? + "access revoked (".len()..];
    let reason = &rest[..rest.find(')')?];
    matches!(
        reason,
        "key_revoked"
            | "user_disabled"
            | "key_pending"
            | "unknown_key"
            | "unknown_user"
            | "other_users_key"
    )
    .then_some(reason)
}

/// The one fatal line for a session the gateway ended by revocation (pure).
pub(crate) fn revoked_error(reason: &str, user: &str, fp: &str) -> ClientError {
    let user = sanitize(user, 64);
    match reason {
        "key_revoked" => ClientError::with_fix(
            Code::KeyRevoked,
            format!("the administrator revoked the key {fp}; the gateway ended the session"),
            format!(
                "generate a new key with `pra keygen --user {user} --force` and have it approved"
            ),
        ),
        "key_pending" => ClientError::with_fix(
            Code::KeyPending,
            format!(
                "the key {fp} was set back to pending by the administrator; the gateway ended the session"
            ),
            Code::KeyPending.fix(),
        ),
        "user_disabled" => ClientError::with_fix(
            Code::KeyRefused,
            format!("the administrator disabled the account {user}; the gateway ended the session"),
            format!("ask your administrator to enable the account {user}"),
        ),
        other => ClientError::with_fix(
            Code::KeyRefused,
            format!(
                "the gateway ended the session: the registry no longer allows the key {fp} for {user} ({other})"
            ),
            "ask your administrator to check the key and the account",
        ),
    }
}

/// `ERR(…) the forwarding rules could not be fetched (ERR(10203)): …`: the
/// finer code stays first, the code employees know is named too.
pub(crate) fn in_rules_context(e: ClientError) -> ClientError {
    if e.code() == Code::RulesNotFetched {
        return e;
    }
    let fix = e.fix().to_string();
    ClientError::with_fix(
        e.code(),
        format!(
            "the forwarding rules could not be fetched ({}): {e}",
            Code::RulesNotFetched.label()
        ),
        fix,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rules_context_keeps_the_finer_code_and_names_10203() {
        let e = in_rules_context(ClientError::new(
            Code::GatewayUnreachable,
            "cannot reach gw:10022",
        ));
        assert_eq!(e.code(), Code::GatewayUnreachable);
        assert!(
            e.line().starts_with(
                "ERR(10202) the forwarding rules could not be fetched (ERR(10203)): cannot reach gw:10022: "
            ),
            "{}",
            e.line()
        );
        let same = in_rules_context(ClientError::new(Code::RulesNotFetched, "x"));
        assert_eq!(
            same.line(),
            ClientError::new(Code::RulesNotFetched, "x").line()
        );
    }

    #[test]
    fn config_is_tuned_for_forwarding() {
        let c = ssh_config(&Timing::default());
        assert!(!c.auto_window_adjust);
        assert!(c.nodelay);
        assert_eq!(c.window_size, WINDOW_SIZE);
        assert_eq!(c.keepalive_interval, Some(Duration::from_secs(5)));
        assert_eq!(c.keepalive_max, 2);
        let names: Vec<&str> = c.preferred.cipher.iter().map(|n| n.as_ref()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.contains("gcm") || n.contains("chacha20")),
            "{names:?}"
        );
        let macs: Vec<&str> = c.preferred.mac.iter().map(|n| n.as_ref()).collect();
        assert!(macs.iter().all(|m| !m.contains("sha1")));
    }

    #[tokio::test]
    async fn unresolvable_and_unreachable_have_their_codes() {
        let t = Timing {
            connect_timeout: Duration::from_secs(5),
            ..Timing::default()
        };
        let gw = GatewayAddr {
            host: "name-that-does-not-exist.invalid".into(),
            port: 10022,
        };
        assert_eq!(
            resolve(&gw, &t).await.unwrap_err().code(),
            Code::GatewayNotResolved
        );

        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let gw = GatewayAddr {
            host: "127.0.0.1".into(),
            port: addr.port(),
        };
        let addrs = resolve(&gw, &t).await.unwrap();
        let e = tcp_connect(&gw, &addrs, &t).await.unwrap_err();
        assert_eq!(e.code(), Code::GatewayUnreachable);
        assert!(
            e.to_string()
                .contains(&format!("127.0.0.1:{}", addr.port())),
            "{e}"
        );
    }
}
