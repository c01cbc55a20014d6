//! Attaching the socket-owner programs (`xdp/src/owners.rs`) to the cgroup v2 root,
//! where they run for every socket of the host, whatever its network namespace.
//!
//! Each is attached through a BPF link, which is always one of many on its cgroup:
//! programs others attached there keep running, and several flowmeters can run at once. All four attach or none
//! does; a failure never stops metering: it becomes the one sentence of
//! [`super::Datapath::socket_records`]'s error, and process attribution falls back to
//! /proc.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    programs::{CgroupAttachMode, Program, ProgramError, links::FdLink},
};
use flowmeter_common::{SENDMSG4_PROG, SENDMSG6_PROG, SOCK_CREATE_PROG, SOCK_OPS_PROG};

use super::loader::{error_chain, load_error};

/// The programs, in the order they are attached.
const PROGRAMS: [&str; 4] = [
    SOCK_CREATE_PROG,
    SOCK_OPS_PROG,
    SENDMSG4_PROG,
    SENDMSG6_PROG,
];

/// Loads (verifies) the socket-owner programs and attaches them to the cgroup v2 root
/// of this mount namespace. The error is one sentence for the user.
pub(super) fn attach(ebpf: &mut Ebpf) -> Result<Vec<FdLink>, String> {
    let root = find_cgroup2_root()?;
    let cgroup = File::open(&root)
        .map_err(|e| format!("cannot open the cgroup v2 root {} ({e})", root.display()))?;
    for name in PROGRAMS {
        load(ebpf, name)?;
    }
    PROGRAMS
        .iter()
        .map(|&name| attach_one(ebpf, name, &cgroup, &root))
        .collect()
}

/// The cgroup v2 root: where this mount namespace mounts it, else where the nearest
/// ancestor process's does, reached through `/proc/PID/root` (`ip netns exec` gives its
/// command a /sys of its own, without the cgroup mounts; the shell that ran it has
/// them). The error says what is missing, for the one warning.
pub fn find_cgroup2_root() -> Result<PathBuf, String> {
    let own = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo ({e})"))?;
    if let Some(root) = cgroup2_root(&own) {
        return Ok(root);
    }
    let mut refused = None;
    for pid in ancestors() {
        let process = PathBuf::from(format!("/proc/{pid}"));
        let mountinfo = match std::fs::read_to_string(process.join("mountinfo")) {
            Ok(mountinfo) => mountinfo,
            Err(e) => {
                refused.get_or_insert(e);
                continue;
            }
        };
        let Some(root) = cgroup2_root(&mountinfo) else {
            continue;
        };
        let through = process
            .join("root")
            .join(root.strip_prefix("/").unwrap_or(&root));
        match std::fs::metadata(&through) {
            Ok(_) => return Ok(through),
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    let absent = "no cgroup v2 root is mounted in this mount namespace";
    Err(match refused {
        Some(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("{absent}, and reaching another's through /proc/PID/root needs CAP_SYS_PTRACE")
        }
        Some(e) => format!("{absent}, and no other process's can be reached ({e})"),
        None => format!("{absent} nor in any ancestor's: the host has no cgroup v2"),
    })
}

/// This process's ancestors, parent first, up to init.
fn ancestors() -> Vec<u32> {
    let mut chain = Vec::new();
    let mut pid = std::process::id();
    while pid > 1 && chain.len() < 64 {
        let Some(parent) = parent_of(pid) else {
            break;
        };
        chain.push(parent);
        pid = parent;
    }
    chain
}

/// The parent of `pid` (field 4 of `/proc/PID/stat`).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm (field 2) is in parentheses and may hold anything, spaces included.
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Loads one program (the verifier checks it now), unless it is loaded already.
fn load(ebpf: &mut Ebpf, name: &'static str) -> Result<(), String> {
    let program = program(ebpf, name)?;
    if program.fd().is_ok() {
        return Ok(());
    }
    let loaded = match program {
        Program::CgroupSock(p) => p.load(),
        Program::SockOps(p) => p.load(),
        Program::CgroupSockAddr(p) => p.load(),
        other => return Err(wrong_type(name, other)),
    };
    loaded.map_err(|e| load_error(name, e).to_string())
}

/// Attaches one loaded program to `cgroup` through a BPF link the process owns.
fn attach_one(
    ebpf: &mut Ebpf,
    name: &'static str,
    cgroup: &File,
    root: &Path,
) -> Result<FdLink, String> {
    let refused = |e: ProgramError| {
        format!(
            "the kernel refused to attach {name} to the cgroup v2 root {} ({})",
            root.display(),
            error_chain(&e)
        )
    };
    let no_link = |_| format!("{name} could not be attached through a BPF link");
    // Through a BPF link (kernels from 5.7, which aya uses): a cgroup link is always one
    // of many, and the kernel refuses a link with BPF_F_ALLOW_MULTI (EINVAL); `Single`
    // is flags 0.
    let mode = CgroupAttachMode::Single;
    // The three program types share no trait for attaching: the same steps for each.
    macro_rules! attach_through_link {
        ($program:expr) => {{
            let id = $program.attach(cgroup, mode).map_err(refused)?;
            let link = $program.take_link(id).map_err(refused)?;
            FdLink::try_from(link).map_err(no_link)
        }};
    }
    match program(ebpf, name)? {
        Program::CgroupSock(p) => attach_through_link!(p),
        Program::SockOps(p) => attach_through_link!(p),
        Program::CgroupSockAddr(p) => attach_through_link!(p),
        other => Err(wrong_type(name, other)),
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Program, String> {
    ebpf.program_mut(name)
        .ok_or_else(|| format!("the eBPF object has no program {name}"))
}

fn wrong_type(name: &str, program: &Program) -> String {
    format!("{name} is a {:?} program", program.prog_type())
}

/// The mount point of the cgroup v2 hierarchy's root in `mountinfo`
/// (`/proc/self/mountinfo`): the first `cgroup2` mount whose root is `/`. A mount of a
/// subtree (a container's own cgroup) would see only that subtree's sockets.
pub fn cgroup2_root(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, filesystem) = line.split_once(" - ")?;
        let fstype = filesystem.split_whitespace().next()?;
        let mut fields = mount.split_whitespace();
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        (fstype == "cgroup2" && root == "/").then(|| PathBuf::from(unescape(mount_point)))
    })
}

/// A mountinfo path with its octal escapes (`\040` for a space, ...) decoded.
fn unescape(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_root_on_a_hybrid_host() {
        let mountinfo = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 25 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
37 35 0:32 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
";
        assert_eq!(
            cgroup2_root(mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn a_subtree_or_no_mount_is_no_root() {
        let subtree = "40 35 0:31 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_root(subtree), None);
        let none = "30 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n";
        assert_eq!(cgroup2_root(none), None);
        assert_eq!(cgroup2_root(""), None);
    }

    #[test]
    fn decodes_escaped_mount_points() {
        let spaced = "36 35 0:31 / /mnt/cgroup\\040two rw - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_root(spaced), Some(PathBuf::from("/mnt/cgroup two")));
    }
}
