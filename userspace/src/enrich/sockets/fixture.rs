//! A fake `/proc` in a temporary directory: socket tables in the kernel's format, and
//! process directories with `comm`, `cmdline`, `status`, an `exe` link and `fd/N ->
//! socket:[INODE]` links.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    net::{IpAddr, SocketAddr},
    os::unix::fs::symlink,
    path::PathBuf,
    sync::Arc,
};

use flowmeter_common::{PROTO_TCP, PROTO_UDP};
use tempfile::TempDir;

use super::ProcPaths;
use crate::datapath::{FlowId, Protocol};

pub const TCP: u8 = PROTO_TCP;
pub const UDP: u8 = PROTO_UDP;

/// A flow seen on `eth0`, from socket addresses written as text.
pub fn flow(proto: u8, local: &str, remote: &str) -> FlowId {
    let local: SocketAddr = local.parse().expect("local socket address");
    let remote: SocketAddr = remote.parse().expect("remote socket address");
    FlowId {
        iface: Arc::from("eth0"),
        proto: Protocol(proto),
        local_ip: local.ip(),
        local_port: local.port(),
        remote_ip: remote.ip(),
        remote_port: remote.port(),
    }
}

/// TCP states as the tables write them.
pub const ESTABLISHED: u8 = 0x01;
pub const TIME_WAIT: u8 = 0x06;
pub const CLOSE: u8 = 0x07;
pub const LISTEN: u8 = 0x0a;

const TABLE_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

pub struct FakeProc {
    dir: TempDir,
}

/// A process to write into the fake `/proc`.
pub struct FakeProcess<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub args: &'a [&'a str],
    pub uid: u32,
    /// The `exe` link's target as the kernel writes it (" (deleted)" included); `None`
    /// leaves the link out, as for a kernel thread.
    pub exe: Option<&'a str>,
}

impl FakeProc {
    /// An empty `/proc`: four socket tables with only their header, no process.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        fs::create_dir(dir.path().join("net")).unwrap();
        let fake = Self { dir };
        for table in ["tcp", "tcp6", "udp", "udp6"] {
            fs::write(fake.net_table(table), TABLE_HEADER).unwrap();
        }
        fake
    }

    pub fn paths(&self) -> ProcPaths {
        ProcPaths {
            proc_root: self.dir.path().to_owned(),
            net_dir: self.dir.path().join("net"),
        }
    }

    /// Adds a TCP socket (to `tcp` or `tcp6`, by the local address's family).
    pub fn tcp(&self, local: &str, remote: &str, state: u8, inode: u64) {
        self.socket("tcp", local, remote, state, inode);
    }

    /// Adds a UDP socket; a remote of `0.0.0.0:0` or `[::]:0` is an unconnected one.
    pub fn udp(&self, local: &str, remote: &str, inode: u64) {
        let state = if remote.ends_with(":0") {
            CLOSE
        } else {
            ESTABLISHED
        };
        self.socket("udp", local, remote, state, inode);
    }

    /// Writes a process directory with no open files.
    pub fn process(&self, process: &FakeProcess) {
        let dir = self.pid_dir(process.pid);
        fs::create_dir_all(dir.join("fd")).unwrap();
        fs::write(dir.join("comm"), format!("{}\n", process.comm)).unwrap();
        let cmdline: String = process.args.iter().map(|arg| format!("{arg}\0")).collect();
        fs::write(dir.join("cmdline"), cmdline).unwrap();
        fs::write(dir.join("status"), status(process)).unwrap();
        if let Some(exe) = process.exe {
            symlink(exe, dir.join("exe")).unwrap();
        }
    }

    /// Gives process `pid` the file descriptor `fd` on socket `inode`.
    pub fn fd(&self, pid: u32, fd: u32, inode: u64) {
        let link = self.pid_dir(pid).join("fd").join(fd.to_string());
        symlink(format!("socket:[{inode}]"), link).unwrap();
    }

    /// Gives process `pid` an open file that is not a socket.
    pub fn file_fd(&self, pid: u32, fd: u32, path: &str) {
        symlink(path, self.pid_dir(pid).join("fd").join(fd.to_string())).unwrap();
    }

    /// The process exits: its directory goes.
    pub fn exit(&self, pid: u32) {
        fs::remove_dir_all(self.pid_dir(pid)).unwrap();
    }

    /// Empties the socket tables (every socket closed).
    pub fn close_all_sockets(&self) {
        for table in ["tcp", "tcp6", "udp", "udp6"] {
            fs::write(self.net_table(table), TABLE_HEADER).unwrap();
        }
    }

    /// Removes the whole tree, tables included: any later read finds nothing.
    pub fn remove_everything(&self) {
        for entry in fs::read_dir(self.dir.path()).unwrap() {
            fs::remove_dir_all(entry.unwrap().path()).unwrap();
        }
    }

    fn socket(&self, protocol: &str, local: &str, remote: &str, state: u8, inode: u64) {
        let local: SocketAddr = local.parse().expect("local socket address");
        let remote: SocketAddr = remote.parse().expect("remote socket address");
        let table = match local {
            SocketAddr::V4(_) => protocol.to_owned(),
            SocketAddr::V6(_) => format!("{protocol}6"),
        };
        let line = format!(
            "   0: {} {} {state:02X} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n",
            hex_address(local),
            hex_address(remote),
        );
        let mut file = OpenOptions::new()
            .append(true)
            .open(self.net_table(&table))
            .unwrap();
        file.write_all(line.as_bytes()).unwrap();
    }

    fn net_table(&self, name: &str) -> PathBuf {
        self.dir.path().join("net").join(name)
    }

    fn pid_dir(&self, pid: u32) -> PathBuf {
        self.dir.path().join(pid.to_string())
    }
}

/// `ADDR:PORT` as the kernel prints it: the address as 32-bit words in host byte order.
fn hex_address(address: SocketAddr) -> String {
    let octets = match address.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    let words: String = octets
        .chunks(4)
        .map(|word| format!("{:08X}", u32::from_ne_bytes(word.try_into().unwrap())))
        .collect();
    format!("{words}:{:04X}", address.port())
}

/// A `status` file as a 6.x kernel writes it (the fields procfs requires).
fn status(process: &FakeProcess) -> String {
    let FakeProcess { pid, comm, uid, .. } = process;
    format!(
        "Name:\t{comm}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nNgid:\t0\n\
         Pid:\t{pid}\nPPid:\t1\nTracerPid:\t0\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n\
         Gid:\t{uid}\t{uid}\t{uid}\t{uid}\nFDSize:\t64\nGroups:\t\nThreads:\t1\n\
         SigQ:\t0/63379\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
         SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000000000\n\
         CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
         CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n"
    )
}
