//! Error paths of the real binary: exit status and what stderr says.
//!
//! The design's contract: a runtime error is one line on stderr, starting
//! `flowmeter: `, saying what went wrong and what to do, with exit status 1; a usage
//! error exits 2. Under `-v` a verifier rejection is preceded by the verifier's last
//! lines, each prefixed `verifier: `.
//!
//! Anything that could reach a kernel hook runs inside a fresh network namespace and
//! names only its `lo`, so the machine's own interfaces are never touched even if the
//! binary misbehaves. Every child process is bounded by a timeout. These tests need
//! root, and fail (not skip) without it.

use std::{
    fs,
    io::Read,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{self, Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use flowmeter_common::{TC_EGRESS_PROG, TC_INGRESS_PROG, XDP_INGRESS_PROG};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

const BIN: &str = env!("CARGO_BIN_EXE_flowmeter");
/// The eBPF object build.rs built, the one the binary embeds.
const OBJECT: &str = concat!(env!("OUT_DIR"), "/flowmeter");
/// How long any one child process may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// `r0 = *(u64 *)(r2 + 0)`: reads through r2, which is not initialised on entry, so
/// the verifier rejects it ("R2 !read_ok") whatever the caller's privileges.
/// (A read of uninitialised stack would not do: root may read it.)
const REJECTED_INSN: [u8; 8] = [0x79, 0x20, 0, 0, 0, 0, 0, 0];
const REJECTED_COMPLAINT: &str = "R2 !read_ok";

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test, nor another run of this one, uses.
fn unique(tag: &str) -> String {
    format!(
        "fm-err-{}-{}-{tag}",
        process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests need root: they make network namespaces and load eBPF programs"
    );
}

/// What a finished child process left.
struct Finished {
    what: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn describe(&self) -> String {
        format!(
            "{}\n  status: {}\n  stdout: {:?}\n  stderr:\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    /// Non-empty stderr lines, apart from the verifier's log shown under `-v`.
    fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with("verifier: "))
            .collect()
    }

    /// Asserts the contract for runtime errors and returns the one line.
    fn expect_one_error_line(&self) -> &str {
        assert!(!self.stderr.contains("panicked"), "{}", self.describe());
        assert_eq!(self.code(), Some(1), "exit status\n{}", self.describe());
        let lines = self.error_lines();
        assert_eq!(
            lines.len(),
            1,
            "stderr must be exactly one line\n{}",
            self.describe()
        );
        assert!(
            lines[0].starts_with("flowmeter: "),
            "the line starts with `flowmeter: `\n{}",
            self.describe()
        );
        lines[0]
    }

    fn expect_usage_error(&self) {
        assert!(!self.stderr.contains("panicked"), "{}", self.describe());
        assert_eq!(self.code(), Some(2), "exit status\n{}", self.describe());
        assert!(
            self.stdout.is_empty(),
            "nothing on stdout\n{}",
            self.describe()
        );
        assert!(
            self.stderr.starts_with("error: "),
            "clap's error on stderr\n{}",
            self.describe()
        );
    }
}

/// Runs `command` in its own process group; kills the group if it outlives `TIMEOUT`.
fn try_run(command: &mut Command) -> Result<Finished, String> {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {what}: {e}"))?;
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = match wait_bounded(&mut child, TIMEOUT) {
        Some(status) => status,
        None => {
            kill_group(&mut child);
            return Err(format!("{what} did not finish within {TIMEOUT:?}"));
        }
    };
    Ok(Finished {
        what,
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    })
}

fn run(command: &mut Command) -> Finished {
    try_run(command).unwrap_or_else(|e| panic!("{e}"))
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILLs the child's process group (it leads its own) and reaps it.
fn kill_group(child: &mut Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill has no memory-safety preconditions; the group is the one we made.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = wait_bounded(child, Duration::from_secs(5));
}

/// A fresh network namespace, deleted when dropped (also on panic).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        require_root();
        let name = unique("ns");
        let added = run(Command::new("ip").args(["netns", "add", &name]));
        assert!(added.status.success(), "{}", added.describe());
        let netns = Self { name };
        let up = run(Command::new("ip").args(["-n", &netns.name, "link", "set", "lo", "up"]));
        assert!(up.status.success(), "{}", up.describe());
        netns
    }

    /// `ip netns exec NS program`: runs `program` inside the namespace.
    fn exec(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    fn flowmeter(&self) -> Command {
        self.exec(BIN)
    }

    /// Kernel hooks on the namespace's interfaces, as bpftool lists them.
    fn hooks(&self) -> serde_json::Value {
        let shown = run(self.exec("bpftool").args(["-j", "net", "show"]));
        assert!(shown.status.success(), "{}", shown.describe());
        serde_json::from_str(&shown.stdout)
            .unwrap_or_else(|e| panic!("bpftool's JSON: {e}\n{}", shown.describe()))
    }

    fn has_xdp(&self) -> bool {
        self.hooks()
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.get("xdp")?.as_array())
            .any(|xdp| !xdp.is_empty())
    }

    /// Nothing (XDP, TC filters, flow dissector) is left on the namespace's interfaces.
    /// bpftool 7.1 does not list TCX links, but those are owned by the process and
    /// cannot outlive it; what could (netlink XDP, cls_bpf filters) is listed.
    fn assert_nothing_attached(&self) {
        let hooks = self.hooks();
        let empty = hooks.as_array().is_some_and(|entries| {
            entries.iter().all(|entry| {
                entry.as_object().is_some_and(|kinds| {
                    kinds
                        .values()
                        .all(|list| list.as_array().is_some_and(Vec::is_empty))
                })
            })
        });
        assert!(empty, "something is attached in {}: {hooks}", self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = try_run(Command::new("ip").args(["netns", "delete", &self.name]));
    }
}

/// A path under the temporary directory, removed (file or tree) when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> Self {
        Self(std::env::temp_dir().join(unique(tag)))
    }

    fn as_str(&self) -> &str {
        self.0.to_str().expect("UTF-8 temporary path")
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = fs::remove_dir_all(&self.0);
        } else {
            let _ = fs::remove_file(&self.0);
        }
    }
}

/// A copy of the eBPF object whose named programs start with an instruction the
/// verifier rejects.
fn object_rejecting(programs: &[&str]) -> TempPath {
    let mut bytes = fs::read(OBJECT).unwrap_or_else(|e| panic!("reading {OBJECT}: {e}"));
    let mut offsets = Vec::new();
    {
        let file = object::File::parse(&*bytes).expect("the eBPF object parses as ELF");
        for symbol in file.symbols() {
            let Ok(name) = symbol.name() else { continue };
            if symbol.kind() != SymbolKind::Text || !programs.contains(&name) {
                continue;
            }
            let index = symbol
                .section_index()
                .expect("a program lives in a section");
            let section = file.section_by_index(index).expect("its section");
            let section_name = section.name().expect("section name");
            assert!(
                section_name == "xdp" || section_name == "classifier",
                "{name} is in section {section_name}"
            );
            assert!(
                section
                    .relocations()
                    .all(|(offset, _)| offset != symbol.address()),
                "{name}'s first instruction is relocated; patch another"
            );
            let (start, _) = section.file_range().expect("a section with bytes");
            offsets.push((name.to_owned(), (start + symbol.address()) as usize));
        }
    }
    for program in programs {
        assert!(
            offsets.iter().any(|(name, _)| name == program),
            "no program {program} in {OBJECT}"
        );
    }
    for (_, offset) in &offsets {
        bytes[*offset..*offset + REJECTED_INSN.len()].copy_from_slice(&REJECTED_INSN);
    }
    let path = TempPath::new("bad.o");
    fs::write(&path.0, &bytes).expect("writing the patched object");
    path
}

/// The effective capabilities a command gets under `setpriv ARGS`, in the namespace.
fn effective_caps(netns: &Netns, setpriv: &[&str]) -> u64 {
    let status = run(netns
        .exec("setpriv")
        .args(setpriv)
        .args(["cat", "/proc/self/status"]));
    assert!(status.status.success(), "{}", status.describe());
    status
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no CapEff\n{}", status.describe()))
}

fn has(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

/// `flowmeter log --iface lo` under `setpriv ARGS`, inside the namespace.
fn log_under_setpriv(netns: &Netns, setpriv: &[&str]) -> Finished {
    run(netns
        .exec("setpriv")
        .args(setpriv)
        .args([BIN, "log", "--iface", "lo", "--duration", "1"]))
}

// ---- 1. Unknown interface -------------------------------------------------------

#[test]
fn unknown_interface_is_one_line_naming_it_and_how_to_list_them() {
    let netns = Netns::new();
    let out = run(netns
        .flowmeter()
        .args(["log", "--iface", "nosuchif0", "--duration", "1"]));
    let line = out.expect_one_error_line();
    assert!(line.contains("nosuchif0"), "names the interface: {line}");
    assert!(line.contains("ip link"), "says how to list them: {line}");
}

#[test]
fn unknown_interface_is_refused_before_the_output_is_created() {
    let netns = Netns::new();
    let output = TempPath::new("never.jsonl");
    let out = run(netns.flowmeter().args([
        "log",
        "--iface",
        "lo",
        "--iface",
        "nosuchif0",
        "--duration",
        "1",
        "--output",
        output.as_str(),
    ]));
    let line = out.expect_one_error_line();
    assert!(line.contains("nosuchif0"), "{line}");
    assert!(!output.0.exists(), "{} was created", output.as_str());
    netns.assert_nothing_attached();
}

// ---- 2. Privileges --------------------------------------------------------------

#[test]
fn unprivileged_user_is_told_every_capability() {
    let netns = Netns::new();
    let setpriv = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ];
    assert_eq!(effective_caps(&netns, &setpriv), 0, "setpriv drops all");
    let out = log_under_setpriv(&netns, &setpriv);
    let line = out.expect_one_error_line();
    for cap in ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"] {
        assert!(line.contains(cap), "names {cap}: {line}");
    }
    netns.assert_nothing_attached();
}

#[test]
fn root_without_net_admin_is_told_only_that() {
    let netns = Netns::new();
    let setpriv = ["--inh-caps=-net_admin", "--bounding-set=-net_admin"];
    let caps = effective_caps(&netns, &setpriv);
    assert!(!has(caps, CAP_NET_ADMIN), "CapEff {caps:x} lost net_admin");
    for cap in [CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN] {
        assert!(has(caps, cap), "CapEff {caps:x} keeps capability {cap}");
    }
    let out = log_under_setpriv(&netns, &setpriv);
    let line = out.expect_one_error_line();
    assert!(line.contains("CAP_NET_ADMIN"), "{line}");
    assert!(!line.contains("CAP_BPF"), "{line}");
    assert!(!line.contains("CAP_PERFMON"), "{line}");
    netns.assert_nothing_attached();
}

#[test]
fn root_without_bpf_perfmon_and_sys_admin_is_told_only_those() {
    let netns = Netns::new();
    let drop = "-bpf,-perfmon,-sys_admin";
    let setpriv = [
        format!("--inh-caps={drop}"),
        format!("--bounding-set={drop}"),
    ];
    let setpriv: Vec<&str> = setpriv.iter().map(String::as_str).collect();
    let caps = effective_caps(&netns, &setpriv);
    for cap in [CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN] {
        assert!(!has(caps, cap), "CapEff {caps:x} lost capability {cap}");
    }
    assert!(has(caps, CAP_NET_ADMIN), "CapEff {caps:x} keeps net_admin");
    let out = log_under_setpriv(&netns, &setpriv);
    let line = out.expect_one_error_line();
    assert!(line.contains("CAP_BPF"), "{line}");
    assert!(line.contains("CAP_PERFMON"), "{line}");
    assert!(!line.contains("CAP_NET_ADMIN"), "{line}");
    netns.assert_nothing_attached();
}

/// Not an error: CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON, in the kernel
/// and so in the check.
#[test]
fn sys_admin_stands_in_for_bpf_and_perfmon() {
    let netns = Netns::new();
    let setpriv = ["--inh-caps=-bpf,-perfmon", "--bounding-set=-bpf,-perfmon"];
    let caps = effective_caps(&netns, &setpriv);
    assert!(!has(caps, CAP_BPF) && !has(caps, CAP_PERFMON), "{caps:x}");
    assert!(
        has(caps, CAP_SYS_ADMIN) && has(caps, CAP_NET_ADMIN),
        "{caps:x}"
    );
    let out = run(netns.exec("setpriv").args(setpriv).args([
        BIN,
        "log",
        "--iface",
        "lo",
        "--duration",
        "0.2",
        "--output",
        "/dev/null",
    ]));
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    netns.assert_nothing_attached();
}

// ---- 3. No BTF ------------------------------------------------------------------

fn btf_mounts() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("reading /proc/self/mountinfo")
        .lines()
        .filter(|line| line.split(' ').nth(4) == Some("/sys/kernel/btf"))
        .count()
}

#[test]
fn missing_btf_is_one_line_naming_the_kernel_option() {
    let netns = Netns::new();
    let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
    assert!(vmlinux.is_file(), "this host has BTF to hide");
    let mounts_before = btf_mounts();

    // `ip netns exec` gives the command its own mount namespace with a fresh /sys;
    // the tmpfs goes over /sys/kernel/btf inside a further private one, so the host's
    // /sys is never touched.
    let out = run(netns.exec("unshare").args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs none /sys/kernel/btf && exec \"$0\" \"$@\"",
        BIN,
        "log",
        "--iface",
        "lo",
        "--duration",
        "1",
    ]));
    let line = out.expect_one_error_line();
    assert!(line.contains("BTF"), "{line}");
    assert!(line.contains("CONFIG_DEBUG_INFO_BTF"), "{line}");

    assert!(vmlinux.is_file(), "the host's BTF is still there");
    assert_eq!(
        btf_mounts(),
        mounts_before,
        "the host's mounts are unchanged"
    );
    netns.assert_nothing_attached();
}

// ---- 4. Verifier rejection ------------------------------------------------------

fn log_with_object(netns: &Netns, object: &TempPath, args: &[&str]) -> Finished {
    run(netns
        .flowmeter()
        .env("FLOWMETER_BPF_OBJECT", object.as_str())
        .args(args)
        .args(["--iface", "lo", "--duration", "1"]))
}

#[test]
fn verifier_rejection_is_one_line_and_attaches_nothing() {
    let netns = Netns::new();
    let object = object_rejecting(&[XDP_INGRESS_PROG, TC_INGRESS_PROG, TC_EGRESS_PROG]);
    let out = log_with_object(&netns, &object, &["log"]);
    let line = out.expect_one_error_line();
    assert!(line.contains("verifier rejected"), "{line}");
    assert!(line.contains("-v"), "says how to see more: {line}");
    assert!(
        !out.stderr.contains("verifier: "),
        "no verifier log without -v\n{}",
        out.describe()
    );
    netns.assert_nothing_attached();
}

/// The one line should carry the kernel's complaint, not the statistics line the
/// verifier prints after it ("processed N insns ...").
#[test]
fn verifier_error_line_carries_the_kernels_complaint() {
    let netns = Netns::new();
    let object = object_rejecting(&[XDP_INGRESS_PROG, TC_INGRESS_PROG, TC_EGRESS_PROG]);
    let out = log_with_object(&netns, &object, &["log"]);
    let line = out.expect_one_error_line();
    assert!(
        line.contains(REJECTED_COMPLAINT),
        "the error line names the verifier's complaint ({REJECTED_COMPLAINT}): {line}"
    );
}

#[test]
fn verbose_verifier_rejection_shows_the_verifier_log_before_the_error() {
    let netns = Netns::new();
    let object = object_rejecting(&[XDP_INGRESS_PROG, TC_INGRESS_PROG, TC_EGRESS_PROG]);
    let out = log_with_object(&netns, &object, &["-v", "log"]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(!out.stderr.contains("panicked"), "{}", out.describe());
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let (last, before) = lines.split_last().expect("stderr is not empty");
    assert!(
        last.starts_with("flowmeter: ") && last.contains("verifier rejected"),
        "the error is the last line\n{}",
        out.describe()
    );
    let log: Vec<&str> = before
        .iter()
        .rev()
        .take_while(|line| line.starts_with("verifier: "))
        .copied()
        .collect();
    assert!(
        !log.is_empty(),
        "the verifier's lines come right before the error\n{}",
        out.describe()
    );
    assert!(
        log.iter().any(|line| line.contains(REJECTED_COMPLAINT)),
        "the verifier's complaint ({REJECTED_COMPLAINT}) is among them\n{}",
        out.describe()
    );
    netns.assert_nothing_attached();
}

/// Under `-v` the lines before the error are the verifier's, and only those (the
/// contract the brief states); other chatter would bury the log.
#[test]
fn verbose_verifier_rejection_prints_only_verifier_lines_and_the_error() {
    let netns = Netns::new();
    let object = object_rejecting(&[XDP_INGRESS_PROG, TC_INGRESS_PROG, TC_EGRESS_PROG]);
    let out = log_with_object(&netns, &object, &["-v", "log"]);
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    let others: Vec<&str> = out
        .error_lines()
        .into_iter()
        .filter(|line| !line.contains("verifier rejected"))
        .collect();
    assert!(
        others.is_empty(),
        "{} stderr line(s) besides `verifier: ` lines and the error, first: {:?}",
        others.len(),
        others.first()
    );
    out.expect_one_error_line();
}

/// The XDP program loads, the egress classifier is then rejected. Every program is
/// verified before any is attached, so nothing is left on the interface (this can
/// only be checked after the run; a link made in between would have died with it).
#[test]
fn rejection_of_the_last_program_leaves_nothing_attached() {
    let netns = Netns::new();
    let object = object_rejecting(&[TC_EGRESS_PROG]);
    let out = log_with_object(&netns, &object, &["log", "--hook", "xdp-generic"]);
    let line = out.expect_one_error_line();
    assert!(line.contains("verifier rejected"), "{line}");
    assert!(line.contains(TC_EGRESS_PROG), "names the program: {line}");
    netns.assert_nothing_attached();
}

#[test]
fn rejection_of_the_xdp_program_names_it() {
    let netns = Netns::new();
    let object = object_rejecting(&[XDP_INGRESS_PROG]);
    let out = log_with_object(&netns, &object, &["log", "--hook", "xdp-generic"]);
    let line = out.expect_one_error_line();
    assert!(line.contains("verifier rejected"), "{line}");
    assert!(line.contains(XDP_INGRESS_PROG), "names the program: {line}");
    netns.assert_nothing_attached();
}

#[test]
fn unreadable_object_override_is_one_line_naming_it_once() {
    let netns = Netns::new();
    let missing = TempPath::new("missing.o");
    let out = log_with_object(&netns, &missing, &["log"]);
    let line = out.expect_one_error_line();
    assert!(line.contains(missing.as_str()), "{line}");
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "the OS error is said once: {line}"
    );
    netns.assert_nothing_attached();
}

#[test]
fn object_override_that_is_not_elf_is_one_line() {
    let netns = Netns::new();
    let garbage = TempPath::new("garbage.o");
    fs::write(&garbage.0, b"not an ELF file\n").expect("writing garbage");
    let out = log_with_object(&netns, &garbage, &["log"]);
    let line = out.expect_one_error_line();
    assert!(line.contains("eBPF object"), "{line}");
    netns.assert_nothing_attached();
}

// ---- 5. Usage errors and help ---------------------------------------------------

#[test]
fn usage_errors_exit_2() {
    // In a namespace, so that an argument wrongly accepted cannot reach a real interface.
    let netns = Netns::new();
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "--bogus"),
        (&["log", "--bogus"], "--bogus"),
        (&["log", "--interval", "0"], "--interval"),
        (&["log", "--interval", "abc"], "abc"),
        (&["log", "--interval", "-1"], "-1"),
        (&["log", "--duration", "0"], "--duration"),
        (&["log", "--flows", "0"], "--flows"),
        (&["log", "--flows", "many"], "--flows"),
        (&["log", "--hook", "nonsense"], "nonsense"),
        (&["log", "--iface"], "--iface"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, named) in cases {
        let out = run(netns.flowmeter().args(*args));
        out.expect_usage_error();
        assert!(
            out.stderr.contains(named),
            "names {named}\n{}",
            out.describe()
        );
    }
    netns.assert_nothing_attached();
}

#[test]
fn help_exits_0_and_names_the_commands() {
    let out = run(Command::new(BIN).arg("--help"));
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    for word in ["log", "--verbose", "Exit status"] {
        assert!(
            out.stdout.contains(word),
            "mentions {word}\n{}",
            out.describe()
        );
    }
}

#[test]
fn log_help_exits_0_and_names_every_flag() {
    for args in [&["log", "--help"][..], &["help", "log"], &["log", "-h"]] {
        let out = run(Command::new(BIN).args(args));
        assert_eq!(out.code(), Some(0), "{}", out.describe());
        for flag in [
            "--iface",
            "--interval",
            "--duration",
            "--output",
            "--hook",
            "--flows",
        ] {
            assert!(
                out.stdout.contains(flag),
                "mentions {flag}\n{}",
                out.describe()
            );
        }
    }
}

// ---- 6. Output path -------------------------------------------------------------

#[test]
fn output_in_a_missing_directory_is_one_line() {
    let netns = Netns::new();
    let path = "/proc/nonexistent/x";
    let out =
        run(netns
            .flowmeter()
            .args(["log", "--iface", "lo", "--duration", "1", "--output", path]));
    let line = out.expect_one_error_line();
    assert!(line.contains(path), "names the path: {line}");
    netns.assert_nothing_attached();
}

#[test]
fn output_that_is_a_directory_is_one_line() {
    let netns = Netns::new();
    let dir = TempPath::new("dir");
    fs::create_dir(&dir.0).expect("making a directory");
    let out = run(netns.flowmeter().args([
        "log",
        "--iface",
        "lo",
        "--duration",
        "1",
        "--output",
        dir.as_str(),
    ]));
    let line = out.expect_one_error_line();
    assert!(line.contains(dir.as_str()), "names the path: {line}");
    netns.assert_nothing_attached();
}

// ---- 7. An XDP program already there --------------------------------------------

/// A background flowmeter, killed (its process group) when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            kill_group(&mut self.0);
        }
    }
}

#[test]
fn interface_with_an_xdp_program_is_refused() {
    let netns = Netns::new();
    let mut first = Background(
        netns
            .flowmeter()
            .args([
                "log",
                "--iface",
                "lo",
                "--hook",
                "xdp-generic",
                "--duration",
                "15",
                "--output",
                "/dev/null",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting the first flowmeter"),
    );
    let deadline = Instant::now() + TIMEOUT;
    while !netns.has_xdp() {
        assert!(
            Instant::now() < deadline,
            "the first flowmeter attached no XDP program within {TIMEOUT:?}"
        );
        assert!(
            matches!(first.0.try_wait(), Ok(None)),
            "the first flowmeter exited early"
        );
        thread::sleep(Duration::from_millis(50));
    }

    for hook in ["auto", "tc", "xdp-generic"] {
        let out = run(netns.flowmeter().args([
            "log",
            "--iface",
            "lo",
            "--duration",
            "1",
            "--hook",
            hook,
        ]));
        let line = out.expect_one_error_line();
        assert!(line.contains("already has an XDP program"), "{line}");
        assert!(line.contains("lo"), "{line}");
        assert!(line.contains("xdp off"), "says how to detach it: {line}");
    }

    // The first one is still metering, and stops cleanly on SIGTERM.
    assert!(
        netns.has_xdp(),
        "the refused runs left the first one's program"
    );
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(first.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = wait_bounded(&mut first.0, TIMEOUT).expect("the first flowmeter stops");
    assert_eq!(status.code(), Some(0), "the first flowmeter's exit");
    netns.assert_nothing_attached();
}
