//! Checks made before touching the kernel, so that a missing privilege or kernel
//! feature is reported as what it is instead of as an obscure syscall error.

use std::{fs, path::Path};

use super::Error;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Where the kernel publishes its own BTF.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Fails unless the process may load and attach BPF networking programs.
pub fn check_privileges() -> Result<(), Error> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::Io("reading /proc/self/status".into(), e))?;
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let missing = missing_capabilities(effective);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::MissingCapabilities(missing.join(", ")))
    }
}

/// Names of the capabilities still needed, given the effective set. CAP_SYS_ADMIN
/// stands in for CAP_BPF and CAP_PERFMON, as it does in the kernel.
pub fn missing_capabilities(effective: u64) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_PERFMON");
    }
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    missing
}

/// Fails unless the kernel exposes its BTF (CONFIG_DEBUG_INFO_BTF).
pub fn check_btf() -> Result<(), Error> {
    if Path::new(KERNEL_BTF).is_file() {
        Ok(())
    } else {
        Err(Error::NoBtf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_everything() {
        assert!(missing_capabilities(u64::MAX).is_empty());
    }

    #[test]
    fn names_what_is_missing() {
        assert_eq!(
            missing_capabilities(0),
            vec!["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"]
        );
        let bpf_and_net = (1 << CAP_BPF) | (1 << CAP_NET_ADMIN);
        assert_eq!(missing_capabilities(bpf_and_net), vec!["CAP_PERFMON"]);
        let sys_admin = 1 << CAP_SYS_ADMIN;
        assert_eq!(missing_capabilities(sys_admin), vec!["CAP_NET_ADMIN"]);
    }
}
