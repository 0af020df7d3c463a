//! Which program holds a local TCP port, where the OS tells (best effort).
//!
//! Linux: the listening socket's inode from `/proc/net/tcp` and
//! `/proc/net/tcp6`, then the process whose `/proc/PID/fd/*` links to
//! `socket:[INODE]`. Processes of other users are not readable without
//! privileges; then the answer is `None`. Other systems: `None` (Windows'
//! `GetExtendedTcpTable` could answer the same question later).

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

    pub fn holder(port: u16) -> Option<String> {
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

#[cfg(not(target_os = "linux"))]
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

    #[cfg(target_os = "linux")]
    #[test]
    fn names_this_process_for_its_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = holder(port).unwrap();
        assert!(h.contains(&format!("(pid {})", std::process::id())), "{h}");
    }
}
