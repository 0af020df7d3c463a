//! Reading the identity of the running PC, without privileges.
//!
//! Every source may fail (containers have no DMI tables, ARM boards no
//! board name, a firmware table may be malformed): a missing value is
//! `None`, never an error. Each source runs through [`spawn`]: in its own
//! thread, isolated from the caller, with a time limit. A source that
//! returns an error, panics or does not answer in time leaves its
//! attributes `None` and is recorded in [`Identity::unavailable`] with the
//! reason; the others are read as usual. There is no override: what the key
//! is bound to is what the OS says.
//!
//! Board and product names: on Windows our own bounds-checked SMBIOS parser
//! ([`super::smbios`]); elsewhere sysinfo (Linux: `/sys/class/dmi/id`).

use super::{Attr, Attributes, Identity};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use sysinfo::{CpuRefreshKind, RefreshKind, System};

/// How long all sources together may take (a firmware or WMI call that
/// hangs must not hang `pra`).
const SOURCES_TIMEOUT: Duration = Duration::from_secs(10);

/// Board and product names, raw.
#[derive(Default)]
struct Firmware {
    board_vendor: Option<String>,
    board_name: Option<String>,
    product_vendor: Option<String>,
    product_name: Option<String>,
}

/// The identity of this PC.
pub(crate) fn current() -> Identity {
    let user = spawn("user name", || {
        whoami::fallible::username()
            .map(Some)
            .map_err(|e| e.to_string())
    });
    let computer = spawn("computer name", || match whoami::fallible::hostname() {
        Ok(h) => Ok(Some(h)),
        Err(e) => System::host_name().map(Some).ok_or_else(|| e.to_string()),
    });
    let machine_id = spawn("machine id", || {
        machine_uid::get().map(Some).map_err(|e| e.to_string())
    });
    let firmware = spawn("SMBIOS", firmware);
    let cpu = spawn("CPU", || Ok(cpu_brand()));
    let os = spawn("OS version", || Ok(System::long_os_version()));

    let deadline = Instant::now() + SOURCES_TIMEOUT;
    let mut unavailable = BTreeMap::new();
    let mut take = |attrs: &[Attr], r: Result<(), String>| {
        if let Err(why) = r {
            for a in attrs {
                unavailable.insert(*a, why.clone());
            }
        }
    };
    let mut a = Attributes::default();
    let r = user.wait(deadline).map(|v| a.os_user = v);
    take(&[Attr::OsUser], r);
    let r = computer.wait(deadline).map(|v| a.computer = v);
    take(&[Attr::Computer], r);
    let r = machine_id.wait(deadline).map(|v| a.machine_id = v);
    take(&[Attr::MachineId], r);
    let r = firmware.wait(deadline).map(|f| {
        a.board_vendor = f.board_vendor;
        a.board_name = f.board_name;
        a.product_vendor = f.product_vendor;
        a.product_name = f.product_name;
    });
    take(
        &[
            Attr::BoardVendor,
            Attr::BoardName,
            Attr::ProductVendor,
            Attr::ProductName,
        ],
        r,
    );
    let r = cpu.wait(deadline).map(|v| a.cpu_brand = v);
    take(&[Attr::CpuBrand], r);
    let os = os.wait(deadline).ok().flatten();
    Identity {
        attributes: a,
        os,
        unavailable,
    }
}

#[cfg(windows)]
fn firmware() -> Result<Firmware, String> {
    let n = super::smbios::read()?;
    Ok(Firmware {
        board_vendor: n.board_vendor,
        board_name: n.board_name,
        product_vendor: n.product_vendor,
        product_name: n.product_name,
    })
}

#[cfg(not(windows))]
fn firmware() -> Result<Firmware, String> {
    use sysinfo::{Motherboard, Product};
    let board = Motherboard::new();
    Ok(Firmware {
        board_vendor: board.as_ref().and_then(|b| b.vendor_name()),
        board_name: board.as_ref().and_then(|b| b.name()),
        product_vendor: Product::vendor_name(),
        product_name: Product::name(),
    })
}

fn cpu_brand() -> Option<String> {
    let sys =
        System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()));
    sys.cpus()
        .iter()
        .map(|c| c.brand().trim().to_string())
        .find(|b| !b.is_empty())
}

/// A source running in its own thread.
struct Pending<T> {
    name: &'static str,
    rx: Option<mpsc::Receiver<Result<T, String>>>,
    /// Set when no thread could be started: the source ran inline.
    inline: Option<Result<T, String>>,
}

/// Start `f` in a thread of its own; a panic inside is caught and becomes
/// an error naming the source.
fn spawn<T: Send + 'static>(
    name: &'static str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Pending<T> {
    let run = move || match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| format!("{name}: {}", clean(&e))),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(format!("{name}: the reader crashed ({})", clean(&msg)))
        }
    };
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("pra-identity-{}", name.replace(' ', "-")))
        .spawn(move || {
            let _ = tx.send(run());
        });
    match spawned {
        Ok(_) => Pending {
            name,
            rx: Some(rx),
            inline: None,
        },
        Err(_) => Pending {
            name,
            rx: None,
            inline: Some(Err(format!("{name}: no thread could be started"))),
        },
    }
}

impl<T> Pending<T> {
    /// The source's result, or an error when it did not answer by `deadline`
    /// (its thread is left behind; it ends with the process).
    fn wait(self, deadline: Instant) -> Result<T, String> {
        if let Some(r) = self.inline {
            return r;
        }
        let Some(rx) = self.rx else {
            return Err(format!("{}: not started", self.name));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "{}: no answer within {} s",
                self.name,
                SOURCES_TIMEOUT.as_secs()
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(format!("{}: the reader stopped", self.name))
            }
        }
    }
}

/// One short printable line.
fn clean(s: &str) -> String {
    pra_proto::sanitize::sanitize(s, 160)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::identity::{Attr, fingerprint};

    #[test]
    fn reading_twice_gives_the_same_identity() {
        let a = current();
        let b = current();
        assert_eq!(fingerprint(&a.attributes), fingerprint(&b.attributes));
        assert_eq!(a.unavailable, b.unavailable);
        // Every supported CI/desktop OS names its user and computer.
        assert!(a.attributes.value(Attr::OsUser).is_some(), "{a:?}");
        assert!(a.attributes.value(Attr::Computer).is_some(), "{a:?}");
    }

    #[test]
    fn a_panicking_source_is_an_error_naming_it() {
        let p = spawn::<Option<String>>("SMBIOS", || panic!("range start index 282 out of range"));
        let e = p.wait(Instant::now() + Duration::from_secs(5)).unwrap_err();
        assert!(e.starts_with("SMBIOS: the reader crashed ("), "{e}");
        assert!(e.contains("282 out of range"), "{e}");
        let ok = spawn("CPU", || Ok(7)).wait(Instant::now() + Duration::from_secs(5));
        assert_eq!(ok, Ok(7));
    }

    #[test]
    fn a_hanging_source_is_given_up() {
        // Blocks until `keep` is dropped at the end of the test.
        let (keep, block) = mpsc::channel::<()>();
        let p = spawn("WMI", move || {
            let _ = block.recv();
            Ok(1)
        });
        let e = p.wait(Instant::now()).unwrap_err();
        assert!(e.starts_with("WMI: no answer within"), "{e}");
        let e = spawn::<u8>("machine id", || Err("no /etc/machine-id".into()))
            .wait(Instant::now() + Duration::from_secs(5))
            .unwrap_err();
        assert_eq!(e, "machine id: no /etc/machine-id");
        drop(keep);
    }
}
