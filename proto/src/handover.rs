//! The public-key hand-over file written by `pra key export` and read by
//! `pra-registry key import`.
//!
//! ```text
//! ssh-ed25519 AAAAC3Nza… alice@PC-01
//! # PRA public key hand-over: give this file to your administrator.
//! pra-user: alice
//! pra-computer: PC-01
//! pra-os-user: alice
//! pra-device: Linux 6.1 / Dell OptiPlex 7090 / Intel Core i7
//! pra-device-tag: 3f2a…
//! ```
//!
//! The first line is a plain OpenSSH public-key line, so the file also works
//! with `ssh-keygen -l -f`. A plain one-line public key is a valid hand-over
//! file too (then the importer names the user).

use crate::api::Device;

/// What a hand-over file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handover {
    /// The OpenSSH public-key line, as written.
    pub public_key: String,
    /// Account name, when the file names one.
    pub user: Option<String>,
    /// Device description, when the file has one.
    pub device: Option<Device>,
}

/// Why a hand-over file cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandoverError {
    /// Nothing but blank lines and comments.
    #[error("the file holds no public key")]
    Empty,
    /// A line that is neither a comment nor a known `pra-` field.
    #[error("line {line}: not a PRA hand-over field (only one public key per file)")]
    UnexpectedLine {
        /// 1-based line number.
        line: usize,
    },
    /// A field appears twice.
    #[error("line {line}: field {field} appears twice")]
    Duplicate {
        /// 1-based line number.
        line: usize,
        /// Field name.
        field: String,
    },
}

const FIELDS: [&str; 5] = [
    "pra-user",
    "pra-computer",
    "pra-os-user",
    "pra-device",
    "pra-device-tag",
];

impl Handover {
    /// Render the file (LF line ends, trailing newline).
    pub fn render(&self) -> String {
        let mut s = format!("{}\n", self.public_key.trim());
        s.push_str("# PRA public key hand-over: give this file to your administrator.\n");
        if let Some(u) = &self.user {
            s.push_str(&format!("pra-user: {u}\n"));
        }
        if let Some(d) = &self.device {
            for (k, v) in [
                ("pra-computer", &d.computer),
                ("pra-os-user", &d.os_user),
                ("pra-device", &d.description),
                ("pra-device-tag", &d.tag),
            ] {
                if !v.is_empty() {
                    s.push_str(&format!("{k}: {}\n", one_line(v)));
                }
            }
        }
        s
    }

    /// Parse a file. Only the structure is checked here; the registry
    /// validates the key and the fields.
    pub fn parse(text: &str) -> Result<Handover, HandoverError> {
        let mut out = Handover::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut device = Device::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            if out.public_key.is_empty() {
                out.public_key = line.trim().to_string();
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                return Err(HandoverError::UnexpectedLine { line: i + 1 });
            };
            let k = k.trim();
            let Some(field) = FIELDS.iter().find(|f| **f == k) else {
                return Err(HandoverError::UnexpectedLine { line: i + 1 });
            };
            if seen.contains(field) {
                return Err(HandoverError::Duplicate {
                    line: i + 1,
                    field: k.to_string(),
                });
            }
            seen.push(field);
            let v = v.trim().to_string();
            match *field {
                "pra-user" => out.user = Some(v),
                "pra-computer" => device.computer = v,
                "pra-os-user" => device.os_user = v,
                "pra-device" => device.description = v,
                _ => device.tag = v,
            }
        }
        if out.public_key.is_empty() {
            return Err(HandoverError::Empty);
        }
        if device != Device::default() {
            out.device = Some(device);
        }
        Ok(out)
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Handover {
            public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOp alice@PC-01".into(),
            user: Some("alice".into()),
            device: Some(Device {
                computer: "PC-01".into(),
                os_user: "alice".into(),
                description: "Linux / Board X".into(),
                tag: "abc".into(),
            }),
        };
        assert_eq!(Handover::parse(&h.render()), Ok(h));
    }

    #[test]
    fn plain_key_line_is_a_hand_over_file() {
        let h = Handover::parse("ssh-ed25519 AAAA x@y\n").unwrap_or_default();
        assert_eq!(h.public_key, "ssh-ed25519 AAAA x@y");
        assert_eq!(h.user, None);
        assert_eq!(h.device, None);
    }

    #[test]
    fn refuses_structure_errors() {
        assert_eq!(
            Handover::parse("\n# only comment\n"),
            Err(HandoverError::Empty)
        );
        assert_eq!(
            Handover::parse("ssh-ed25519 AAAA a\nssh-ed25519 BBBB b\n"),
            Err(HandoverError::UnexpectedLine { line: 2 })
        );
        assert_eq!(
            Handover::parse("ssh-ed25519 AAAA a\npra-user: a\npra-user: b\n"),
            Err(HandoverError::Duplicate {
                line: 3,
                field: "pra-user".into()
            })
        );
    }
}
