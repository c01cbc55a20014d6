//! The tool cache outside the work tree: `$FLOWMETER_CACHE`, else
//! `${XDG_CACHE_HOME:-$HOME/.cache}/flowmeter`. It holds bpf-linker (`bin/`), the libLLVM
//! links it was built and runs against (`llvm/lib/`), a stamp naming that libLLVM, and
//! cargo-deb (`bin/`, for `cargo xtask deb`).

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn locate() -> Result<Self> {
        let set = |name| env::var_os(name).filter(|v| !v.is_empty());
        let dir = if let Some(dir) = set("FLOWMETER_CACHE") {
            PathBuf::from(dir)
        } else if let Some(xdg) = set("XDG_CACHE_HOME") {
            PathBuf::from(xdg).join("flowmeter")
        } else if let Some(home) = set("HOME") {
            PathBuf::from(home).join(".cache/flowmeter")
        } else {
            bail!("cannot place the tool cache: set FLOWMETER_CACHE, XDG_CACHE_HOME or HOME");
        };
        let dir = std::path::absolute(&dir)
            .with_context(|| format!("making {} absolute", dir.display()))?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    pub fn bpf_linker(&self) -> PathBuf {
        self.bin_dir().join("bpf-linker")
    }

    /// What bpf-linker's build takes as `LLVM_PREFIX`.
    pub fn llvm_prefix(&self) -> PathBuf {
        self.dir.join("llvm")
    }

    pub fn llvm_lib_dir(&self) -> PathBuf {
        self.llvm_prefix().join("lib")
    }

    /// Records the file name of the libLLVM that `bin/bpf-linker` was built against.
    pub fn stamp(&self) -> PathBuf {
        self.dir.join("bpf-linker.stamp")
    }

    /// `PATH` with the cache's `bin/` in front, for every cargo run that builds eBPF code.
    pub fn path_env(&self) -> Result<OsString> {
        let rest = env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(self.bin_dir()).chain(env::split_paths(&rest));
        env::join_paths(dirs).context("cache directory cannot go on PATH")
    }
}
