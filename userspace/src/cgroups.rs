//! What a process's cgroup (v2) says about it: the container or systemd unit it runs in.
//!
//! Container runtimes and systemd name the cgroups they make: docker
//! `/system.slice/docker-<id>.scope` (or `/docker/<id>` without systemd), containerd
//! `…/cri-containerd-<id>.scope` (Kubernetes pods under `kubepods…`), cri-o
//! `crio-<id>.scope`, podman `libpod-<id>.scope`, lxc `/lxc.payload.<name>`, and systemd
//! `<name>.service` or `<name>.scope` under a slice. [`Cgroup::of_path`] reads them;
//! [`CgroupPaths`] finds the path of a cgroup id that the kernel recorded, for a process
//! that has exited since.

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

/// A process's cgroup (v2) and what its path names: a container (docker, containerd,
/// podman, kubepods) or a systemd unit. Empty where unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cgroup {
    /// The path under the cgroup v2 root, e.g. `/system.slice/nginx.service`.
    pub path: Option<Arc<str>>,
    /// The container the path names, e.g. `docker:4f0c1e2a9b3d` (runtime, short id).
    pub container: Option<Arc<str>>,
    /// The systemd unit the path names, e.g. `nginx.service`.
    pub unit: Option<Arc<str>>,
}

/// How many hex digits of a container id are shown, as `docker ps` shows them.
const SHORT_ID: usize = 12;

/// Runtimes that name a container's scope `<prefix><id>.scope` (systemd cgroup driver).
const SCOPE_PREFIXES: [(&str, &str); 5] = [
    ("docker-", "docker"),
    ("cri-containerd-", "containerd"),
    ("crio-", "crio"),
    ("libpod-", "podman"),
    ("containerd-", "containerd"),
];

impl Cgroup {
    /// The labels of cgroup `path` (as `/proc/PID/cgroup`'s `0::` line gives it).
    pub fn of_path(path: &str) -> Self {
        let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
        Self {
            path: Some(Arc::from(path)),
            container: container(&parts).map(Arc::from),
            unit: unit(&parts).map(Arc::from),
        }
    }

    /// The cgroup of process `pid` under `proc_root`; empty if it cannot be read.
    pub fn of_process(proc_root: &Path, pid: u32) -> Self {
        let text = fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"));
        text.ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("0::").map(Cgroup::of_path))
            })
            .unwrap_or_default()
    }
}

/// The container a cgroup path names: the innermost part that a runtime named.
fn container(parts: &[&str]) -> Option<String> {
    parts
        .iter()
        .rev()
        .find_map(|part| {
            if let Some(scope) = part.strip_suffix(".scope") {
                for (prefix, runtime) in SCOPE_PREFIXES {
                    if let Some(id) = scope.strip_prefix(prefix) {
                        return Some(labelled(runtime, id));
                    }
                }
            }
            if let Some(name) = part.strip_prefix("lxc.payload.") {
                return Some(format!("lxc:{name}"));
            }
            None
        })
        // cgroupfs driver: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>.
        .or_else(|| match parts {
            ["docker", id, ..] if is_hex_id(id) => Some(labelled("docker", id)),
            [first, .., id] if first.starts_with("kubepods") && is_hex_id(id) => {
                Some(labelled("kubepods", id))
            }
            _ => None,
        })
}

fn labelled(runtime: &str, id: &str) -> String {
    let short = match is_hex_id(id) {
        true => &id[..SHORT_ID],
        false => id,
    };
    format!("{runtime}:{short}")
}

fn is_hex_id(id: &str) -> bool {
    id.len() >= SHORT_ID && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The systemd unit a cgroup path names: its innermost `.service`, or a `.scope` that
/// is no container's.
fn unit(parts: &[&str]) -> Option<String> {
    let service = parts.iter().rev().find(|part| part.ends_with(".service"));
    let scope = || {
        parts.iter().rev().find(|part| {
            part.ends_with(".scope")
                && !SCOPE_PREFIXES
                    .iter()
                    .any(|(prefix, _)| part.starts_with(prefix))
        })
    };
    service.or_else(scope).map(|unit| (*unit).to_owned())
}

/// Cgroup ids (the inode of the cgroup's directory, what the kernel records) to paths,
/// found by walking the cgroup v2 root, cached; walked again on a miss at most every
/// [`WALK_AGAIN_AFTER`].
#[derive(Debug)]
pub struct CgroupPaths {
    root: Option<PathBuf>,
    paths: HashMap<u64, Arc<Cgroup>>,
    walked: Option<Instant>,
}

const WALK_AGAIN_AFTER: Duration = Duration::from_secs(10);
/// Bounds a walk on a host with a huge hierarchy.
const MOST_CGROUPS: usize = 100_000;

impl CgroupPaths {
    /// Walks `root` (the cgroup v2 root's directory), or nothing if there is none.
    pub fn new(root: Option<PathBuf>) -> Self {
        Self {
            root,
            paths: HashMap::new(),
            walked: None,
        }
    }

    /// The cgroup whose id is `id`; empty if it is gone or there is no root.
    pub fn of_id(&mut self, id: u64, now: Instant) -> Arc<Cgroup> {
        if let Some(cgroup) = self.paths.get(&id) {
            return cgroup.clone();
        }
        let due = self
            .walked
            .is_none_or(|walked| now.saturating_duration_since(walked) >= WALK_AGAIN_AFTER);
        if let (true, Some(root)) = (due, &self.root) {
            self.walked = Some(now);
            self.paths = walk(root)
                .into_iter()
                .map(|(id, path)| (id, Arc::new(Cgroup::of_path(&path))))
                .collect();
        }
        self.paths.get(&id).cloned().unwrap_or_default()
    }
}

/// Every cgroup under `root`: its id and its path relative to `root` (`/` for the root).
fn walk(root: &Path) -> Vec<(u64, String)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if found.len() >= MOST_CGROUPS {
            break;
        }
        let Ok(meta) = fs::metadata(&dir) else {
            continue;
        };
        let relative = dir.strip_prefix(root).unwrap_or(Path::new(""));
        found.push((meta.ino(), format!("/{}", relative.display())));
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        pending.extend(
            entries
                .flatten()
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                .map(|entry| entry.path()),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(path: &str) -> (Option<String>, Option<String>) {
        let cgroup = Cgroup::of_path(path);
        (
            cgroup.container.map(|c| c.to_string()),
            cgroup.unit.map(|u| u.to_string()),
        )
    }

    const ID: &str = "4f0c1e2a9b3d8c7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e";

    #[test]
    fn container_runtimes_under_systemd() {
        for (path, container) in [
            (
                format!("/system.slice/docker-{ID}.scope"),
                "docker:4f0c1e2a9b3d",
            ),
            (
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-{ID}.scope"
                ),
                "containerd:4f0c1e2a9b3d",
            ),
            (
                format!("/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"),
                "crio:4f0c1e2a9b3d",
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope"),
                "podman:4f0c1e2a9b3d",
            ),
            (
                format!(
                    "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
                ),
                "podman:4f0c1e2a9b3d",
            ),
        ] {
            assert_eq!(labels(&path).0.as_deref(), Some(container), "{path}");
        }
    }

    #[test]
    fn container_runtimes_without_systemd() {
        assert_eq!(
            labels(&format!("/docker/{ID}")).0.as_deref(),
            Some("docker:4f0c1e2a9b3d")
        );
        assert_eq!(
            labels(&format!("/kubepods/burstable/pod1234/{ID}"))
                .0
                .as_deref(),
            Some("kubepods:4f0c1e2a9b3d")
        );
        assert_eq!(labels("/lxc.payload.web1").0.as_deref(), Some("lxc:web1"));
    }

    #[test]
    fn systemd_units() {
        assert_eq!(
            labels("/system.slice/nginx.service"),
            (None, Some("nginx.service".to_owned()))
        );
        assert_eq!(
            labels("/user.slice/user-1000.slice/session-4.scope"),
            (None, Some("session-4.scope".to_owned()))
        );
        // The user's own manager runs units of its own: the innermost one is named.
        assert_eq!(
            labels("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service").1,
            Some("foo.service".to_owned())
        );
        // A docker container's scope is the container, not a unit.
        assert_eq!(labels(&format!("/system.slice/docker-{ID}.scope")).1, None);
    }

    #[test]
    fn the_root_and_plain_groups_name_nothing() {
        for path in ["/", "/init.scope/..", "/user.slice", "/fm123.slice/group"] {
            let (container, _) = labels(path);
            assert_eq!(container, None, "{path}");
        }
        assert_eq!(labels("/").1, None);
        assert_eq!(labels("/docker/not-an-id").0, None);
    }

    #[test]
    fn a_cgroup_id_is_found_by_walking_the_root() {
        let root = tempfile::tempdir().unwrap();
        let scope = root.path().join("system.slice").join("nginx.service");
        fs::create_dir_all(&scope).unwrap();
        let id = fs::metadata(&scope).unwrap().ino();
        let mut paths = CgroupPaths::new(Some(root.path().to_path_buf()));
        let now = Instant::now();
        let cgroup = paths.of_id(id, now);
        assert_eq!(cgroup.path.as_deref(), Some("/system.slice/nginx.service"));
        assert_eq!(cgroup.unit.as_deref(), Some("nginx.service"));
        // A miss soon after does not walk again; after a while it does.
        let later = root.path().join("system.slice").join("later.service");
        fs::create_dir_all(&later).unwrap();
        let later_id = fs::metadata(&later).unwrap().ino();
        assert_eq!(
            paths.of_id(later_id, now + Duration::from_secs(1)).path,
            None
        );
        let found = paths.of_id(later_id, now + WALK_AGAIN_AFTER);
        assert_eq!(found.unit.as_deref(), Some("later.service"));
    }
}
