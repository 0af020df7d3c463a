//! Board and product names from the SMBIOS table, bounds-checked.
//!
//! On Windows the table comes from `GetSystemFirmwareTable('RSMB')`: an
//! 8-byte `RawSMBIOSData` header (calling method, major, minor, DMI
//! revision, `u32` length) and then the structures. Each structure is a
//! formatted area (`type`, `length`, `handle`, fields) followed by its
//! strings, each NUL-terminated, the set ended by one more NUL (a structure
//! without strings ends with two NULs). A field naming a string holds its
//! 1-based number; 0 = no string.
//!
//! Firmware and hypervisors (Wine, some VMs) produce tables that break these
//! rules; [`parse`] never reads outside the buffer and never panics: a
//! structure that does not fit ends the walk, and what was read up to there
//! is kept. sysinfo 0.37's parser panics on the table Wine 8 returns (and
//! on any table its walk misreads: it does not skip the RawSMBIOSData
//! header and slices without bounds checks; see docs/architecture.md,
//! "Windows lane"), which is why Windows reads the table itself.

/// What the key binds from SMBIOS (raw, not normalised).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Names {
    /// Type 2 (baseboard) manufacturer.
    pub board_vendor: Option<String>,
    /// Type 2 product.
    pub board_name: Option<String>,
    /// Type 1 (system) manufacturer.
    pub product_vendor: Option<String>,
    /// Type 1 product name.
    pub product_name: Option<String>,
}

/// Size of `RawSMBIOSData` before the structures.
const RAW_HEADER: usize = 8;
/// Type, length, handle: the smallest formatted area.
const MIN_FORMATTED: usize = 4;
/// End-of-table structure type.
const END_OF_TABLE: u8 = 127;

/// One structure: its type, formatted area and complete strings.
#[derive(Debug, PartialEq, Eq)]
struct Structure<'a> {
    kind: u8,
    formatted: &'a [u8],
    strings: Vec<&'a [u8]>,
}

impl Structure<'_> {
    /// The string a field at `offset` names, if the field and string exist.
    fn string(&self, offset: usize) -> Option<String> {
        let n = usize::from(*self.formatted.get(offset)?);
        let s = self.strings.get(n.checked_sub(1)?)?;
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

/// Parse a `GetSystemFirmwareTable('RSMB')` buffer (header included).
/// Returns `Err` only when there is no table at all; malformed structures
/// end the walk.
pub(super) fn parse(raw: &[u8]) -> Result<Names, String> {
    let header = raw.get(..RAW_HEADER).ok_or_else(|| {
        format!(
            "SMBIOS buffer of {} bytes has no RawSMBIOSData header",
            raw.len()
        )
    })?;
    let declared = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let rest = &raw[RAW_HEADER..];
    // A length beyond the buffer is clipped to what is there.
    let data = &rest[..declared.min(rest.len())];
    if data.is_empty() {
        return Err("the SMBIOS table is empty".into());
    }
    let mut names = Names::default();
    for s in structures(data) {
        let (vendor, product) = match s.kind {
            1 if names.product_vendor.is_none() && names.product_name.is_none() => {
                (&mut names.product_vendor, &mut names.product_name)
            }
            2 if names.board_vendor.is_none() && names.board_name.is_none() => {
                (&mut names.board_vendor, &mut names.board_name)
            }
            _ => continue,
        };
        // Types 1 and 2: manufacturer at offset 4, product at 5.
        *vendor = s.string(4);
        *product = s.string(5);
    }
    Ok(names)
}

/// The structures of the table, up to the first that does not fit.
fn structures(data: &[u8]) -> Vec<Structure<'_>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(head) = data.get(at..at + MIN_FORMATTED) {
        let kind = head[0];
        let len = usize::from(head[1]);
        if len < MIN_FORMATTED {
            break;
        }
        let Some(formatted) = data.get(at..at + len) else {
            break;
        };
        // Strings: from the end of the formatted area to a double NUL.
        let area = &data[at + len..];
        let (strings, used, complete) = strings(area);
        out.push(Structure {
            kind,
            formatted,
            strings,
        });
        if !complete || kind == END_OF_TABLE {
            break;
        }
        at += len + used;
    }
    out
}

/// The strings at the start of `area`: (complete strings, bytes used
/// including the terminating NUL(s), whether the set was terminated).
fn strings(area: &[u8]) -> (Vec<&[u8]>, usize, bool) {
    // No strings: two NULs.
    if area.len() >= 2 && area[0] == 0 && area[1] == 0 {
        return (Vec::new(), 2, true);
    }
    let mut out = Vec::new();
    let mut at = 0usize;
    loop {
        let Some(rest) = area.get(at..) else {
            return (out, area.len(), false);
        };
        match rest.iter().position(|b| *b == 0) {
            // An empty string ends the set.
            Some(0) => return (out, at + 1, true),
            Some(n) => {
                out.push(&rest[..n]);
                at += n + 1;
            }
            // Cut off: the partial string is not used.
            None => return (out, area.len(), false),
        }
    }
}

/// Read and parse this PC's table (Windows).
#[cfg(windows)]
pub(crate) fn read() -> Result<Names, String> {
    parse(&firmware::raw_table()?)
}

#[cfg(windows)]
mod firmware {
    /// `RSMB`, as `GetSystemFirmwareTable` wants the provider signature.
    const RSMB: u32 = u32::from_be_bytes(*b"RSMB");
    /// No real table comes near this.
    const MAX_TABLE: u32 = 4 << 20;

    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn GetSystemFirmwareTable(provider: u32, id: u32, buffer: *mut u8, size: u32) -> u32;
    }

    /// The whole `RawSMBIOSData` buffer.
    pub(crate) fn raw_table() -> Result<Vec<u8>, String> {
        // SAFETY: a null buffer of size 0 asks for the size only.
        let mut size = unsafe { GetSystemFirmwareTable(RSMB, 0, std::ptr::null_mut(), 0) };
        // The table may change between the two calls: try a few times.
        for _ in 0..3 {
            if size == 0 {
                return Err(format!(
                    "GetSystemFirmwareTable(RSMB) failed: {}",
                    std::io::Error::last_os_error()
                ));
            }
            if size > MAX_TABLE {
                return Err(format!("the SMBIOS table claims {size} bytes"));
            }
            let mut buf = vec![0u8; size as usize];
            // SAFETY: buf is valid for `size` writable bytes.
            let got = unsafe { GetSystemFirmwareTable(RSMB, 0, buf.as_mut_ptr(), size) };
            if got != 0 && got <= size {
                buf.truncate(got as usize);
                return Ok(buf);
            }
            size = got;
        }
        Err("the SMBIOS table kept changing size".into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A RawSMBIOSData buffer around `data` (declared length = data length).
    fn raw(data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 3, 4, 0];
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    /// A structure of `kind` with string numbers at offsets 4 and 5.
    fn structure(kind: u8, len: u8, strings: &[&str]) -> Vec<u8> {
        let mut v = vec![kind, len, 0x10, 0x00];
        let mut fields = vec![0u8; usize::from(len).saturating_sub(4)];
        if fields.len() >= 2 && strings.len() >= 2 {
            fields[0] = 1;
            fields[1] = 2;
        }
        v.extend_from_slice(&fields);
        if strings.is_empty() {
            v.extend_from_slice(&[0, 0]);
        } else {
            for s in strings {
                v.extend_from_slice(s.as_bytes());
                v.push(0);
            }
            v.push(0);
        }
        v
    }

    fn good() -> Vec<u8> {
        let mut d = structure(0, 0x18, &["American Megatrends", "1.2.3", "01/01/2020"]);
        d.extend(structure(1, 0x1b, &["Dell Inc.", "OptiPlex 7090"]));
        d.extend(structure(2, 0x0f, &["Dell Inc.", "0X8DXD"]));
        d.extend(structure(127, 4, &[]));
        d
    }

    #[test]
    fn reads_board_and_product() {
        let n = parse(&raw(&good())).unwrap();
        assert_eq!(
            n,
            Names {
                board_vendor: Some("Dell Inc.".into()),
                board_name: Some("0X8DXD".into()),
                product_vendor: Some("Dell Inc.".into()),
                product_name: Some("OptiPlex 7090".into()),
            }
        );
    }

    #[test]
    fn malformed_tables_never_panic_and_keep_what_fits() {
        let g = good();
        // Every prefix of the table, with the declared length both honest
        // and still claiming the whole table: no panic, and the names read
        // are a subset of the real ones.
        let full = parse(&raw(&g)).unwrap();
        for cut in 0..=g.len() {
            let mut honest = raw(&g[..cut]);
            let mut lying = honest.clone();
            lying[4..8].copy_from_slice(&(g.len() as u32).to_le_bytes());
            for buf in [&mut honest, &mut lying] {
                if let Ok(n) = parse(buf) {
                    for (got, want) in [
                        (&n.board_vendor, &full.board_vendor),
                        (&n.board_name, &full.board_name),
                        (&n.product_vendor, &full.product_vendor),
                        (&n.product_name, &full.product_name),
                    ] {
                        assert!(got.is_none() || got == want, "cut {cut}: {n:?}");
                    }
                }
            }
        }
        // Every header length byte: no panic.
        for len in 0..=255u8 {
            let mut d = g.clone();
            d[1] = len;
            let _ = parse(&raw(&d));
        }
    }

    #[test]
    fn short_and_zero_length() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0, 3, 4]).is_err());
        assert!(parse(&raw(&[])).is_err());
        // Declared length 0 with data behind it: no table.
        let mut r = raw(&good());
        r[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert!(parse(&r).is_err());
        // A structure whose length byte is 0 or below the header: ends the walk.
        for len in [0u8, 1, 3] {
            let mut d = structure(1, 0x1b, &["A", "B"]);
            d[1] = len;
            assert_eq!(parse(&raw(&d)).unwrap(), Names::default(), "len {len}");
        }
    }

    #[test]
    fn truncated_strings() {
        // Product's strings cut inside the second string: the vendor is
        // complete, the cut name is not used.
        let mut d = structure(1, 0x1b, &["Dell Inc.", "OptiPlex 7090"]);
        d.truncate(d.len() - 6);
        let n = parse(&raw(&d)).unwrap();
        assert_eq!(n.product_vendor.as_deref(), Some("Dell Inc."));
        assert_eq!(n.product_name, None);
        // A string number beyond the strings, and 0: no value.
        let mut d = structure(2, 0x0f, &["Only one", "two"]);
        d[4] = 9;
        d[5] = 0;
        let n = parse(&raw(&d)).unwrap();
        assert_eq!((n.board_vendor, n.board_name), (None, None));
        // Not UTF-8: read lossily, the same way every time.
        let mut d = structure(2, 0x0f, &["Dell", "X"]);
        let at = d.len() - 3;
        d[at] = 0xff;
        let a = parse(&raw(&d)).unwrap();
        assert_eq!(a, parse(&raw(&d)).unwrap());
        assert_eq!(a.board_name.as_deref(), Some("\u{fffd}"));
    }

    /// The buffer Wine 8 returns in a container without
    /// /sys/class/dmi (131 bytes; every string field 0). sysinfo 0.37.2
    /// panics on it ("range start index 282 out of range for slice of
    /// length 131"): it walks the buffer from offset 0, through the
    /// RawSMBIOSData header, and slices past the end when the walk goes
    /// astray.
    const WINE8_NO_DMI: &str = "\
        00 02 04 00 7b 00 00 00 00 18 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00 ff ff ff ff \
        00 00 01 1b 01 00 00 00 00 00 3d 12 19 c7 c4 c5 40 4a aa 1f 6d 2a 48 ad fd a4 02 00 00 00 00 03 \
        15 02 00 00 02 00 00 00 02 02 02 02 00 00 00 00 00 00 00 03 00 00 02 0f 03 00 00 00 00 00 00 05 \
        00 02 00 0a 00 00 00 20 14 04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 7f 04 05 \
        00 00 00";

    #[test]
    fn wine8_table_without_dmi() {
        let raw: Vec<u8> = WINE8_NO_DMI
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        assert_eq!(raw.len(), 131);
        let kinds: Vec<u8> = structures(&raw[RAW_HEADER..])
            .iter()
            .map(|s| s.kind)
            .collect();
        assert_eq!(kinds, [0, 1, 3, 2, 32, 127]);
        assert_eq!(parse(&raw).unwrap(), Names::default());
    }

    /// No type-2 structure at all, and a type-1 structure shorter than
    /// SMBIOS 2.1's (only the fields up to the product name).
    #[test]
    fn missing_board_and_short_system_structure() {
        let mut d = structure(0, 0x18, &["Wine", "1.0"]);
        d.extend(structure(1, 0x08, &["The Wine Project", "Wine"]));
        d.extend(structure(127, 4, &[]));
        let n = parse(&raw(&d)).unwrap();
        assert_eq!(n.product_vendor.as_deref(), Some("The Wine Project"));
        assert_eq!(n.product_name.as_deref(), Some("Wine"));
        assert_eq!((n.board_vendor, n.board_name), (None, None));
    }
}
