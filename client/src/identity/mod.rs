//! The device identity a key is bound to.
//!
//! [`Attributes`] are what the OS tells an unprivileged user about this PC:
//! OS user name, computer name, OS machine id, board and product
//! vendor/name, CPU brand. [`fingerprint`] turns them into a [`DeviceId`], a
//! pure function so the binding rules can be tested without a machine:
//!
//! - values are normalised (trimmed, whitespace collapsed; the computer name
//!   loses case and DNS domain, the machine id its dashes and case), so
//!   cosmetic differences between two reads do not lock the user out;
//! - vendor placeholders ("To be filled by O.E.M.", "Default string", all-0 or
//!   all-F UUIDs, empty) count as absent;
//! - volatile values (BIOS *version*, OS version and patch level, kernel) are
//!   not attributes at all, so a BIOS update or a service pack keeps the key
//!   working. They appear only in the human [`Identity::description`].
//!
//! [`collect`] reads the attributes of the running PC, each source isolated
//! (a source that fails, panics or hangs makes its attributes *unavailable*,
//! recorded with the reason, instead of stopping the program); it has no
//! override: tests of the binding call the pure functions with their own
//! attributes. [`smbios`] is the bounds-checked firmware-table parser
//! Windows uses for board and product names.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

pub(crate) mod collect;
// Read on Windows only; the parser is tested everywhere.
#[cfg_attr(not(windows), allow(dead_code))]
mod smbios;

/// One bound attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Attr {
    /// OS user name.
    OsUser,
    /// Computer (host) name.
    Computer,
    /// OS machine id (`/etc/machine-id`, `MachineGuid`, `IOPlatformUUID`).
    MachineId,
    /// Motherboard vendor.
    BoardVendor,
    /// Motherboard model.
    BoardName,
    /// System (product) vendor.
    ProductVendor,
    /// System (product) model.
    ProductName,
    /// CPU brand string.
    CpuBrand,
}

impl Attr {
    /// Every attribute, in the order they enter the fingerprint.
    pub(crate) const ALL: [Attr; 8] = [
        Attr::OsUser,
        Attr::Computer,
        Attr::MachineId,
        Attr::BoardVendor,
        Attr::BoardName,
        Attr::ProductVendor,
        Attr::ProductName,
        Attr::CpuBrand,
    ];

    /// Stable key (used in the key's metadata file).
    pub(crate) fn key(self) -> &'static str {
        match self {
            Attr::OsUser => "os_user",
            Attr::Computer => "computer",
            Attr::MachineId => "machine_id",
            Attr::BoardVendor => "board_vendor",
            Attr::BoardName => "board_name",
            Attr::ProductVendor => "product_vendor",
            Attr::ProductName => "product_name",
            Attr::CpuBrand => "cpu_brand",
        }
    }

    /// Words for the user.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Attr::OsUser => "OS user name",
            Attr::Computer => "computer name",
            Attr::MachineId => "OS machine id (OS reinstalled or PC replaced)",
            Attr::BoardVendor => "mainboard vendor",
            Attr::BoardName => "mainboard model",
            Attr::ProductVendor => "PC vendor",
            Attr::ProductName => "PC model",
            Attr::CpuBrand => "CPU",
        }
    }

    /// The attribute's value is never written anywhere in clear.
    pub(crate) fn is_secret(self) -> bool {
        matches!(self, Attr::MachineId)
    }
}

/// What the OS says about this PC. `None` = not readable here.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Attributes {
    /// OS user name.
    pub os_user: Option<String>,
    /// Computer (host) name.
    pub computer: Option<String>,
    /// OS machine id.
    pub machine_id: Option<String>,
    /// Motherboard vendor.
    pub board_vendor: Option<String>,
    /// Motherboard model.
    pub board_name: Option<String>,
    /// System vendor.
    pub product_vendor: Option<String>,
    /// System model.
    pub product_name: Option<String>,
    /// CPU brand string.
    pub cpu_brand: Option<String>,
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attributes")
            .field("os_user", &self.os_user)
            .field("computer", &self.computer)
            .field("machine_id", &self.machine_id.as_ref().map(|_| "MASKED"))
            .field("board_vendor", &self.board_vendor)
            .field("board_name", &self.board_name)
            .field("product_vendor", &self.product_vendor)
            .field("product_name", &self.product_name)
            .field("cpu_brand", &self.cpu_brand)
            .finish()
    }
}

impl Attributes {
    /// The raw value of one attribute.
    pub(crate) fn raw(&self, attr: Attr) -> Option<&str> {
        match attr {
            Attr::OsUser => self.os_user.as_deref(),
            Attr::Computer => self.computer.as_deref(),
            Attr::MachineId => self.machine_id.as_deref(),
            Attr::BoardVendor => self.board_vendor.as_deref(),
            Attr::BoardName => self.board_name.as_deref(),
            Attr::ProductVendor => self.product_vendor.as_deref(),
            Attr::ProductName => self.product_name.as_deref(),
            Attr::CpuBrand => self.cpu_brand.as_deref(),
        }
    }

    /// The value as it enters the binding (normalised, placeholders dropped).
    pub(crate) fn value(&self, attr: Attr) -> Option<String> {
        normalize(attr, self.raw(attr)?)
    }

    /// A copy without these attributes (as if they were not readable).
    pub(crate) fn without<'a>(&self, attrs: impl IntoIterator<Item = &'a Attr>) -> Attributes {
        let mut a = self.clone();
        for attr in attrs {
            *match attr {
                Attr::OsUser => &mut a.os_user,
                Attr::Computer => &mut a.computer,
                Attr::MachineId => &mut a.machine_id,
                Attr::BoardVendor => &mut a.board_vendor,
                Attr::BoardName => &mut a.board_name,
                Attr::ProductVendor => &mut a.product_vendor,
                Attr::ProductName => &mut a.product_name,
                Attr::CpuBrand => &mut a.cpu_brand,
            } = None;
        }
        a
    }
}

/// The identity of the running PC: bound attributes plus a description.
#[derive(Clone, Debug, Default)]
pub(crate) struct Identity {
    /// What the key is bound to.
    pub attributes: Attributes,
    /// OS name and version (not bound: it changes with updates).
    pub os: Option<String>,
    /// Attributes whose source failed (error, crash, no answer) → why.
    /// Their value is `None` in [`Self::attributes`].
    pub unavailable: BTreeMap<Attr, String>,
}

impl Identity {
    /// One line for the administrator: OS / PC model / CPU.
    pub(crate) fn description(&self) -> String {
        let a = &self.attributes;
        let model = join_some(&[a.value(Attr::ProductVendor), a.value(Attr::ProductName)]);
        let board = join_some(&[a.value(Attr::BoardVendor), a.value(Attr::BoardName)]);
        let mut parts: Vec<String> = Vec::new();
        for p in [
            self.os.clone(),
            Some(model).filter(|s| !s.is_empty()),
            Some(board)
                .filter(|s| !s.is_empty())
                .map(|b| format!("board {b}")),
            a.value(Attr::CpuBrand),
        ]
        .into_iter()
        .flatten()
        {
            parts.push(p);
        }
        if parts.is_empty() {
            "unknown PC".to_string()
        } else {
            parts.join(" / ")
        }
    }

    /// Computer name for display and the key comment (`user@computer`).
    pub(crate) fn computer_display(&self) -> String {
        match (
            self.attributes.value(Attr::Computer),
            self.attributes.raw(Attr::Computer),
        ) {
            (Some(_), Some(raw)) => raw.trim().split('.').next().unwrap_or_default().to_string(),
            _ => "unknown-pc".to_string(),
        }
    }
}

fn join_some(parts: &[Option<String>]) -> String {
    parts
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The binding secret derived from the attributes. `Debug` prints `MASKED`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DeviceId([u8; 32]);

impl DeviceId {
    /// The raw bytes (for key derivation only).
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public tag for the registry: two keys with the same tag come from
    /// the same (or a cloned) PC. One-way: it does not reveal the id.
    pub(crate) fn tag(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"pra-device-tag-v1\0");
        h.update(self.0);
        hex(&h.finalize()[..8])
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceId(MASKED)")
    }
}

/// The device identity as a 32-byte id: SHA-256 over every normalised
/// attribute in [`Attr::ALL`] order, each length-prefixed and marked
/// present/absent so that no two attribute sets collide.
pub(crate) fn fingerprint(attrs: &Attributes) -> DeviceId {
    let mut h = Sha256::new();
    h.update(b"pra-device-id-v1\0");
    for attr in Attr::ALL {
        h.update(attr.key().as_bytes());
        h.update([0u8]);
        match attrs.value(attr) {
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
            None => h.update([0u8]),
        }
    }
    DeviceId(h.finalize().into())
}

/// Per-attribute hints stored next to the key, so that a failed unlock can
/// say *which* attribute changed.
///
/// Each hint is 16 bits of a salted SHA-256 of one normalised attribute.
/// Why this does not weaken the binding: the only attribute an attacker who
/// holds the key file and the passphrase on another PC cannot simply look up
/// or guess is the machine id (128 random bits on Linux and Windows); its
/// hint gives away at most 16 of them, leaving 112 bits of work, and it
/// gives nothing about the passphrase. The other attributes are no secret
/// (computer and user name even travel to the registry). A false "nothing
/// changed" has odds of 1 in 65,536 and only makes the message less specific.
pub(crate) fn hints(attrs: &Attributes, salt: &[u8]) -> BTreeMap<String, String> {
    Attr::ALL
        .iter()
        .map(|a| {
            (
                a.key().to_string(),
                hint(*a, attrs.value(*a).as_deref(), salt),
            )
        })
        .collect()
}

fn hint(attr: Attr, value: Option<&str>, salt: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"pra-attr-hint-v1\0");
    h.update((salt.len() as u64).to_be_bytes());
    h.update(salt);
    h.update(attr.key().as_bytes());
    h.update([0u8]);
    match value {
        Some(v) => {
            h.update([1u8]);
            h.update(v.as_bytes());
        }
        None => h.update([0u8]),
    }
    hex(&h.finalize()[..2])
}

/// The attributes whose hint differs from the stored one (an attribute with
/// no stored hint counts as unchanged).
pub(crate) fn changed(
    stored: &BTreeMap<String, String>,
    attrs: &Attributes,
    salt: &[u8],
) -> Vec<Attr> {
    let now = hints(attrs, salt);
    Attr::ALL
        .into_iter()
        .filter(|a| match (stored.get(a.key()), now.get(a.key())) {
            (Some(s), Some(n)) => s != n,
            _ => false,
        })
        .collect()
}

/// Normalise one raw value; `None` for empty and placeholder values.
pub(crate) fn normalize(attr: Attr, raw: &str) -> Option<String> {
    let collapsed = raw
        .split(|c: char| c.is_whitespace() || c == '\0')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if collapsed.is_empty() || is_placeholder(&collapsed) {
        return None;
    }
    let v = match attr {
        // Host names are case-insensitive; DHCP/VPN may add or change the
        // DNS domain: keep the first label only.
        Attr::Computer => collapsed
            .split('.')
            .next()
            .unwrap_or_default()
            .to_lowercase(),
        // Windows user names are case-insensitive.
        Attr::OsUser => collapsed.to_lowercase(),
        Attr::MachineId => collapsed
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '{' | '}'))
            .collect::<String>()
            .to_lowercase(),
        _ => collapsed,
    };
    if v.is_empty() || is_placeholder(&v) {
        None
    } else {
        Some(v)
    }
}

/// Values vendors leave in firmware tables instead of real data.
fn is_placeholder(v: &str) -> bool {
    const WORDS: [&str; 17] = [
        "to be filled by o.e.m.",
        "to be filled by oem",
        "default string",
        "system product name",
        "system manufacturer",
        "system version",
        "base board product name",
        "not applicable",
        "not specified",
        "not available",
        "none",
        "n/a",
        "na",
        "o.e.m.",
        "oem",
        "unknown",
        "type1productconfigid",
    ];
    let lower = v.to_lowercase();
    if WORDS.contains(&lower.as_str()) {
        return true;
    }
    // All-0 / all-F identifiers (UUIDs, serials), with or without dashes.
    let digits: Vec<char> = lower
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '{' | '}'))
        .collect();
    !digits.is_empty() && (digits.iter().all(|c| *c == '0') || digits.iter().all(|c| *c == 'f'))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base() -> Attributes {
        Attributes {
            os_user: Some("alice".into()),
            computer: Some("PC-0042".into()),
            machine_id: Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into()),
            board_vendor: Some("Dell Inc.".into()),
            board_name: Some("0X8DXD".into()),
            product_vendor: Some("Dell Inc.".into()),
            product_name: Some("OptiPlex 7090".into()),
            cpu_brand: Some("Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz".into()),
        }
    }

    type Change = fn(&mut Attributes);

    #[test]
    fn which_changes_break_the_binding() {
        let keeps: &[(&str, Change)] = &[
            ("nothing", |_| {}),
            ("computer name case", |a| {
                a.computer = Some("pc-0042".into())
            }),
            ("DNS domain added", |a| {
                a.computer = Some("PC-0042.corp.example.com".into())
            }),
            ("trailing newline from sysfs", |a| {
                a.board_name = Some("0X8DXD\n".into())
            }),
            ("whitespace in CPU brand", |a| {
                a.cpu_brand = Some("Intel(R) Core(TM)  i7-10700 CPU @ 2.90GHz ".into())
            }),
            ("machine id with dashes and capitals", |a| {
                a.machine_id = Some("3D1219C7-C4C5-404A-AA1F-6D2A48ADFDA4".into())
            }),
            ("user name case (Windows)", |a| {
                a.os_user = Some("Alice".into())
            }),
        ];
        let breaks: &[(&str, Change)] = &[
            ("other computer name", |a| {
                a.computer = Some("PC-0043".into())
            }),
            ("other user", |a| a.os_user = Some("bob".into())),
            ("other machine id (reinstall)", |a| {
                a.machine_id = Some("00000000000000000000000000000001".into())
            }),
            ("machine id gone", |a| a.machine_id = None),
            ("other board", |a| a.board_name = Some("0Y9ABC".into())),
            ("other PC model", |a| {
                a.product_name = Some("OptiPlex 7080".into())
            }),
            ("other CPU", |a| {
                a.cpu_brand = Some("AMD Ryzen 7 5700G".into())
            }),
            ("board vendor gone", |a| a.board_vendor = None),
        ];
        let id = fingerprint(&base());
        for (name, change) in keeps {
            let mut a = base();
            change(&mut a);
            assert_eq!(fingerprint(&a), id, "{name} must keep the binding");
            assert!(
                changed(&hints(&base(), b"salt"), &a, b"salt").is_empty(),
                "{name}"
            );
        }
        for (name, change) in breaks {
            let mut a = base();
            change(&mut a);
            assert_ne!(fingerprint(&a), id, "{name} must break the binding");
            assert_eq!(
                changed(&hints(&base(), b"salt"), &a, b"salt").len(),
                1,
                "{name}: exactly one attribute reported"
            );
        }
    }

    #[test]
    fn placeholders_count_as_missing() {
        let mut none = base();
        none.board_vendor = None;
        none.product_name = None;
        none.machine_id = None;
        let id = fingerprint(&none);
        for (vendor, product, mid) in [
            (
                "To be filled by O.E.M.",
                "Default string",
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
            ),
            (
                "",
                "System Product Name",
                "00000000-0000-0000-0000-000000000000",
            ),
            ("  ", "Not Specified", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"),
        ] {
            let mut a = none.clone();
            a.board_vendor = Some(vendor.into());
            a.product_name = Some(product.into());
            a.machine_id = Some(mid.into());
            assert_eq!(fingerprint(&a), id, "{vendor:?} {product:?} {mid:?}");
        }
        assert_eq!(
            normalize(Attr::BoardVendor, "Dell Inc.").as_deref(),
            Some("Dell Inc.")
        );
    }

    #[test]
    fn missing_values_are_tolerated_and_distinct() {
        let empty = Attributes::default();
        let mut only_user = empty.clone();
        only_user.os_user = Some("alice".into());
        assert_ne!(fingerprint(&empty), fingerprint(&only_user));
        // The same value in another attribute is another identity.
        let mut as_computer = empty.clone();
        as_computer.computer = Some("alice".into());
        assert_ne!(fingerprint(&only_user), fingerprint(&as_computer));
    }

    #[test]
    fn changed_names_the_attribute() {
        let salt = [7u8; 16];
        let stored = hints(&base(), &salt);
        let mut a = base();
        a.computer = Some("PC-9999".into());
        a.cpu_brand = Some("AMD".into());
        assert_eq!(
            changed(&stored, &a, &salt),
            vec![Attr::Computer, Attr::CpuBrand]
        );
        assert!(stored.values().all(|h| h.len() == 4));
    }

    #[test]
    fn without_blanks_only_the_named_attributes() {
        let a = base().without(&[Attr::BoardVendor, Attr::MachineId]);
        assert_eq!(
            (a.board_vendor.as_deref(), a.machine_id.as_deref()),
            (None, None)
        );
        assert_eq!(a.board_name, base().board_name);
        let mut b = base();
        b.board_vendor = None;
        b.machine_id = None;
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(base().without(&[]), base());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let a = base();
        let shown = format!("{a:?} {:?}", fingerprint(&a));
        assert!(!shown.contains("3d1219c7"), "{shown}");
        assert!(shown.contains("DeviceId(MASKED)"));
        assert_eq!(fingerprint(&a).tag().len(), 16);
    }

    #[test]
    fn description_skips_missing_parts() {
        let id = Identity {
            attributes: base(),
            os: Some("Linux (Debian 12)".into()),
            unavailable: BTreeMap::new(),
        };
        assert_eq!(
            id.description(),
            "Linux (Debian 12) / Dell Inc. OptiPlex 7090 / board Dell Inc. 0X8DXD / Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz"
        );
        assert_eq!(Identity::default().description(), "unknown PC");
        assert_eq!(id.computer_display(), "PC-0042");
    }
}
