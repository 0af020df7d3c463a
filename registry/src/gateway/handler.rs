//! The russh handler: one per connection.
//!
//! - Authentication: public key only. Every offered key is welcome at the
//!   probe stage (`auth_publickey_offered`), so probing teaches nothing; the
//!   registry is asked only in `auth_publickey`, after russh verified the
//!   signature, and every refusal (unknown user or key, pending, revoked,
//!   disabled, another user's key, weak signature) gets the same answer after
//!   the same store work, with its reason in the audit log.
//! - Enrollment: user `pra-enroll` with password `ID:SECRET` of an invite
//!   may open one `session` channel for one `exec pra-enroll JSON`
//!   ([`super::enroll`]) and nothing else; it never becomes a session.
//! - Channels: `session` channels for `exec pra-rules` only; `direct-tcpip`
//!   through [`super::forward`]. Everything else (shell, PTY, other exec,
//!   subsystem, env, X11, agent, `tcpip-forward`) is answered with a failure.

use super::audit::Registration;
use super::forward::{self, Inbound, Push};
use super::killable::KillSwitch;
use super::session::SessionState;
use super::{Shared, blocking, policy};
use crate::model::{NewSession, now};
use pra_proto::rules::{RULES_VERSION, Rule, RulesDocument};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, ChannelWriteHalf, Pty, Sig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

/// Session channels one connection may hold open at once.
const MAX_SESSION_CHANNELS: usize = 8;

/// A login that russh is about to confirm.
struct Identity {
    user: String,
    fingerprint: String,
    /// Store revision read before the decision (see `watch`).
    revision: i64,
    /// The key's session slot until the session is registered.
    _claim: super::session::Claim,
}

/// Per-connection handler.
pub struct GatewayHandler {
    shared: Arc<Shared>,
    peer: SocketAddr,
    kill: KillSwitch,
    login: policy::LoginState,
    identity: Option<Identity>,
    authed: Option<oneshot::Sender<(Arc<SessionState>, Registration)>>,
    session: Option<Arc<SessionState>>,
    forwards: HashMap<ChannelId, Inbound>,
    /// Target connections leave in the order of the channel opens.
    order: forward::Order,
    execs: HashMap<ChannelId, Option<ChannelWriteHalf<Msg>>>,
    /// An enrollment login (user `pra-enroll`): the invite's id and secret.
    /// Such a connection never becomes a session (see [`super::enroll`]).
    enroll: Option<super::enroll::Credentials>,
}

impl GatewayHandler {
    /// A handler for a connection from `peer`; `authed` learns the session
    /// once it logged in.
    pub fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        kill: KillSwitch,
        authed: oneshot::Sender<(Arc<SessionState>, Registration)>,
    ) -> Self {
        GatewayHandler {
            shared,
            peer,
            kill,
            login: policy::LoginState::default(),
            identity: None,
            authed: Some(authed),
            session: None,
            forwards: HashMap::new(),
            order: forward::Order::default(),
            execs: HashMap::new(),
            enroll: None,
        }
    }

    fn note_user(&mut self, user: &str) {
        // Key exchange is done: this connection outranks fresh ones at the
        // pre-auth cap (see `limits`).
        self.kill.advance(super::killable::PROGRESS_AUTHENTICATING);
        if self.login.attempt(user) {
            // A new name: nothing decided for the previous one carries over.
            self.identity = None;
        }
    }

    async fn refuse(
        &mut self,
        user: &str,
        fingerprint: &str,
        reason: &str,
        algorithm: String,
    ) -> Auth {
        self.login.refused();
        let individual = self.shared.refusals.record(
            Some(user),
            Some(fingerprint),
            self.peer,
            serde_json::json!({ "reason": reason, "algorithm": algorithm }),
        );
        if individual {
            tracing::info!(user = %pra_proto::sanitize::sanitize(user, 64), %fingerprint, source = %self.peer, %reason, "login refused");
        } else {
            tracing::debug!(user = %pra_proto::sanitize::sanitize(user, 64), %fingerprint, source = %self.peer, %reason, "login refused (aggregated)");
        }
        // A key at its session limit proved itself: not a failed login.
        if reason != policy::RefuseReason::TooManySessions.as_str() {
            self.shared
                .limits
                .record_failure(self.peer.ip(), Some(fingerprint));
        }
        Auth::reject()
    }

    /// Wait out the source's penalty before deciding on the proven key
    /// `fingerprint` (see [`super::limits`]): accepted and refused alike.
    async fn wait_penalty(&self, fingerprint: &str) {
        let delay = self.shared.limits.penalty(self.peer.ip(), fingerprint);
        if !delay.is_zero() {
            tracing::debug!(source = %self.peer, delay_ms = delay.as_millis() as u64, "login attempt held back: failed logins from this source");
            self.kill.hold(true);
            tokio::time::sleep(delay).await;
            self.kill.hold(false);
        }
    }

    fn refuse_request(
        &self,
        what: &str,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        tracing::info!(user = ?self.session.as_ref().map(|s| &s.user), source = %self.peer, request = what, "request refused");
        session.channel_failure(channel)
    }
}

impl russh::server::Handler for GatewayHandler {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        self.note_user(user);
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        self.note_user(user);
        if user != pra_proto::enroll::ENROLL_USER {
            return Ok(Auth::reject());
        }
        let Some(creds) = super::enroll::credentials(password) else {
            return Ok(Auth::reject());
        };
        // The secret is checked with the key (one store transaction); the
        // source's failed logins hold this back like any login.
        self.wait_penalty(&format!("invite:{}", creds.id)).await;
        self.enroll = Some(creds);
        Ok(Auth::Accept)
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        _offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Never look the key up here: every key shape gets the same "go on".
        self.note_user(user);
        Ok(Auth::Accept)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        self.note_user(user);
        let fingerprint = pra_proto::fingerprint(key.public_key);
        let algorithm = key.algorithm.to_string();
        let strong = policy::signature_acceptable(key.algorithm);
        self.wait_penalty(&fingerprint).await;
        let (u, f) = (user.to_owned(), fingerprint.clone());
        // The same store work for every outcome.
        // The revision is read before the facts, in the same read.
        let looked_up = blocking(&self.shared.store, move |s| s.login_lookup(&u, &f)).await;
        let (revision, facts) = match looked_up {
            Ok(x) => x,
            Err(e) => {
                // Fail closed. The audit event is attempted, but the
                // registry is what cannot be reached: the log line is the
                // record that counts.
                self.login.refused();
                tracing::error!(user = %pra_proto::sanitize::sanitize(user, 64), %fingerprint, source = %self.peer, reason = "registry_unreachable", error = %e, "login refused: the registry database cannot be read");
                self.shared.refusals.record(
                    Some(user),
                    Some(&fingerprint),
                    self.peer,
                    serde_json::json!({ "reason": "registry_unreachable", "algorithm": algorithm }),
                );
                return Ok(Auth::reject());
            }
        };
        let signature = match strong {
            true => Ok(()),
            false => Err(policy::RefuseReason::WeakSignature),
        };
        let decision = policy::login(user, &facts).and(signature);
        let claim = match decision {
            Ok(()) => self
                .shared
                .sessions
                .claim(&fingerprint, self.shared.cfg.max_sessions_per_key)
                .ok_or(policy::RefuseReason::TooManySessions),
            Err(reason) => Err(reason),
        };
        match claim {
            Ok(claim) => {
                self.identity = Some(Identity {
                    user: user.to_owned(),
                    fingerprint,
                    revision,
                    _claim: claim,
                });
                Ok(Auth::Accept)
            }
            Err(reason) => Ok(self
                .refuse(user, &fingerprint, reason.as_str(), algorithm)
                .await),
        }
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &ssh_key::Certificate,
    ) -> Result<Auth, Self::Error> {
        self.note_user(user);
        let fingerprint = certificate
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string();
        self.wait_penalty(&fingerprint).await;
        Ok(self
            .refuse(
                user,
                &fingerprint,
                "certificate",
                certificate.algorithm().to_string(),
            )
            .await)
    }

    async fn auth_succeeded(&mut self, session: &mut Session) -> Result<(), Self::Error> {
        if self.identity.is_none() && self.enroll.is_some() {
            // Not a session: the connection stays under the pre-auth limits
            // and login deadline until it ends.
            return Ok(());
        }
        let Some(id) = self.identity.take() else {
            // russh only gets here after our Accept; anything else is a bug.
            return Err(russh::Error::Inconsistent);
        };
        let state = SessionState::new(
            self.shared.sessions.next_id(),
            id.user,
            id.fingerprint,
            self.peer,
            session.handle(),
            self.kill.clone(),
            super::memory::Budget::new(self.shared.cfg.session_window_budget),
        );
        self.shared
            .sessions
            .register(Arc::clone(&state), id.revision);
        self.shared
            .limits
            .record_success(self.peer.ip(), &state.fingerprint);
        let client = String::from_utf8_lossy(session.remote_sshid()).into_owned();
        tracing::info!(user = %state.user, fingerprint = %state.fingerprint, source = %self.peer, "session start");
        crate::metrics::get().login("accepted", "ok");
        // The live-sessions row first: it goes with the writer's next group.
        let registration = self.shared.audit.session_open(NewSession {
            gateway: self.shared.gateway_id.clone(),
            user: state.user.clone(),
            fingerprint: state.fingerprint.clone(),
            source: state.source.to_string(),
            started_at: now(),
        });
        self.shared.audit.record(
            "session.start",
            Some(&state.user),
            Some(&state.fingerprint),
            Some(self.peer),
            serde_json::json!({ "client": pra_proto::sanitize::sanitize(&client, 128) }),
        );
        self.shared.audit.last_seen(&state.fingerprint, now());
        if let Some(tx) = self.authed.take() {
            let _ = tx.send((Arc::clone(&state), registration));
        }
        self.session = Some(state);
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.session.is_none() && self.enroll.is_some() && self.execs.is_empty() {
            let (_read, write) = channel.split();
            self.execs.insert(write.id(), Some(write));
            reply.accept().await;
            return Ok(());
        }
        let Some(state) = &self.session else {
            return Ok(()); // dropping `reply` refuses
        };
        if state.is_revoked() {
            return Ok(());
        }
        // A channel whose `pra-rules` answer started belongs to that task (it
        // closes the channel; russh does not report the peer's reply close).
        self.execs.retain(|_, write| write.is_some());
        if self.execs.len() >= MAX_SESSION_CHANNELS {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let (_read, write) = channel.split();
        self.execs.insert(write.id(), Some(write));
        reply.accept().await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(creds) = self.enroll.clone() {
            let request = super::enroll::request(data);
            let write = self.execs.get_mut(&channel).and_then(Option::take);
            let (Some(request), Some(write)) = (request, write) else {
                return self.refuse_request("exec", channel, session);
            };
            session.channel_success(channel)?;
            tokio::spawn(send_enrollment(
                Arc::clone(&self.shared),
                self.peer,
                self.kill.clone(),
                creds,
                request,
                write,
            ));
            return Ok(());
        }
        let write = if data == pra_proto::RULES_COMMAND.as_bytes() {
            self.execs.get_mut(&channel).and_then(Option::take)
        } else {
            None
        };
        match (write, &self.session) {
            (Some(write), Some(state)) => {
                session.channel_success(channel)?;
                tokio::spawn(send_rules(
                    Arc::clone(&self.shared),
                    Arc::clone(state),
                    write,
                ));
                Ok(())
            }
            _ => self.refuse_request("exec", channel, session),
        }
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request("shell", channel, session)
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request("pty", channel, session)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request("subsystem", channel, session)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request("env", channel, session)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_request("x11", channel, session)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        _signal: Sig,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::info!(source = %self.peer, ?channel, "agent forwarding refused");
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        tracing::info!(source = %self.peer, address = %pra_proto::sanitize::sanitize(address, 255), port = *port, "remote forwarding refused");
        Ok(false)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        _address: &str,
        _port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn cancel_streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(state) = &self.session else {
            return Ok(());
        };
        if state.is_revoked() {
            return Ok(());
        }
        self.forwards.retain(|_, f| !f.is_finished());
        if self.forwards.len() >= self.shared.cfg.max_forwards_per_session {
            tracing::warn!(user = %state.user, "too many forwards in one session; refused");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        // Data arrives through `data` below; the read half is not used.
        let (_read, write) = channel.split();
        let (inbound, outlet) =
            forward::queue(super::memory::initial_window(self.shared.cfg.window_size));
        let id = write.id();
        let req = forward::Request {
            session: Arc::clone(state),
            host: host_to_connect.to_owned(),
            port: port_to_connect,
            originator: originator_address.to_owned(),
            reply,
            write,
            outlet,
            handle: session.handle(),
            turn: self.order.next_turn(),
        };
        let task = tokio::spawn(forward::open(Arc::clone(&self.shared), req));
        state.forward_task(task.abort_handle());
        self.forwards.insert(id, inbound);
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(inbound) = self.forwards.get_mut(&channel)
            && inbound.push(data) == Push::Overrun
        {
            tracing::warn!(source = %self.peer, ?channel, "client overran the channel window; channel closed");
            inbound.close();
            self.forwards.remove(&channel);
            session.close(channel)?;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(inbound) = self.forwards.get_mut(&channel) {
            inbound.eof();
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(mut inbound) = self.forwards.remove(&channel) {
            inbound.close();
        }
        self.execs.remove(&channel);
        Ok(())
    }
}

/// Answer `exec pra-rules`: the rules document on stdout, exit status 0,
/// EOF, close. On a store failure: a message on stderr and exit status 1.
/// Redeem the invite and answer the enrollment's `exec` request.
async fn send_enrollment(
    shared: Arc<Shared>,
    peer: SocketAddr,
    kill: KillSwitch,
    creds: super::enroll::Credentials,
    request: Result<pra_proto::enroll::EnrollRequest, ()>,
    write: ChannelWriteHalf<Msg>,
) {
    let outcome = super::enroll::redeem(&shared, peer, &creds, request).await;
    if outcome.failed {
        let invite = format!("invite:{}", creds.id);
        shared.limits.record_failure(peer.ip(), Some(&invite));
        shared.refusals.record(
            Some(pra_proto::enroll::ENROLL_USER),
            None,
            peer,
            serde_json::json!({ "reason": "enroll_refused", "invite": pra_proto::sanitize::sanitize(&creds.id, 64) }),
        );
    }
    let Some(reply) = outcome.reply else {
        // A wrong id or secret: closed like a refused login.
        kill.trip();
        return;
    };
    let mut json = serde_json::to_vec(&reply).unwrap_or_default();
    json.push(b'\n');
    let mut out = write.make_writer();
    let status = u32::from(out.write_all(&json).await.is_err());
    let _ = write.exit_status(status).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

async fn send_rules(shared: Arc<Shared>, state: Arc<SessionState>, write: ChannelWriteHalf<Msg>) {
    let status = match state.rules(&shared).await {
        Ok(rules) => {
            let doc = RulesDocument {
                version: RULES_VERSION,
                user: state.user.clone(),
                rules: rules
                    .iter()
                    .map(|r| Rule {
                        name: r.name.clone(),
                        local_port: r.local_port,
                        target_host: r.target_host.clone(),
                        target_port: r.target_port,
                    })
                    .collect(),
            };
            match serde_json::to_vec(&doc) {
                Ok(mut json) => {
                    json.push(b'\n');
                    let mut out = write.make_writer();
                    if out.write_all(&json).await.is_ok() {
                        0
                    } else {
                        1
                    }
                }
                Err(e) => {
                    tracing::error!(%e, "cannot encode the rules document");
                    1
                }
            }
        }
        Err(e) => {
            tracing::error!(%e, user = %state.user, "cannot read the rules");
            let msg = b"the gateway cannot read the registry right now; try again later\n";
            let mut err = write.make_writer_ext(Some(1));
            let _ = err.write_all(msg).await;
            1
        }
    };
    let _ = write.exit_status(status).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}
