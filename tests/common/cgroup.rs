//! A cgroup (v2) of the test's own, named the way a container runtime names its
//! containers' cgroups, removed on drop with anything still in it.

use std::{
    fs,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use super::netns::unique_name;

/// Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a host
/// with both hierarchies).
pub fn cgroup2_mount() -> PathBuf {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("reading mountinfo");
    mountinfo
        .lines()
        .find_map(|line| {
            let (mount, filesystem) = line.split_once(" - ")?;
            filesystem
                .starts_with("cgroup2 ")
                .then(|| PathBuf::from(mount.split_whitespace().nth(4).expect("mount point field")))
        })
        .expect("cgroup v2 is mounted on this host")
}

/// `<cgroup2>/fmNNN.slice/docker-<64 hex>.scope`: what docker under systemd makes.
pub struct DockerCgroup {
    slice: PathBuf,
    pub scope: PathBuf,
    /// The container's full id (64 hex digits).
    pub id: String,
}

impl DockerCgroup {
    pub fn new() -> Self {
        let name = unique_name();
        let seed: u64 = name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
        let id: String = (0..4u64)
            .map(|part| format!("{:016x}", seed.rotate_left(16 * part as u32) ^ part))
            .collect();
        let slice = cgroup2_mount().join(format!("{name}.slice"));
        let scope = slice.join(format!("docker-{id}.scope"));
        fs::create_dir_all(&scope).unwrap_or_else(|e| panic!("creating {}: {e}", scope.display()));
        Self { slice, scope, id }
    }

    /// The label flowmeter gives it: the runtime and the id's first 12 digits.
    pub fn label(&self) -> String {
        format!("docker:{}", &self.id[..12])
    }

    /// The file a pid is written into to move its process here (from the test's own
    /// mount namespace: `ip netns exec` gives its commands a /sys without the cgroups).
    pub fn procs(&self) -> PathBuf {
        self.scope.join("cgroup.procs")
    }
}

impl Drop for DockerCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            kill_all(&self.scope);
            if fs::remove_dir(&self.scope).is_ok() || !self.scope.exists() {
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let removed = fs::remove_dir(&self.slice);
        if removed.is_err() && self.slice.exists() && !thread::panicking() {
            panic!("could not remove {}: {removed:?}", self.slice.display());
        }
    }
}

fn kill_all(cgroup: &Path) {
    let procs = fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
    for pid in procs
        .lines()
        .filter_map(|line| line.trim().parse::<i32>().ok())
    {
        // SAFETY: kill has no memory preconditions; the pid is in the test's cgroup.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
