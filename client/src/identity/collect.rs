//! Reading the identity of the running PC, without privileges.
//!
//! Every source may fail (containers have no DMI tables, ARM boards no
//! board name): a missing value is `None`, never an error. There is no
//! override: what the key is bound to is what the OS says.

use super::{Attributes, Identity};
use sysinfo::{CpuRefreshKind, Motherboard, Product, RefreshKind, System};

/// The identity of this PC.
pub fn current() -> Identity {
    let board = Motherboard::new();
    let attributes = Attributes {
        os_user: whoami::fallible::username().ok(),
        computer: whoami::fallible::hostname().ok().or_else(System::host_name),
        machine_id: machine_uid::get().ok(),
        board_vendor: board.as_ref().and_then(|b| b.vendor_name()),
        board_name: board.as_ref().and_then(|b| b.name()),
        product_vendor: Product::vendor_name(),
        product_name: Product::name(),
        cpu_brand: cpu_brand(),
    };
    Identity {
        attributes,
        os: System::long_os_version(),
    }
}

fn cpu_brand() -> Option<String> {
    let sys =
        System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()));
    sys.cpus()
        .iter()
        .map(|c| c.brand().trim().to_string())
        .find(|b| !b.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Attr, fingerprint};

    #[test]
    fn reading_twice_gives_the_same_identity() {
        let a = current();
        let b = current();
        assert_eq!(fingerprint(&a.attributes), fingerprint(&b.attributes));
        // Every supported CI/desktop OS names its user and computer.
        assert!(a.attributes.value(Attr::OsUser).is_some(), "{a:?}");
        assert!(a.attributes.value(Attr::Computer).is_some(), "{a:?}");
    }
}
