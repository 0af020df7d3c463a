//! Which program holds a local TCP port, where the OS tells (best effort).
//!
//! Linux: the listening socket's inode from `/proc/net/tcp` and
//! `/proc/net/tcp6`, then the process whose `/proc/PID/fd/*` links to
//! `socket:[INODE]`. Processes of other users are not readable without
//! privileges; then the answer is `None`. Windows: the owning process of
//! the listener from `GetExtendedTcpTable` (IPv4 listeners with their
//! pid), its name from `QueryFullProcessImageNameW`, shown without
//! `.exe` like Linux's `comm`. Other systems: `None`.

/// `name (pid N)` of the program listening on TCP `port`, if the OS tells.
pub fn holder(port: u16) -> Option<String> {
    imp::holder(port)
}

/// Inodes of the sockets in LISTEN state on `port` in one `/proc/net/tcp*`
/// table (pure; the format is `sl local rem st … uid timeout inode …`).
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let state = f.get(3)?;
            let inode = f.get(9)?;
            let (_, port_hex) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(port_hex, 16).ok()?;
            if p != port || *state != LISTEN {
                return None;
            }
            inode.parse::<u64>().ok().filter(|i| *i != 0)
        })
        .collect()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs;

    pub(super) fn holder(port: u16) -> Option<String> {
        let mut inodes = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            if let Ok(text) = fs::read_to_string(table) {
                inodes.extend(super::listening_inodes(&text, port));
            }
        }
        if inodes.is_empty() {
            return None;
        }
        let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
        for proc_entry in fs::read_dir("/proc").ok()?.flatten() {
            let name = proc_entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(fds) = fs::read_dir(proc_entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                let Ok(target) = fs::read_link(fd.path()) else {
                    continue;
                };
                if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                    let comm = fs::read_to_string(proc_entry.path().join("comm"))
                        .map(|c| pra_proto::sanitize::sanitize(c.trim(), 64))
                        .unwrap_or_else(|_| "?".into());
                    return Some(format!("{comm} (pid {pid})"));
                }
            }
        }
        None
    }
}

/// The pid owning a LISTEN socket on `port` in a `MIB_TCPTABLE_OWNER_PID`
/// buffer (pure; little-endian `u32`s: the row count, then rows of state,
/// local address, local port in network byte order, remote address,
/// remote port, pid). Rows beyond the buffer are ignored.
pub fn listener_pid(table: &[u8], port: u16) -> Option<u32> {
    const LISTEN: u32 = 2;
    const ROW: usize = 24;
    let word = |b: &[u8], i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
    };
    let rows = word(table, 0)? as usize;
    let body = table.get(4..)?;
    (0..rows)
        .map_while(|r| body.get(r * ROW..r * ROW + ROW))
        .find_map(|row| {
            let state = word(row, 0)?;
            // The port's two bytes in network order, in the low 16 bits.
            let p = u16::from_be_bytes(row.get(8..10)?.try_into().ok()?);
            (state == LISTEN && p == port)
                .then(|| word(row, 20))
                .flatten()
        })
        // 0 is the idle process: "owner unknown" (Wine 8 says 0 for all).
        .filter(|pid| *pid != 0)
}

#[cfg(windows)]
mod imp {
    use std::os::windows::ffi::OsStringExt;

    const AF_INET: u32 = 2;
    const TCP_TABLE_OWNER_PID_LISTENER: u32 = 3;
    const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
    const PROCESS_QUERY_LIMITED_INFORMATION: u32 = 0x1000;

    #[link(name = "iphlpapi")]
    unsafe extern "system" {
        fn GetExtendedTcpTable(
            table: *mut u8,
            size: *mut u32,
            order: i32,
            af: u32,
            class: u32,
            reserved: u32,
        ) -> u32;
    }

    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn OpenProcess(access: u32, inherit: i32, pid: u32) -> isize;
        fn QueryFullProcessImageNameW(
            process: isize,
            flags: u32,
            name: *mut u16,
            size: *mut u32,
        ) -> i32;
        fn CloseHandle(handle: isize) -> i32;
    }

    pub(crate) fn holder(port: u16) -> Option<String> {
        let pid = super::listener_pid(&table()?, port)?;
        let name = image_name(pid).unwrap_or_else(|| "?".into());
        Some(format!("{name} (pid {pid})"))
    }

    fn table() -> Option<Vec<u8>> {
        let mut size = 0u32;
        for _ in 0..4 {
            let mut buf = vec![0u8; size as usize];
            let ptr = if buf.is_empty() {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr()
            };
            // SAFETY: `ptr` is null with size 0, or valid for `size` bytes.
            let rc = unsafe {
                GetExtendedTcpTable(ptr, &mut size, 0, AF_INET, TCP_TABLE_OWNER_PID_LISTENER, 0)
            };
            match rc {
                0 => {
                    buf.truncate(size as usize);
                    return Some(buf);
                }
                ERROR_INSUFFICIENT_BUFFER if size > 0 && size < (16 << 20) => continue,
                _ => return None,
            }
        }
        None
    }

    fn image_name(pid: u32) -> Option<String> {
        // SAFETY: plain Win32 calls; the handle is closed below, the buffer
        // is valid for `len` UTF-16 units.
        unsafe {
            let h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
            if h == 0 {
                return None;
            }
            let mut buf = [0u16; 1024];
            let mut len = buf.len() as u32;
            let ok = QueryFullProcessImageNameW(h, 0, buf.as_mut_ptr(), &mut len);
            CloseHandle(h);
            if ok == 0 {
                return None;
            }
            let path = std::ffi::OsString::from_wide(buf.get(..len as usize)?);
            let path = std::path::PathBuf::from(path);
            let stem = path.file_stem()?.to_string_lossy().into_owned();
            Some(pra_proto::sanitize::sanitize(&stem, 64))
        }
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod imp {
    pub fn holder(_port: u16) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2731 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000:2731 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
   2: 0100007F:2731 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6666 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn finds_listeners_on_the_port_only() {
        // 0x2731 = 10033
        assert_eq!(listening_inodes(TABLE, 10033), vec![4242, 4343]);
        assert_eq!(listening_inodes(TABLE, 22), vec![6666]);
        assert!(listening_inodes(TABLE, 80).is_empty());
        assert!(listening_inodes("", 22).is_empty());
        assert!(listening_inodes("header\ngarbage line\n", 22).is_empty());
    }

    #[test]
    fn finds_the_listener_pid_in_a_windows_table() {
        // (state, port, pid): LISTEN = 2, ESTABLISHED = 5.
        let rows: [(u32, u16, u32); 4] = [(5, 10033, 7), (2, 22, 8), (2, 10033, 4242), (2, 445, 0)];
        let mut t = (rows.len() as u32).to_le_bytes().to_vec();
        for (state, port, pid) in rows {
            t.extend(state.to_le_bytes());
            t.extend(0x0100_007fu32.to_le_bytes());
            t.extend([port.to_be_bytes()[0], port.to_be_bytes()[1], 0, 0]);
            t.extend([0u8; 8]);
            t.extend(pid.to_le_bytes());
        }
        assert_eq!(listener_pid(&t, 10033), Some(4242));
        assert_eq!(listener_pid(&t, 22), Some(8));
        assert_eq!(listener_pid(&t, 80), None);
        assert_eq!(listener_pid(&t, 445), None, "pid 0 = unknown");
        // A count larger than the buffer, and short buffers: no panic.
        let mut lying = t.clone();
        lying[..4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(listener_pid(&lying, 10033), Some(4242));
        for cut in 0..t.len() {
            let _ = listener_pid(&t[..cut], 10033);
        }
        assert_eq!(listener_pid(&t[..4 + 3 * 24 - 1], 10033), None);
    }

    #[cfg(any(target_os = "linux", windows))]
    #[test]
    fn names_this_process_for_its_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = holder(port).unwrap();
        assert!(h.contains(&format!("(pid {})", std::process::id())), "{h}");
    }
}
