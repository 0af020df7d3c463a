//! What the main window shows, as pure functions of the tunnel state: the
//! status headline, one row per forward with its mark and reason, and the
//! error line with code and fix. Tested without a window.

use crate::i18n::{Lang, Msg, code_fix, fill};
use pra_client::error::ClientError;
use pra_client::tunnel::{ErrorInfo, ForwardState, Phase, RuleState, TunnelState};
use pra_proto::codes::Code;

/// Colour family of a status or a mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Connected / forwarding.
    Good,
    /// Connecting: amber, a disc with a hole.
    Busy,
    /// Reconnecting / a forward with a warning.
    Warn,
    /// Disconnected / stopped.
    Off,
}

/// The colour of a tone, as RGB (window marks and the tray icon).
pub(crate) fn tone_rgb(t: Tone) -> (u8, u8, u8) {
    match t {
        Tone::Good => (0x2e, 0x9d, 0x4a),
        Tone::Busy | Tone::Warn => (0xe0, 0x9b, 0x16),
        Tone::Off => (0x80, 0x86, 0x8c),
    }
}

/// The status block at the top of the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusView {
    pub phase: Phase,
    pub tone: Tone,
    /// "Connected to gw:10022 as alice".
    pub headline: String,
    /// "Gateway: gw:10022", or how to set one.
    pub detail: String,
}

/// The status of the app: `state` is the running (or last) tunnel's,
/// `gateway` the configured address.
pub(crate) fn status(lang: Lang, state: Option<&TunnelState>, gateway: Option<&str>) -> StatusView {
    let phase = state.map_or(Phase::Disconnected, |s| s.phase);
    let gw = state
        .map(|s| s.gateway.as_str())
        .filter(|g| !g.is_empty())
        .or(gateway);
    let gw_text = gw.unwrap_or("?");
    let detail = match gw {
        Some(g) => fill(Msg::GatewayLine.text(lang), &[("gateway", g)]),
        None => Msg::NoGateway.text(lang).to_string(),
    };
    let (tone, headline) = match phase {
        Phase::Disconnected => (Tone::Off, Msg::StatusDisconnected.text(lang).to_string()),
        Phase::Connecting => (
            Tone::Busy,
            fill(Msg::StatusConnecting.text(lang), &[("gateway", gw_text)]),
        ),
        Phase::Connected => {
            let mut h = fill(Msg::StatusConnected.text(lang), &[("gateway", gw_text)]);
            if let Some(u) = state.and_then(|s| s.user.as_deref()) {
                h.push_str(&fill(Msg::StatusAs.text(lang), &[("user", u)]));
            }
            (Tone::Good, h)
        }
        Phase::Reconnecting => (
            Tone::Warn,
            fill(Msg::StatusReconnecting.text(lang), &[("gateway", gw_text)]),
        ),
    };
    StatusView {
        phase,
        tone,
        headline,
        detail,
    }
}

/// One row of the forwards table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RowView {
    pub name: String,
    /// `127.0.0.1:PORT`: where programs on this PC connect.
    pub local: String,
    /// `HOST:PORT` seen from the gateway.
    pub target: String,
    /// Colour and shape of the mark.
    pub tone: Tone,
    /// "forwarding", "WAR(10102) port busy: used by OUTLOOK.EXE (pid 4711)" …
    pub state: String,
    /// What to do, for warnings.
    pub fix: Option<String>,
}

/// The row of one forward.
pub(crate) fn row(lang: Lang, r: &RuleState) -> RowView {
    let warn = |code: Code, text: String| {
        (
            Tone::Warn,
            format!("{} {text}", code.label()),
            Some(code_fix(code, lang).unwrap_or(code.fix()).to_string()),
        )
    };
    let (tone, state, fix) = match &r.state {
        ForwardState::Forwarding => (
            Tone::Good,
            Msg::StateForwarding.text(lang).to_string(),
            None,
        ),
        ForwardState::Stopped => (Tone::Off, Msg::StateStopped.text(lang).to_string(), None),
        ForwardState::PortBusy { holder: Some(h) } => warn(
            Code::PortBusy,
            fill(Msg::StatePortBusyBy.text(lang), &[("holder", h)]),
        ),
        ForwardState::PortBusy { holder: None } => {
            warn(Code::PortBusy, Msg::StatePortBusy.text(lang).to_string())
        }
        ForwardState::PortDenied { reason } => warn(
            Code::PortDenied,
            fill(Msg::StatePortDenied.text(lang), &[("reason", reason)]),
        ),
        ForwardState::TargetRefused { reason } => warn(
            Code::TargetRefused,
            fill(Msg::StateTargetRefused.text(lang), &[("reason", reason)]),
        ),
    };
    RowView {
        name: r.name.clone(),
        local: r.local.to_string(),
        target: r.target.clone(),
        tone,
        state,
        fix,
    }
}

/// A failure to show: code, what happened (the library's specific text)
/// and the library's fix; [`Problem::fix`] picks the app's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub code: Code,
    /// What happened, in the library's specific words (English).
    pub what: String,
    /// The library's fix.
    pub lib_fix: String,
}

impl Problem {
    /// From a library error.
    pub(crate) fn from_error(e: &ClientError) -> Problem {
        Problem {
            code: e.code(),
            what: e.to_string(),
            lib_fix: e.fix().to_string(),
        }
    }

    /// From the tunnel's error.
    pub(crate) fn from_info(e: &ErrorInfo) -> Problem {
        Problem {
            code: e.code,
            what: e.what.clone(),
            lib_fix: e.fix.clone(),
        }
    }

    /// `ERR(10193)`: what the helpdesk asks for.
    pub(crate) fn label(&self) -> String {
        self.code.label()
    }

    /// The fix in `lang`: Japanese from the app's table; English from the
    /// library unless its text sends the user to a terminal command.
    pub(crate) fn fix(&self, lang: Lang) -> String {
        let app = code_fix(self.code, lang);
        match lang {
            Lang::Ja => app.unwrap_or(&self.lib_fix).to_string(),
            Lang::En if self.lib_fix.contains("`pra") => app.unwrap_or(&self.lib_fix).to_string(),
            Lang::En => self.lib_fix.clone(),
        }
    }

    /// `ERR(10193) what: fix` in `lang`: the app shows the parts apart; a
    /// test pins that they make the library's one line.
    #[cfg(test)]
    fn line(&self, lang: Lang) -> String {
        pra_proto::codes::line(self.code, &self.what, &self.fix(lang))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn rule(state: ForwardState) -> RuleState {
        RuleState {
            name: "mail".into(),
            local: SocketAddr::from(([127, 0, 0, 1], 10025)),
            target: "mail.corp:25".into(),
            state,
            bytes_up: 0,
            bytes_down: 0,
            active: 0,
        }
    }

    #[test]
    fn rows_have_mark_reason_and_fix() {
        let r = row(
            Lang::En,
            &rule(ForwardState::PortBusy {
                holder: Some("OUTLOOK.EXE (pid 4711)".into()),
            }),
        );
        assert_eq!(r.local, "127.0.0.1:10025");
        assert_eq!(r.tone, Tone::Warn);
        assert_eq!(
            r.state,
            "WAR(10102) port busy: used by OUTLOOK.EXE (pid 4711)"
        );
        assert_eq!(r.fix.as_deref(), Some(Code::PortBusy.fix()));

        for (state, tone, text) in [
            (ForwardState::Forwarding, Tone::Good, "forwarding"),
            (ForwardState::Stopped, Tone::Off, "stopped"),
            (
                ForwardState::PortBusy { holder: None },
                Tone::Warn,
                "WAR(10102) port busy: used by another program",
            ),
            (
                ForwardState::TargetRefused {
                    reason: "connection refused".into(),
                },
                Tone::Warn,
                "WAR(10103) target unreachable: connection refused",
            ),
            (
                ForwardState::PortDenied {
                    reason: "permission denied".into(),
                },
                Tone::Warn,
                "WAR(10106) port not allowed: permission denied",
            ),
        ] {
            let r = row(Lang::En, &rule(state));
            assert_eq!((r.tone, r.state.as_str()), (tone, text));
            assert_eq!(r.fix.is_some(), tone == Tone::Warn);
        }
        let ja = row(Lang::Ja, &rule(ForwardState::PortBusy { holder: None }));
        assert!(
            ja.state.starts_with("WAR(10102) ポート使用中"),
            "{}",
            ja.state
        );
    }

    #[test]
    fn status_per_phase() {
        let none = status(Lang::En, None, None);
        assert_eq!(none.headline, "Disconnected");
        assert!(none.detail.contains("Settings > Server"));
        assert_eq!(
            status(Lang::En, None, Some("gw:10022")).detail,
            "Gateway: gw:10022"
        );

        let mut s = TunnelState::new("gw:10022");
        for (phase, tone, head) in [
            (Phase::Connecting, Tone::Busy, "Connecting to gw:10022 …"),
            (
                Phase::Connected,
                Tone::Good,
                "Connected to gw:10022 as alice",
            ),
            (
                Phase::Reconnecting,
                Tone::Warn,
                "Connection to gw:10022 lost; reconnecting …",
            ),
            (Phase::Disconnected, Tone::Off, "Disconnected"),
        ] {
            s.phase = phase;
            s.user = Some("alice".into());
            let v = status(Lang::En, Some(&s), Some("other:1"));
            assert_eq!((v.tone, v.headline.as_str()), (tone, head));
            assert_eq!(v.detail, "Gateway: gw:10022");
        }
        s.phase = Phase::Connected;
        assert_eq!(
            status(Lang::Ja, Some(&s), None).headline,
            "gw:10022 に接続しました (ユーザー alice)"
        );
    }

    #[test]
    fn problem_fix_wording() {
        let wrong = Problem::from_error(&ClientError::new(Code::KeyNotLoaded, "wrong passphrase"));
        assert_eq!(wrong.fix(Lang::En), Code::KeyNotLoaded.fix());
        assert!(
            wrong
                .line(Lang::En)
                .starts_with("ERR(10193) wrong passphrase: type the passphrase again")
        );
        assert!(wrong.fix(Lang::Ja).contains("パスフレーズ"));

        // The library's generic fix names `pra server set`: the app says where to click.
        let unset = Problem::from_error(&ClientError::new(Code::ServerNotSet, "no gateway"));
        assert!(unset.fix(Lang::En).contains("Settings > Server"));
        // A specific fix without a command is kept.
        let specific = Problem::from_error(&ClientError::with_fix(
            Code::ConfigInvalid,
            "gateway address: bad port",
            "give HOST:PORT",
        ));
        assert_eq!(specific.fix(Lang::En), "give HOST:PORT");
    }
}
