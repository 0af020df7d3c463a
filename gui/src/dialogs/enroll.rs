//! Key → Enroll with an invite: paste the admin's invite, check whose and
//! which gateway it is, choose the passphrase; the backend then does what
//! `pra enroll INVITE` does (gateway pinned, key made, handed over on the
//! gateway's SSH port) and the dialog shows `pending` or `approved`.

use super::key_state::status_text;
use super::parts::{Action, Facts, Job, Secret, field, take_pass};
use crate::i18n::{Msg, fill};
use crate::view::Problem;
use crate::widgets::{ok_text, problem_ui};
use eframe::egui::Ui;
use pra_client::enroll::{Enrolled, parse_invite};
use pra_proto::api::KeyStatus;
use zeroize::Zeroize;

/// What the pasted invite says, shown for confirmation (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Preview {
    user: String,
    gateways: String,
    expires: String,
}

#[derive(Default)]
pub(crate) struct EnrollDialog {
    invite: String,
    /// The invite text last parsed, and what it gave.
    parsed: Option<(String, Result<Preview, Problem>)>,
    pass: Secret,
    again: Secret,
    remember: bool,
    force: bool,
    /// The invite field got the keyboard focus once.
    focused: bool,
    job: Job<Enrolled>,
}

/// The invite's facts, or why it cannot be used (`ERR(10250)`,
/// `ERR(10251)`), from this PC's clock.
fn preview(text: &str) -> Result<Preview, Problem> {
    let now = i64::try_from(pra_client::keystore::unix_now()).unwrap_or(i64::MAX);
    let i = parse_invite(text, now).map_err(|e| Problem::from_error(&e))?;
    let clean = |s: &str| pra_proto::sanitize::sanitize(s, 80);
    Ok(Preview {
        user: clean(&i.user),
        gateways: i
            .gateways
            .iter()
            .map(|g| clean(g))
            .collect::<Vec<_>>()
            .join(", "),
        expires: pra_client::clock::utc(u64::try_from(i.expires_at).unwrap_or(0)),
    })
}

impl EnrollDialog {
    pub(super) fn finish(&mut self, r: &Result<Enrolled, Problem>) {
        if r.is_ok() {
            self.pass.zeroize();
            self.again.zeroize();
            self.invite.zeroize();
        }
        self.job.finish(r);
    }

    /// The preview of the invite as typed now (parsed again only when the
    /// text changed).
    fn parsed(&mut self) -> Option<&Result<Preview, Problem>> {
        let text = self.invite.trim();
        if text.is_empty() {
            self.parsed = None;
            return None;
        }
        if self.parsed.as_ref().is_none_or(|(t, _)| t != text) {
            self.parsed = Some((text.to_string(), preview(text)));
        }
        self.parsed.as_ref().map(|(_, r)| r)
    }

    pub(super) fn ui(&mut self, ui: &mut Ui, f: &Facts<'_>) -> Option<Action> {
        let lang = f.lang;
        if let Some(done) = self.job.ok() {
            ok_text(
                ui,
                fill(
                    Msg::EnrollDone.text(lang),
                    &[("user", &done.user), ("gateway", &done.gateway.to_string())],
                ),
            );
            ui.monospace(&done.fingerprint);
            ui.label(format!(
                "{}: {}",
                Msg::KeyRegistry.text(lang),
                status_text(lang, done.status)
            ));
            ui.add_space(6.0);
            ui.label(match done.status {
                KeyStatus::Approved => Msg::EnrollNextApproved.text(lang),
                _ => Msg::EnrollNextPending.text(lang),
            });
            return ui
                .button(Msg::Close.text(lang))
                .clicked()
                .then_some(Action::Close);
        }
        ui.label(Msg::EnrollText.text(lang));
        let r = field(ui, Msg::EnrollInvite.text(lang), &mut self.invite, false);
        if !self.focused {
            r.request_focus();
            self.focused = true;
        }
        let preview = self.parsed().cloned();
        let user = match &preview {
            Some(Ok(p)) => {
                ui.label(fill(
                    Msg::EnrollCheck.text(lang),
                    &[
                        ("user", &p.user),
                        ("gateway", &p.gateways),
                        ("expires", &p.expires),
                    ],
                ));
                Some(p.user.as_str())
            }
            Some(Err(p)) => {
                problem_ui(ui, lang, p);
                None
            }
            None => None,
        };
        ui.add_space(6.0);
        let existing = f.key.and_then(|k| k.as_ref().ok());
        if existing.is_some() {
            ui.checkbox(&mut self.force, Msg::GenForce.text(lang));
        }
        // A key of the invite's user is handed over again (as `pra enroll`
        // does after a refused try): only its passphrase is asked.
        let reuse = existing.filter(|k| !self.force && Some(k.user.as_str()) == user);
        match reuse {
            Some(k) => {
                ui.label(fill(
                    Msg::EnrollReuse.text(lang),
                    &[("fingerprint", &k.fingerprint), ("user", &k.user)],
                ));
                field(ui, Msg::PassPrompt.text(lang), &mut self.pass, true);
            }
            None => {
                field(ui, Msg::GenPass.text(lang), &mut self.pass, true);
                field(ui, Msg::GenPassAgain.text(lang), &mut self.again, true);
            }
        }
        ui.checkbox(&mut self.remember, Msg::Remember.text(lang));
        self.job.ui_busy_as(ui, lang, Msg::EnrollWorking, |_, _| {});
        let primary = Some((Msg::EnrollButton, user.is_some()));
        self.job
            .buttons(ui, lang, primary, Msg::Close, || Action::Enroll {
                invite: self.invite.trim().to_string(),
                pass: take_pass(&mut self.pass),
                again: take_pass(&mut self.again),
                remember: self.remember,
                force: self.force,
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pra_proto::invite::{Invite, InviteSecret, VERSION};

    #[test]
    fn the_preview_shows_user_and_gateways_never_the_secret() {
        let invite = Invite {
            version: VERSION,
            gateways: vec!["vpn.example.com:10022".into(), "10.0.0.2:2222".into()],
            host_key: "SHA256:O0dkuqEVOSvWvUq+aKlR1ukPo7q1+P3p0zSrdaphI10".into(),
            user: "alice".into(),
            id: "0123abcd".into(),
            secret: InviteSecret::new("s3cret".into()),
            expires_at: 4_102_444_800,
        };
        let p = preview(&invite.encode()).unwrap();
        assert_eq!(p.user, "alice");
        assert_eq!(p.gateways, "vpn.example.com:10022, 10.0.0.2:2222");
        assert!(p.expires.starts_with("2100-01-01"), "{}", p.expires);
        assert!(!format!("{p:?}").contains("s3cret"));
        let expired = Invite {
            expires_at: 1,
            ..invite
        };
        assert_eq!(
            preview(&expired.encode()).map_err(|p| p.code),
            Err(pra_proto::codes::Code::InviteExpired)
        );
        assert_eq!(
            preview("pra-invite:AAAA").map_err(|p| p.code),
            Err(pra_proto::codes::Code::InviteMalformed)
        );
    }
}
