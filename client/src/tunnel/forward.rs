//! The forwards: one listener per rule on 127.0.0.1, one `direct-tcpip`
//! channel per accepted connection, and the pump that moves the bytes.
//!
//! Flow control, per channel and independent of the others:
//! - local → gateway: a chunk is read only after the previous one fitted in
//!   the gateway's window for this channel (`data_bytes` waits for it), so a
//!   slow target slows only its own local writer;
//! - gateway → local: russh runs with `auto_window_adjust` off; the pump
//!   takes messages off the channel at once (the session loop never waits
//!   for a slow program), queues them, and grants window back only after
//!   the bytes were written to the local socket; the window grows with the
//!   link while the program keeps up (`super::window`). A local reader that stalls
//!   lets the gateway's window for its channel run dry; every other channel
//!   and the keepalives go on.
//!
//! Listeners stay bound while the tunnel reconnects; a connection accepted
//! meanwhile waits for the tunnel (up to [`super::setup::Timing::wait_for_tunnel`]).
//!
//! Channels are requested in the order the connections were accepted (the
//! accept loop queues the request before it hands the connection to its
//! task), so the gateway opens the target connections in that order too:
//! some programs tell their connections apart by the order they arrive in
//! (iperf3's data streams, for one).

use super::portowner;
use super::session::{self, OpenError, SshSession};
use super::setup::Timing;
use super::status::{ForwardState, Hub, RuleState};
use super::window::DownWindow;
use crate::logging::USER_LOG_TARGET;
use bytes::{Buf, Bytes, BytesMut};
use pra_proto::rules::{Rule, RulesDocument};
use pra_proto::sanitize::sanitize;
use russh::ChannelMsg;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Bytes read from a local program per chunk.
const READ_CHUNK: usize = 64 * 1024;

/// Byte and connection counters of one rule.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    up: AtomicU64,
    down: AtomicU64,
    active: AtomicU64,
}

struct ActiveGuard(Arc<Counters>);

impl ActiveGuard {
    fn new(c: Arc<Counters>) -> ActiveGuard {
        c.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(c)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What every connection task needs.
#[derive(Clone)]
pub(crate) struct Shared {
    pub hub: Hub,
    /// The current session (`None` while reconnecting).
    pub session: watch::Receiver<Option<Arc<SshSession>>>,
    /// Cancelled when the tunnel stops (a child of the tunnel's token).
    pub stop: CancellationToken,
    pub timing: Timing,
}

struct Slot {
    rule: Rule,
    target: Arc<RwLock<(String, u16)>>,
    counters: Arc<Counters>,
    accept: Option<JoinHandle<()>>,
    state: ForwardState,
}

impl Slot {
    fn stop(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
        }
    }
}

/// The set of forwards, reconciled with every rules document.
pub(crate) struct Forwards {
    slots: BTreeMap<String, Slot>,
    shared: Shared,
}

impl Forwards {
    pub(crate) fn new(shared: Shared) -> Forwards {
        Forwards {
            slots: BTreeMap::new(),
            shared,
        }
    }

    /// Make the listeners match `doc`: keep unchanged ones bound, rebind
    /// moved ones, open new ones, close removed ones. Returns nothing; read
    /// [`Forwards::states`] after.
    pub(crate) fn reconcile(&mut self, doc: &RulesDocument) {
        let wanted: Vec<Rule> = usable_rules(&doc.rules);
        let names: Vec<&str> = wanted.iter().map(|r| r.name.as_str()).collect();
        let gone: Vec<String> = self
            .slots
            .keys()
            .filter(|k| !names.contains(&k.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut s) = self.slots.remove(&name) {
                info!(rule = %sanitize(&name, 64), "rule removed by the administrator; listener closed");
                s.stop();
            }
        }
        for rule in wanted {
            let fresh = match self.slots.get_mut(&rule.name) {
                Some(slot) if slot.rule.local_port == rule.local_port => {
                    if let Ok(mut t) = slot.target.write() {
                        *t = (rule.target_host.clone(), rule.target_port);
                    }
                    if slot.rule != rule {
                        info!(rule = %sanitize(&rule.name, 64), "rule target changed");
                    }
                    slot.rule = rule;
                    if slot.accept.is_none() {
                        let name = slot.rule.name.clone();
                        self.bind(&name);
                    }
                    continue;
                }
                Some(slot) => {
                    slot.stop();
                    true
                }
                None => true,
            };
            if fresh {
                let counters = self
                    .slots
                    .get(&rule.name)
                    .map(|s| s.counters.clone())
                    .unwrap_or_default();
                let name = rule.name.clone();
                self.slots.insert(
                    name.clone(),
                    Slot {
                        target: Arc::new(RwLock::new((rule.target_host.clone(), rule.target_port))),
                        rule,
                        counters,
                        accept: None,
                        state: ForwardState::Stopped,
                    },
                );
                self.bind(&name);
            }
        }
        // Two rules on one local port: the second cannot listen.
        let mut seen: HashMap<u16, String> = HashMap::new();
        for slot in self.slots.values_mut() {
            if let Some(first) = seen.get(&slot.rule.local_port) {
                slot.stop();
                slot.state = ForwardState::PortDenied {
                    reason: format!("rule {} uses the same port", sanitize(first, 64)),
                };
            } else {
                seen.insert(slot.rule.local_port, slot.rule.name.clone());
            }
        }
    }

    /// Try again to listen where the port was busy.
    pub(crate) fn retry_unbound(&mut self) {
        let names: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.accept.is_none() && matches!(s.state, ForwardState::PortBusy { .. }))
            .map(|(n, _)| n.clone())
            .collect();
        let mut changed = false;
        for n in names {
            changed |= self.bind(&n);
        }
        if changed {
            self.publish();
        }
    }

    /// Listen for one rule; true if the state changed.
    fn bind(&mut self, name: &str) -> bool {
        let Some(slot) = self.slots.get_mut(name) else {
            return false;
        };
        let port = slot.rule.local_port;
        let before = slot.state.clone();
        match listen(port) {
            Ok(listener) => {
                info!(rule = %sanitize(name, 64), port, "listening on 127.0.0.1");
                slot.state = ForwardState::Forwarding;
                slot.accept = Some(tokio::spawn(accept_loop(
                    listener,
                    slot.rule.name.clone(),
                    slot.target.clone(),
                    slot.counters.clone(),
                    self.shared.clone(),
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                let holder = portowner::holder(port);
                if before
                    != (ForwardState::PortBusy {
                        holder: holder.clone(),
                    })
                {
                    warn!(rule = %sanitize(name, 64), port, holder = holder.as_deref().unwrap_or("unknown"), "local port busy");
                }
                slot.state = ForwardState::PortBusy { holder };
            }
            Err(e) => {
                warn!(rule = %sanitize(name, 64), port, %e, "cannot listen");
                slot.state = ForwardState::PortDenied {
                    reason: e.to_string(),
                };
            }
        }
        slot.state != before
    }

    /// The rule lines, sorted by local port, with current counters.
    pub(crate) fn states(&self) -> Vec<RuleState> {
        let mut v: Vec<RuleState> = self
            .slots
            .values()
            .map(|s| RuleState {
                name: sanitize(&s.rule.name, 64),
                local: SocketAddr::from((Ipv4Addr::LOCALHOST, s.rule.local_port)),
                target: display_target(&s.rule.target_host, s.rule.target_port),
                state: s.state.clone(),
                bytes_up: s.counters.up.load(Ordering::Relaxed),
                bytes_down: s.counters.down.load(Ordering::Relaxed),
                active: s.counters.active.load(Ordering::Relaxed),
            })
            .collect();
        v.sort_by_key(|r| (r.local.port(), r.name.clone()));
        v
    }

    /// Push listener states and counters to the hub. Connection tasks own
    /// the "target refused" state: it is kept as the hub has it.
    pub(crate) fn publish(&mut self) {
        let mut fresh = self.states();
        self.shared.hub.update(|s| {
            for r in fresh.iter_mut() {
                if let Some(old) = s.rule(&r.name)
                    && r.state == ForwardState::Forwarding
                    && matches!(old.state, ForwardState::TargetRefused { .. })
                {
                    r.state = old.state.clone();
                }
            }
            if s.rules != fresh {
                s.rules = std::mem::take(&mut fresh);
                true
            } else {
                false
            }
        });
    }

    /// Close every listener (connections end with the session).
    pub(crate) fn stop_all(&mut self) {
        for s in self.slots.values_mut() {
            s.stop();
            s.state = ForwardState::Stopped;
        }
    }

    /// Bytes per rule, for System.log at the end.
    pub(crate) fn totals(&self) -> Vec<(String, u64, u64)> {
        self.slots
            .values()
            .map(|s| {
                (
                    sanitize(&s.rule.name, 64),
                    s.counters.up.load(Ordering::Relaxed),
                    s.counters.down.load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}

impl Drop for Forwards {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Rules that can be forwarded (local port 0 cannot); names kept unique.
fn usable_rules(rules: &[Rule]) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for r in rules {
        if r.local_port == 0 || r.target_port == 0 {
            warn!(rule = %sanitize(&r.name, 64), "rule with port 0 ignored");
            continue;
        }
        if out.iter().any(|o| o.name == r.name) {
            warn!(rule = %sanitize(&r.name, 64), "duplicate rule name ignored");
            continue;
        }
        out.push(r.clone());
    }
    out
}

fn display_target(host: &str, port: u16) -> String {
    let h = sanitize(host, 253);
    if h.contains(':') {
        format!("[{h}]:{port}")
    } else {
        format!("{h}:{port}")
    }
}

/// A listener on 127.0.0.1:`port` only.
fn listen(port: u16) -> io::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    #[cfg(unix)]
    sock.set_reuseaddr(true)?;
    sock.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    sock.listen(1024)
}

async fn accept_loop(
    listener: TcpListener,
    name: String,
    target: Arc<RwLock<(String, u16)>>,
    counters: Arc<Counters>,
    shared: Shared,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let early = start_open(&shared, &target, peer);
                tokio::spawn(connection(
                    stream,
                    peer,
                    name.clone(),
                    target.clone(),
                    counters.clone(),
                    shared.clone(),
                    early,
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                warn!(rule = %sanitize(&name, 64), %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}

type OpenFuture =
    Pin<Box<dyn Future<Output = Result<russh::Channel<russh::client::Msg>, OpenError>> + Send>>;

/// A channel request already queued on the session, in accept order.
struct EarlyOpen {
    session: Arc<SshSession>,
    host: String,
    port: u16,
    open: OpenFuture,
}

/// Queue the channel request for a connection just accepted, when the
/// tunnel is up: the first poll puts it on the session's queue (in accept
/// order, also when the queue is full: its waiters are served in order);
/// the connection's task awaits the answer.
fn start_open(
    shared: &Shared,
    target: &RwLock<(String, u16)>,
    peer: SocketAddr,
) -> Option<EarlyOpen> {
    let session = shared.session.borrow().clone().filter(|s| !s.is_closed())?;
    let (host, port) = target.read().ok()?.clone();
    let (s, h) = (session.clone(), host.clone());
    let mut open: OpenFuture = Box::pin(async move { s.open_direct_tcpip(&h, port, peer).await });
    if let Poll::Ready(r) = open.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        open = Box::pin(std::future::ready(r));
    }
    Some(EarlyOpen {
        session,
        host,
        port,
        open,
    })
}

/// The current session, waiting up to `wait` for one while reconnecting.
async fn current_session(shared: &mut Shared) -> Option<Arc<SshSession>> {
    let wait = shared.timing.wait_for_tunnel;
    let rx = &mut shared.session;
    tokio::time::timeout(wait, async {
        loop {
            if let Some(s) = rx.borrow_and_update().clone()
                && !s.is_closed()
            {
                return Some(s);
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    })
    .await
    .ok()
    .flatten()
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    name: String,
    target: Arc<RwLock<(String, u16)>>,
    counters: Arc<Counters>,
    mut shared: Shared,
    early: Option<EarlyOpen>,
) {
    let _active = ActiveGuard::new(counters.clone());
    let _ = stream.set_nodelay(true);
    let rule = sanitize(&name, 64);
    let (session, host, port, opened) = match early {
        Some(e) => (e.session, e.host, e.port, e.open.await),
        None => {
            let Some(session) = current_session(&mut shared).await else {
                info!(%rule, %peer, "no tunnel to the gateway; local connection closed");
                return;
            };
            let (host, port) = match target.read() {
                Ok(t) => t.clone(),
                Err(_) => return,
            };
            let opened = session.open_direct_tcpip(&host, port, peer).await;
            (session, host, port, opened)
        }
    };
    let channel = match opened {
        Ok(ch) => ch,
        Err(OpenError::Refused(reason)) => {
            warn!(%rule, target = %display_target(&host, port), %reason, "target refused");
            shared
                .hub
                .set_rule_state(&rule, ForwardState::TargetRefused { reason });
            return;
        }
        Err(OpenError::Session(reason)) => {
            info!(%rule, %reason, "session lost while opening a channel; local connection closed");
            return;
        }
    };
    if matches!(
        shared.hub.snapshot().rule(&rule).map(|r| &r.state),
        Some(ForwardState::TargetRefused { .. })
    ) {
        shared.hub.set_rule_state(&rule, ForwardState::Forwarding);
        info!(target: USER_LOG_TARGET, "{rule}: target reachable again");
    }
    debug!(%rule, %peer, "channel open");
    let (up, down) = tokio::select! {
        r = pump(stream, channel, &session, &counters) => r,
        () = shared.stop.cancelled() => (0, 0),
    };
    debug!(%rule, %peer, up, down, "connection closed");
}

/// Move bytes both ways until both sides are done; returns (up, down).
async fn pump(
    stream: TcpStream,
    channel: russh::Channel<russh::client::Msg>,
    session: &SshSession,
    counters: &Counters,
) -> (u64, u64) {
    let id = channel.id();
    let (mut ch_rd, ch_wr) = channel.split();
    let (mut rd, mut wr) = stream.into_split();
    let sent = AtomicU64::new(0);
    let received = AtomicU64::new(0);

    let up = async {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            buf.reserve(READ_CHUNK);
            match rd.read_buf(&mut buf).await {
                Ok(0) => {
                    let _ = ch_wr.eof().await;
                    return Ok::<(), ()>(());
                }
                Ok(n) => {
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                    counters.up.fetch_add(n as u64, Ordering::Relaxed);
                    if ch_wr.data_bytes(buf.split().freeze()).await.is_err() {
                        return Err(());
                    }
                }
                Err(_) => return Err(()),
            }
        }
    };

    let down = async {
        let mut queue: VecDeque<Bytes> = VecDeque::new();
        let mut queued = 0usize;
        let mut window = DownWindow::new();
        let mut remote_eof = false;
        let mut remote_closed = false;
        loop {
            if queue.is_empty() && (remote_eof || remote_closed) {
                let _ = wr.shutdown().await;
                return if remote_closed { Err(()) } else { Ok(()) };
            }
            // Most bytes queued for the local program: the window, plus one
            // packet of slack. A peer that respects the window never gets there.
            let limit = window.window() as usize + session::MAX_PACKET as usize;
            let take_more = !remote_closed && !remote_eof && queued < limit;
            let front: &[u8] = queue.front().map(|b| &b[..]).unwrap_or(&[]);
            tokio::select! {
                biased;
                w = wr.write(front), if !front.is_empty() => {
                    match w {
                        Ok(0) | Err(_) => return Err(()),
                        Ok(n) => {
                            received.fetch_add(n as u64, Ordering::Relaxed);
                            counters.down.fetch_add(n as u64, Ordering::Relaxed);
                            queued -= n;
                            if let Some(b) = queue.front_mut() {
                                b.advance(n);
                                if b.is_empty() {
                                    queue.pop_front();
                                }
                            }
                            let grant = window.written(n, Instant::now());
                            if grant > 0 {
                                session::grant(session, id, grant as usize);
                            }
                        }
                    }
                }
                msg = ch_rd.wait(), if take_more => {
                    match msg {
                        Some(ChannelMsg::Data { data }) => {
                            if !data.is_empty() {
                                window.arrived(data.len(), Instant::now());
                                queued += data.len();
                                queue.push_back(data);
                            }
                        }
                        Some(ChannelMsg::Eof) => remote_eof = true,
                        Some(ChannelMsg::Close) | None => remote_closed = true,
                        Some(_) => {}
                    }
                }
            }
        }
    };

    tokio::pin!(up, down);
    let mut up_done = false;
    let mut down_done = false;
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => {
                up_done = true;
                if r.is_err() {
                    break;
                }
            }
            r = &mut down, if !down_done => {
                down_done = true;
                if r.is_err() {
                    break;
                }
            }
        }
    }
    let _ = ch_wr.close().await;
    (
        sent.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed),
    )
}
