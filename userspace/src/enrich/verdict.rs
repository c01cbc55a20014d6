//! Verdicts: is a flow normal business, the cloud provider's agent, or possible malware?
//!
//! The runbook has the administrator decide this by hand; flowmeter proposes the same
//! decision with its evidence and never acts on it. [`Rules::judge`] looks at one flow,
//! the process that owns it (if any) and a little context, and answers a [`Judgement`]:
//! a [`Verdict`], the [`Reason`]s behind it, and whether the remote is foreign.
//!
//! - **suspicious** (possible malware) when any sign of compromise is present: the
//!   executable was deleted, or lies under `/tmp`, `/var/tmp` or `/dev/shm` (or an
//!   interpreter runs a script from there); the name of a user-space process copies a
//!   kernel thread (`kworker/0:2`, `[kthreadd]`, ...); the process was launched from a
//!   persistence point that `audit` found (rc.local, crontabs); it maps huge pages and is
//!   not a known huge-page user; it sends to a common mining-pool port, or listens on
//!   one; the process talks to more remote hosts in one interval than a flood limit.
//! - **cloud agent** when the executable's path or name is a known agent of a cloud
//!   provider (Tencent Cloud, Alibaba Cloud, AWS, Google Cloud, Azure) and nothing is
//!   suspicious: a deleted or `/tmp`-launched "agent" is suspicious, not an agent.
//! - **business** otherwise.
//!
//! With no local process (forwarded or raw traffic, or a socket already closed) the
//! flow alone decides: a mining-pool remote port the host sent to makes it suspicious,
//! anything else is business, and the reasons say "no local process". Traffic that only
//! came in from such a port is not evidence: a spoofed flood's random source ports hit
//! the pool list by chance.
//!
//! A remote outside the home countries is *foreign*: a risk mark beside the verdict and
//! a reason line, never a verdict on its own. When a suspicious flow is also foreign,
//! its foreign reason says that the risk is greater.
//!
//! [`Rules::judge`] is pure: everything it needs comes in through [`FlowContext`]. The
//! caller counts remote hosts per process, reads huge pages with [`hugetlb_kb`] (and
//! caches the answer per process), and passes what `audit` found as [`Persistence`].
//!
//! # Extending the rules
//!
//! The built-in rules ([`Rules::default`]) can be extended from the `[verdict]` section
//! of a TOML file ([`Rules::from_toml`], [`Rules::load`]). Every key is optional; lists
//! add to the built-in ones and `flood_hosts` replaces the limit. A key this module does
//! not know is an error, so that a typo never silently drops a rule.
//!
//! ```toml
//! [verdict]
//! # More than this many distinct remote hosts for one process in one interval is an
//! # outbound flood (built in: 200).
//! flood_hosts = 500
//! # Remote ports of mining pools, added to 3333, 4444, 5555, 7777, 14433, 14444,
//! # 45560, 45700.
//! mining_ports = [3334, 13333]
//! # Programs that may map huge pages; a trailing `*` matches any suffix.
//! huge_page_users = ["redis-server", "vpp-*"]
//!
//! # One table per agent: its provider, and the program names (executable file name,
//! # process name, or an interpreter's script) or directories it runs from.
//! [[verdict.agents]]
//! provider = "Hetzner Cloud"
//! names = ["hcloud-agent"]
//! paths = ["/opt/hcloud/"]
//! ```

use std::{
    collections::BTreeSet,
    fmt,
    path::{Path, PathBuf},
};

use flowmeter_common::{PROTO_TCP, PROTO_UDP};
use serde::Deserialize;

use crate::{
    datapath::FlowId,
    enrich::{
        geo::{CountryCode, HomeCountries, Location},
        sockets::ProcessInfo,
    },
};

/// The administrator's decision, as flowmeter proposes it. Ordered by precedence: when
/// signs point to several, the greatest wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Normal traffic of the host's own services.
    Business,
    /// The cloud provider's own agent.
    CloudAgent,
    /// Possible malware.
    Suspicious,
}

impl Verdict {
    /// "business", "cloud-agent" or "suspicious": for logs and wide consoles.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Business => "business",
            Verdict::CloudAgent => "cloud-agent",
            Verdict::Suspicious => "suspicious",
        }
    }

    /// One character for a narrow console, legible without colour: ' ' (business),
    /// 'C' (cloud agent), '!' (suspicious).
    pub fn mark(self) -> char {
        match self {
            Verdict::Business => ' ',
            Verdict::CloudAgent => 'C',
            Verdict::Suspicious => '!',
        }
    }

    /// What to do next, as the runbook says.
    pub fn advice(self) -> &'static str {
        match self {
            Verdict::Business => {
                "Normal traffic of this host's services. If it saturates the link, check \
                 whether demand has grown: add capacity, upgrade the instance's bandwidth, \
                 or rate-limit the service."
            }
            Verdict::CloudAgent => {
                "The cloud provider's own agent. If it saturates the link, do not kill it: \
                 open a ticket with the provider, who can locate the problem."
            }
            Verdict::Suspicious => {
                "Possible malware (virus, trojan or miner). Check the process and the \
                 reasons above; kill it, back up the data (take a snapshot), then clean or \
                 reinstall the system and harden it: strong passwords, no unused users, \
                 sshd off port 22, only the ports the service needs. Run `flowmeter audit` \
                 for rc.local, crontab, ld.so.preload and huge-page signs."
            }
        }
    }
}

impl fmt::Display for Verdict {
    /// The [`label`](Self::label).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.label())
    }
}

/// One piece of evidence. Each displays as a short sentence for the details pane and
/// the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No local process owns the flow: forwarded or raw traffic, or a closed socket.
    NoLocalProcess,
    /// The process's executable was deleted after it started.
    ExeDeleted { exe: PathBuf },
    /// The executable lies under a world-writable temporary directory.
    ExeInTempDir { dir: PathBuf },
    /// An interpreter (sh, python, perl, ...) runs a script from a temporary directory.
    ScriptInTempDir { dir: PathBuf, script: String },
    /// A user-space process named like a kernel thread (its comm or its `argv[0]`).
    KernelThreadName { name: String },
    /// The process's executable or script is started by a persistence point.
    Persistence { point: PathBuf, command: String },
    /// The process maps huge pages and is not a known huge-page user.
    HugePages { kb: u64 },
    /// The flow goes to a common mining-pool port: a local process (or, with none, the
    /// host) sends to it.
    MiningPort { port: u16 },
    /// A local process listens on a common mining-pool port and receives the flow on it.
    MiningPortListener { port: u16 },
    /// The process talks to more distinct remote hosts in one interval than `limit`.
    OutboundFlood { remote_hosts: usize, limit: usize },
    /// A known agent of a cloud provider.
    CloudAgent { program: String, provider: String },
    /// The remote is in a country outside the home countries. `raises_risk`: the flow is
    /// suspicious as well, which makes the risk greater.
    Foreign {
        country: CountryCode,
        home: HomeCountries,
        raises_risk: bool,
    },
    /// A reason read back from a recording (`flowmeter replay`): its sentence as logged.
    Recorded(String),
}

impl Reason {
    /// The verdict this reason is evidence for; `None` for context (no process, foreign).
    pub fn supports(&self) -> Option<Verdict> {
        match self {
            Reason::ExeDeleted { .. }
            | Reason::ExeInTempDir { .. }
            | Reason::ScriptInTempDir { .. }
            | Reason::KernelThreadName { .. }
            | Reason::Persistence { .. }
            | Reason::HugePages { .. }
            | Reason::MiningPort { .. }
            | Reason::MiningPortListener { .. }
            | Reason::OutboundFlood { .. } => Some(Verdict::Suspicious),
            Reason::CloudAgent { .. } => Some(Verdict::CloudAgent),
            Reason::NoLocalProcess | Reason::Foreign { .. } | Reason::Recorded(_) => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoLocalProcess => {
                f.write_str("no local process (forwarded, raw or closed): judged by the flow")
            }
            Reason::ExeDeleted { exe } => {
                write!(f, "executable deleted: {} (deleted)", exe.display())
            }
            Reason::ExeInTempDir { dir } => write!(f, "executable under {}", dir.display()),
            Reason::ScriptInTempDir { dir, script } => {
                write!(f, "script under {}: {script}", dir.display())
            }
            Reason::KernelThreadName { name } => {
                write!(f, "name copies a kernel thread: {name}")
            }
            Reason::Persistence { point, .. } => {
                write!(f, "launched from a persistence point: {}", point.display())
            }
            Reason::HugePages { kb } => write!(
                f,
                "maps huge pages (HugetlbPages {kb} kB) and is not a known huge-page user"
            ),
            Reason::MiningPort { port } => {
                write!(f, "remote port {port} is a common mining-pool port")
            }
            Reason::MiningPortListener { port } => {
                write!(f, "listens on local port {port}, a common mining-pool port")
            }
            Reason::OutboundFlood {
                remote_hosts,
                limit,
            } => write!(
                f,
                "talks to {remote_hosts} remote hosts in one interval (outbound flood, limit {limit})"
            ),
            Reason::CloudAgent { program, provider } => {
                write!(f, "known cloud agent: {program} ({provider})")
            }
            Reason::Foreign {
                country,
                home,
                raises_risk,
            } => {
                write!(f, "remote in {country}, outside home countries {home}")?;
                if *raises_risk {
                    f.write_str(": greater risk with the signs above")?;
                }
                Ok(())
            }
            Reason::Recorded(text) => f.write_str(text),
        }
    }
}

/// What flowmeter proposes for one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// The evidence, signs of compromise first, then the cloud agent, then context
    /// (no local process, foreign). Empty for business traffic with no remark.
    pub reasons: Vec<Reason>,
    /// The remote is in a country outside the home countries: a risk mark beside the
    /// verdict, not a verdict.
    pub foreign: bool,
}

impl Judgement {
    /// Suspicious and foreign: the runbook's "greater risk".
    pub fn raised_risk(&self) -> bool {
        self.verdict == Verdict::Suspicious && self.foreign
    }
}

/// What the caller knows about a flow besides its id and process. Gathered outside
/// [`Rules::judge`], which does no I/O.
#[derive(Clone, Copy, Debug)]
pub struct FlowContext<'a> {
    /// Where the remote is.
    pub location: Location,
    /// The host's own countries (`--home`).
    pub home: &'a HomeCountries,
    /// How many distinct remote hosts the owning process talked to in this interval.
    pub remote_hosts_of_process: usize,
    /// What `audit` found in rc.local and crontabs.
    pub persistence: &'a Persistence,
    /// The owning process's `HugetlbPages` in kB ([`hugetlb_kb`]); `None` if unknown.
    pub hugetlb_kb: Option<u64>,
    /// The host has sent packets on this flow: with no local process, only then is a
    /// mining-pool remote port evidence.
    pub outbound: bool,
}

impl<'a> FlowContext<'a> {
    /// A context with only the remote's place known: no remote-host count, no
    /// persistence points, huge pages unknown, nothing sent.
    pub fn new(location: Location, home: &'a HomeCountries) -> Self {
        static NONE_FOUND: Persistence = Persistence::new();
        Self {
            location,
            home,
            remote_hosts_of_process: 0,
            persistence: &NONE_FOUND,
            hugetlb_kb: None,
            outbound: false,
        }
    }
}

/// Commands that persistence points start (rc.local lines, crontab entries), as `audit`
/// found them. A process is "launched from" an entry when its executable, or the script
/// its interpreter runs, is a word of the entry's command.
///
/// Libraries in `/etc/ld.so.preload` are loaded into every process, not launched:
/// `audit` reports them on their own, and they are no evidence against one process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persistence {
    entries: Vec<PersistenceEntry>,
}

/// One command found at a persistence point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistenceEntry {
    /// Where it was found, e.g. `/etc/rc.local` or `/var/spool/cron/crontabs/root`.
    pub point: PathBuf,
    /// The command line as written there.
    pub command: String,
    /// The command's words, split at blanks and shell punctuation.
    words: Vec<String>,
}

impl Persistence {
    /// None found.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Records that `point` starts `command`.
    pub fn add(&mut self, point: impl Into<PathBuf>, command: impl Into<String>) {
        let command = command.into();
        let words = command
            .split(|c: char| c.is_whitespace() || ";&|()<>`'\"=".contains(c))
            .filter(|word| !word.is_empty())
            .map(str::to_owned)
            .collect();
        self.entries.push(PersistenceEntry {
            point: point.into(),
            command,
            words,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &PersistenceEntry> {
        self.entries.iter()
    }

    /// The first entry that starts `process`.
    pub fn launched(&self, process: &ProcessInfo) -> Option<&PersistenceEntry> {
        let exe = process.exe.as_deref().and_then(Path::to_str);
        let script = script_of(process).filter(|script| script.starts_with('/'));
        self.entries.iter().find(|entry| {
            entry
                .words
                .iter()
                .any(|word| Some(word.as_str()) == exe || Some(word.as_str()) == script)
        })
    }
}

/// A cloud provider's agent: the names and directories it runs as.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Shown in the reason, e.g. "Tencent Cloud".
    pub provider: String,
    /// Program names: an executable's file name, a process name (comm, which the
    /// kernel cuts to 15 bytes), or the script an interpreter runs. A name also matches
    /// a file name that continues with '-' or '.' (`WALinuxAgent-2.9.1.1-py3.8.egg`).
    #[serde(default)]
    pub names: Vec<String>,
    /// Absolute directories: an executable or script under one is the agent's.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
}

/// The built-in agents: provider, names, directories.
const BUILT_IN_AGENTS: &[(&str, &[&str], &[&str])] = &[
    (
        "Tencent Cloud",
        &["YDService", "YDLive", "barad_agent", "tat_agent"],
        &["/usr/local/qcloud/"],
    ),
    (
        "Alibaba Cloud",
        &["aliyun-service", "AliYunDun", "AliYunDunUpdate"],
        &["/usr/local/aegis/", "/usr/local/share/aliyun-assist/"],
    ),
    ("AWS", &["amazon-ssm-agent", "ssm-agent-worker"], &[]),
    (
        "Google Cloud",
        &["google_guest_agent", "google_osconfig_agent"],
        &[],
    ),
    ("Azure", &["waagent", "WALinuxAgent"], &[]),
];

/// Remote ports that mining pools commonly listen on. Ports that many ordinary services
/// use (8080, 8888, 9999, ...) are left out on purpose.
const BUILT_IN_MINING_PORTS: &[u16] = &[3333, 4444, 5555, 7777, 14433, 14444, 45560, 45700];

/// More distinct remote hosts than this for one process in one interval is a flood.
const BUILT_IN_FLOOD_HOSTS: usize = 200;

/// Programs that map huge pages for good reasons: databases, JVMs, virtual machines,
/// DPDK packet processing. A trailing `*` matches any suffix.
const BUILT_IN_HUGE_PAGE_USERS: &[&str] = &[
    "postgres",
    "postmaster",
    "mysqld",
    "mariadbd",
    "oracle",
    "java",
    "qemu-system-*",
    "qemu-kvm",
    "dpdk-*",
    "testpmd",
    "vpp",
    "ovs-vswitchd",
];

/// World-writable directories where legitimate services do not keep their programs.
const TEMP_DIRS: &[&str] = &["/tmp", "/var/tmp", "/dev/shm"];

/// Names of kernel threads that malware borrows (ps shows kernel threads in brackets).
/// Prefixes, so that "kworker/0:2", "kswapd0" and the miners' "kdevtmpfsi" match; names
/// of real user-space daemons ("watchdog", "ksmtuned") do not.
const KERNEL_THREAD_PREFIXES: &[&str] = &[
    "kworker",
    "ksoftirqd",
    "kthreadd",
    "kswapd",
    "kcompactd",
    "khugepaged",
    "kdevtmpfs",
    "kauditd",
    "kblockd",
    "khungtaskd",
    "kintegrityd",
    "kthrotld",
    "ksmd",
    "oom_reaper",
    "migration/",
    "watchdog/",
    "cpuhp/",
    "idle_inject/",
    "irq/",
    "jbd2/",
    "rcu_",
    "rcuc/",
    "rcuop/",
    "rcuos/",
    "mm_percpu_wq",
    "scsi_eh_",
];

/// Programs that run scripts: their script, not their executable, says what runs.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "python", "perl", "ruby", "node", "php", "lua",
];

/// The kernel keeps at most this many bytes of a process name (TASK_COMM_LEN - 1).
const COMM_LEN: usize = 15;

/// The rules a judgement follows. [`Default`] is the built-in set;
/// [`extend`](Self::extend) adds a `[verdict]` section to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    pub agents: Vec<Agent>,
    pub mining_ports: BTreeSet<u16>,
    /// More distinct remote hosts than this for one process in one interval is an
    /// outbound flood.
    pub flood_hosts: usize,
    /// Program names that may map huge pages; a trailing `*` matches any suffix.
    pub huge_page_users: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Self {
            agents: BUILT_IN_AGENTS
                .iter()
                .map(|(provider, names, paths)| Agent {
                    provider: (*provider).to_owned(),
                    names: strings(names),
                    paths: paths.iter().map(PathBuf::from).collect(),
                })
                .collect(),
            mining_ports: BUILT_IN_MINING_PORTS.iter().copied().collect(),
            flood_hosts: BUILT_IN_FLOOD_HOSTS,
            huge_page_users: strings(BUILT_IN_HUGE_PAGE_USERS),
        }
    }
}

/// The `[verdict]` section of a rules file, as written. A configuration file of wider
/// scope can embed it and hand it to [`Rules::extend`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Added to the built-in agents.
    #[serde(default)]
    pub agents: Vec<Agent>,
    /// Added to the built-in mining-pool ports.
    #[serde(default)]
    pub mining_ports: Vec<u16>,
    /// Replaces the built-in flood limit.
    pub flood_hosts: Option<usize>,
    /// Added to the built-in huge-page users.
    #[serde(default)]
    pub huge_page_users: Vec<String>,
}

/// A whole rules file: only the `[verdict]` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    verdict: RulesConfig,
}

/// A rules file that cannot be used. One line: where, what, and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read verdict rules {}: {error}; check the path", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid verdict rules ({at}): {message}")]
    Invalid { at: String, message: String },
}

impl Rules {
    /// The built-in rules extended by the `[verdict]` section of a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        Self::parse(text, None)
    }

    /// The built-in rules extended by the `[verdict]` section of the TOML file `path`.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|error| RulesError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text, Some(path))
    }

    /// `origin`: the file the text was read from, named in errors.
    fn parse(text: &str, origin: Option<&Path>) -> Result<Self, RulesError> {
        let at = |place: String| match origin {
            Some(path) => format!("{}, {place}", path.display()),
            None => place,
        };
        let file: RulesFile = toml::from_str(text).map_err(|error| {
            let place = match error.span() {
                Some(span) => {
                    let before = &text.as_bytes()[..span.start.min(text.len())];
                    let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
                    format!("line {line}")
                }
                None => "[verdict]".to_owned(),
            };
            RulesError::Invalid {
                at: at(place),
                message: error.message().trim_end().to_owned(),
            }
        })?;
        let mut rules = Self::default();
        rules
            .extend(file.verdict)
            .map_err(|message| RulesError::Invalid {
                at: at("[verdict]".to_owned()),
                message,
            })?;
        Ok(rules)
    }

    /// Adds `config` to these rules. On an error (a message saying what is wrong) the
    /// rules are unchanged.
    pub fn extend(&mut self, config: RulesConfig) -> Result<(), String> {
        for agent in &config.agents {
            validate_agent(agent)?;
        }
        if config.mining_ports.contains(&0) {
            return Err("mining_ports: 0 is not a port".to_owned());
        }
        if config.flood_hosts == Some(0) {
            return Err("flood_hosts must be at least 1".to_owned());
        }
        if config
            .huge_page_users
            .iter()
            .any(|user| user.trim_end_matches('*').is_empty())
        {
            return Err("huge_page_users: an entry is empty (or only `*`)".to_owned());
        }
        self.agents.extend(config.agents);
        self.mining_ports.extend(config.mining_ports);
        if let Some(limit) = config.flood_hosts {
            self.flood_hosts = limit;
        }
        self.huge_page_users.extend(config.huge_page_users);
        Ok(())
    }

    /// Judges one flow: `process` is its local owner (`None` when there is none, e.g.
    /// forwarded traffic). Pure: no I/O.
    pub fn judge(
        &self,
        flow: &FlowId,
        process: Option<&ProcessInfo>,
        context: &FlowContext<'_>,
    ) -> Judgement {
        // Room for the usual few reasons without growing (this runs for every flow).
        let mut reasons = Vec::with_capacity(4);
        match process {
            Some(process) => self.process_signs(process, context, &mut reasons),
            None => reasons.push(Reason::NoLocalProcess),
        }
        self.mining_signs(flow, process.is_some(), context, &mut reasons);
        if let Some(process) = process {
            if self.floods(context.remote_hosts_of_process) {
                reasons.push(Reason::OutboundFlood {
                    remote_hosts: context.remote_hosts_of_process,
                    limit: self.flood_hosts,
                });
            }
            if let Some(reason) = self.agent(process) {
                reasons.push(reason);
            }
        }
        let verdict = reasons
            .iter()
            .filter_map(Reason::supports)
            .max()
            .unwrap_or(Verdict::Business);
        let foreign = context.home.is_foreign(&context.location);
        if foreign && let Some(country) = context.location.country() {
            reasons.push(Reason::Foreign {
                country,
                home: context.home.clone(),
                raises_risk: verdict == Verdict::Suspicious,
            });
        }
        Judgement {
            verdict,
            reasons,
            foreign,
        }
    }

    /// Mining-pool ports: sending to one (a local process, or with none the host), or a
    /// local process listening on one. Never a random inbound source port: with no local
    /// process and nothing sent, the flow came in from that port, which proves nothing.
    fn mining_signs(
        &self,
        flow: &FlowId,
        owned: bool,
        context: &FlowContext<'_>,
        reasons: &mut Vec<Reason>,
    ) {
        if flow.proto.0 != PROTO_TCP && flow.proto.0 != PROTO_UDP {
            return;
        }
        if (owned || context.outbound) && self.mining_ports.contains(&flow.remote_port) {
            reasons.push(Reason::MiningPort {
                port: flow.remote_port,
            });
        }
        if owned && self.mining_ports.contains(&flow.local_port) {
            reasons.push(Reason::MiningPortListener {
                port: flow.local_port,
            });
        }
    }

    /// Whether `remote_hosts` distinct remote hosts in one interval is a flood: the only
    /// part of a judgement that depends on the interval besides the flow's own facts.
    pub fn floods(&self, remote_hosts: usize) -> bool {
        remote_hosts > self.flood_hosts
    }

    /// The signs of compromise that the process itself shows.
    fn process_signs(
        &self,
        process: &ProcessInfo,
        context: &FlowContext<'_>,
        reasons: &mut Vec<Reason>,
    ) {
        if process.exe_deleted
            && let Some(exe) = &process.exe
        {
            reasons.push(Reason::ExeDeleted { exe: exe.clone() });
        }
        if let Some(dir) = process.exe.as_deref().and_then(temp_dir) {
            reasons.push(Reason::ExeInTempDir { dir: dir.into() });
        } else if let Some(script) = script_of(process)
            && let Some(dir) = temp_dir(Path::new(script))
        {
            reasons.push(Reason::ScriptInTempDir {
                dir: dir.into(),
                script: script.to_owned(),
            });
        }
        if let Some(name) = kernel_thread_copy(process) {
            reasons.push(Reason::KernelThreadName {
                name: name.to_owned(),
            });
        }
        if let Some(entry) = context.persistence.launched(process) {
            reasons.push(Reason::Persistence {
                point: entry.point.clone(),
                command: entry.command.clone(),
            });
        }
        if let Some(kb) = context.hugetlb_kb.filter(|&kb| kb > 0)
            && !self.is_huge_page_user(process)
        {
            reasons.push(Reason::HugePages { kb });
        }
    }

    /// The known agent `process` is, if any.
    fn agent(&self, process: &ProcessInfo) -> Option<Reason> {
        let files: Vec<&Path> = process
            .exe
            .as_deref()
            .into_iter()
            .chain(script_of(process).map(Path::new))
            .collect();
        self.agents.iter().find_map(|agent| {
            let found = |program: &str| Reason::CloudAgent {
                program: program.to_owned(),
                provider: agent.provider.clone(),
            };
            for file in &files {
                let name = file_name(file);
                let under = agent.paths.iter().any(|dir| file.starts_with(dir));
                let named = agent.names.iter().any(|n| name_is(name, n));
                if under || named {
                    return Some(found(name));
                }
            }
            let comm = process.comm.as_str();
            agent
                .names
                .iter()
                .any(|n| comm_is(comm, n) || name_is(comm, n))
                .then(|| found(comm))
        })
    }

    fn is_huge_page_user(&self, process: &ProcessInfo) -> bool {
        let exe = process.exe.as_deref().map(file_name);
        self.huge_page_users.iter().any(|pattern| {
            let on_comm = match pattern.strip_suffix('*') {
                Some(prefix) => {
                    process.comm.starts_with(prefix)
                        || (process.comm.len() == COMM_LEN && prefix.starts_with(&process.comm))
                }
                None => comm_is(&process.comm, pattern),
            };
            let on_exe = exe.is_some_and(|exe| match pattern.strip_suffix('*') {
                Some(prefix) => exe.starts_with(prefix),
                None => exe == pattern,
            });
            on_comm || on_exe
        })
    }
}

fn validate_agent(agent: &Agent) -> Result<(), String> {
    let provider = &agent.provider;
    if provider.trim().is_empty() {
        return Err("agents: an agent has an empty provider".to_owned());
    }
    if agent.names.is_empty() && agent.paths.is_empty() {
        return Err(format!(
            "agents: {provider:?} has neither names nor paths; give at least one"
        ));
    }
    if agent.names.iter().any(|name| name.trim().is_empty()) {
        return Err(format!("agents: {provider:?} has an empty name"));
    }
    if let Some(path) = agent.paths.iter().find(|path| !path.is_absolute()) {
        return Err(format!(
            "agents: {provider:?} path {:?} is not absolute (e.g. \"/opt/agent/\")",
            path.display().to_string()
        ));
    }
    Ok(())
}

/// `HugetlbPages` of `PROC_ROOT/PID/status` in kB: hugetlbfs and MAP_HUGETLB pages the
/// process maps. `None` if the process is gone or the kernel does not say. Cache the
/// answer per process: it reads a file.
pub fn hugetlb_kb(proc_root: &Path, pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("HugetlbPages:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse().ok())
}

/// The temporary directory (`/tmp`, `/var/tmp`, `/dev/shm`) `path` lies under, if any.
pub fn temp_dir(path: &Path) -> Option<&'static str> {
    TEMP_DIRS.iter().copied().find(|dir| path.starts_with(dir))
}

/// For an interpreter (by executable or process name), the script it runs: the first
/// argument after the program that is not an option.
fn script_of(process: &ProcessInfo) -> Option<&str> {
    let exe = process.exe.as_deref().map(file_name);
    let interpreted = exe.is_some_and(is_interpreter) || is_interpreter(&process.comm);
    if !interpreted {
        return None;
    }
    process
        .cmdline
        .split_whitespace()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
}

/// "python3", "python3.11", "perl5.36" and "bash" are interpreters; "shred" is not.
pub fn is_interpreter(name: &str) -> bool {
    INTERPRETERS.iter().any(|base| {
        name.strip_prefix(base)
            .is_some_and(|version| version.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// The name of a user-space process that copies a kernel thread's: its comm, or its
/// `argv[0]` (which a process may rewrite). Kernel threads themselves have neither an
/// executable nor a command line.
fn kernel_thread_copy(process: &ProcessInfo) -> Option<&str> {
    if process.exe.is_none() && process.cmdline.is_empty() {
        return None;
    }
    let argv0 = process.cmdline.split_whitespace().next();
    std::iter::once(process.comm.as_str())
        .chain(argv0)
        .find(|name| copies_kernel_thread(name))
}

fn copies_kernel_thread(name: &str) -> bool {
    let name = name.trim();
    let bracketed = name.len() > 2 && name.starts_with('[') && name.ends_with(']');
    bracketed
        || KERNEL_THREAD_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// `name` is the program `known`, or a versioned file of it ("WALinuxAgent-2.9.egg").
fn name_is(name: &str, known: &str) -> bool {
    name.strip_prefix(known)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.']))
}

/// `comm` is `name` as the kernel keeps it: cut to 15 bytes.
fn comm_is(comm: &str, name: &str) -> bool {
    comm == name || (comm.len() == COMM_LEN && name.starts_with(comm))
}

/// The last component of `path` as text ("" if it has none or it is not UTF-8).
fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, sync::Arc};

    use super::*;
    use crate::datapath::Protocol;

    fn flow(proto: u8, remote: &str) -> FlowId {
        let remote: SocketAddr = remote.parse().unwrap();
        FlowId {
            iface: Arc::from("eth0"),
            proto: Protocol(proto),
            local_ip: "192.0.2.1".parse().unwrap(),
            local_port: 40000,
            remote_ip: remote.ip(),
            remote_port: remote.port(),
        }
    }

    /// An HTTPS flow to a public address.
    fn https() -> FlowId {
        flow(PROTO_TCP, "203.0.113.7:443")
    }

    fn process(comm: &str, exe: &str, cmdline: &str) -> ProcessInfo {
        ProcessInfo {
            pid: 4242,
            comm: comm.to_owned(),
            exe: Some(PathBuf::from(exe)),
            exe_deleted: false,
            cgroup: Default::default(),
            uid: 33,
            user: "www-data".to_owned(),
            cmdline: cmdline.to_owned(),
        }
    }

    fn nginx() -> ProcessInfo {
        process("nginx", "/usr/sbin/nginx", "nginx: worker process")
    }

    fn no_home() -> HomeCountries {
        HomeCountries::default()
    }

    fn judge(flow: &FlowId, process: Option<&ProcessInfo>) -> Judgement {
        let home = no_home();
        Rules::default().judge(flow, process, &FlowContext::new(Location::Unknown, &home))
    }

    fn judge_with(process: &ProcessInfo, context: &FlowContext<'_>) -> Judgement {
        Rules::default().judge(&https(), Some(process), context)
    }

    #[test]
    fn ordinary_service_traffic_is_business_with_no_remark() {
        let judgement = judge(&https(), Some(&nginx()));
        assert_eq!(
            judgement,
            Judgement {
                verdict: Verdict::Business,
                reasons: vec![],
                foreign: false
            }
        );
    }

    #[test]
    fn verdicts_have_labels_marks_and_advice() {
        let all = [Verdict::Business, Verdict::CloudAgent, Verdict::Suspicious];
        let labels: Vec<_> = all.iter().map(|v| v.label()).collect();
        assert_eq!(labels, ["business", "cloud-agent", "suspicious"]);
        let marks: String = all.iter().map(|v| v.mark()).collect();
        assert_eq!(marks, " C!");
        assert_eq!(format!("{:<12}|", Verdict::CloudAgent), "cloud-agent |");
        assert!(Verdict::Business.advice().contains("capacity"));
        assert!(Verdict::CloudAgent.advice().contains("ticket"));
        let suspicious = Verdict::Suspicious.advice();
        for step in ["kill", "back up", "reinstall", "flowmeter audit"] {
            assert!(suspicious.contains(step), "{step}: {suspicious}");
        }
    }

    #[test]
    fn a_deleted_executable_is_suspicious() {
        let mut miner = process("xmrig", "/opt/x/xmrig", "./xmrig");
        miner.exe_deleted = true;
        let judgement = judge(&https(), Some(&miner));
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert_eq!(
            judgement.reasons,
            [Reason::ExeDeleted {
                exe: "/opt/x/xmrig".into()
            }]
        );
        assert_eq!(
            judgement.reasons[0].to_string(),
            "executable deleted: /opt/x/xmrig (deleted)"
        );
    }

    #[test]
    fn executables_in_temporary_directories_are_suspicious() {
        for (exe, dir) in [
            ("/tmp/.x/xmrig", "/tmp"),
            ("/var/tmp/update", "/var/tmp"),
            ("/dev/shm/sshd", "/dev/shm"),
        ] {
            let judgement = judge(&https(), Some(&process("x", exe, exe)));
            assert_eq!(judgement.verdict, Verdict::Suspicious, "{exe}");
            assert_eq!(
                judgement.reasons,
                [Reason::ExeInTempDir { dir: dir.into() }],
                "{exe}"
            );
        }
        let shm = judge(&https(), Some(&process("x", "/dev/shm/x", "x")));
        assert_eq!(shm.reasons[0].to_string(), "executable under /dev/shm");
        // Only whole directory names count.
        let tmpfoo = judge(&https(), Some(&process("x", "/tmpfoo/x", "x")));
        assert_eq!(tmpfoo.verdict, Verdict::Business);
    }

    #[test]
    fn scripts_run_from_temporary_directories_are_suspicious() {
        let script = process(
            "python3",
            "/usr/bin/python3.11",
            "python3 -u /var/tmp/.cache/run.py --pool x",
        );
        let judgement = judge(&https(), Some(&script));
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert_eq!(
            judgement.reasons[0].to_string(),
            "script under /var/tmp: /var/tmp/.cache/run.py"
        );
        // A program that is not an interpreter just has arguments.
        let curl = process("curl", "/usr/bin/curl", "curl -o /tmp/page.html https://x/");
        assert_eq!(judge(&https(), Some(&curl)).verdict, Verdict::Business);
    }

    #[test]
    fn user_space_names_copying_kernel_threads_are_suspicious() {
        for (comm, cmdline) in [
            ("kworker/0:2", "kworker/0:2"),
            ("ksoftirqd/3", "x"),
            ("kthreadd", "kthreadd"),
            ("migration/1", "x"),
            ("rcu_sched", "x"),
            ("kswapd0", "kswapd0"),
            ("kdevtmpfsi", "/tmp2/kdevtmpfsi"),
            ("watchdog/0", "x"),
            ("[kblockd]", "x"),
            // argv[0] rewritten, comm left alone.
            ("a.out", "[kworker/u8:1] "),
        ] {
            let fake = process(comm, "/usr/local/bin/a.out", cmdline);
            let judgement = judge(&https(), Some(&fake));
            assert_eq!(judgement.verdict, Verdict::Suspicious, "{comm} {cmdline}");
            assert!(
                matches!(&judgement.reasons[..], [Reason::KernelThreadName { .. }]),
                "{comm}: {:?}",
                judgement.reasons
            );
        }
        let fake = process("kworker/0:2", "/usr/local/bin/a.out", "");
        assert_eq!(
            judge(&https(), Some(&fake)).reasons[0].to_string(),
            "name copies a kernel thread: kworker/0:2"
        );
        // Real kernel threads (no executable, no command line) and user-space daemons
        // with similar names are not.
        let mut kernel = process("kworker/0:2", "/", "");
        kernel.exe = None;
        assert_eq!(judge(&https(), Some(&kernel)).verdict, Verdict::Business);
        for (comm, exe) in [
            ("watchdog", "/usr/sbin/watchdog"),
            ("ksmtuned", "/usr/sbin/ksmtuned"),
            ("auditd", "/sbin/auditd"),
        ] {
            let daemon = process(comm, exe, exe);
            assert_eq!(judge(&https(), Some(&daemon)).verdict, Verdict::Business);
        }
        // A title with brackets inside is not a bracketed name.
        let celery = process("celery", "/usr/bin/python3", "[celeryd: w@h:MainProcess]");
        assert_eq!(judge(&https(), Some(&celery)).verdict, Verdict::Business);
    }

    #[test]
    fn mining_pool_ports_are_suspicious_and_common_ports_are_not() {
        let judgement = judge(&flow(PROTO_TCP, "198.51.100.9:3333"), Some(&nginx()));
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert_eq!(judgement.reasons, [Reason::MiningPort { port: 3333 }]);
        assert_eq!(
            judgement.reasons[0].to_string(),
            "remote port 3333 is a common mining-pool port"
        );
        for port in [4444, 5555, 7777, 14433, 14444, 45560, 45700] {
            let udp = flow(PROTO_UDP, &format!("198.51.100.9:{port}"));
            assert_eq!(judge(&udp, Some(&nginx())).verdict, Verdict::Suspicious);
        }
        for port in [80, 443, 8080, 8888, 9999, 22] {
            let common = flow(PROTO_TCP, &format!("198.51.100.9:{port}"));
            assert_eq!(judge(&common, Some(&nginx())).verdict, Verdict::Business);
        }
        // Nor does a protocol without ports.
        let icmp = flow(1, "198.51.100.9:3333");
        assert_eq!(judge(&icmp, Some(&nginx())).verdict, Verdict::Business);
    }

    #[test]
    fn talking_to_too_many_hosts_is_an_outbound_flood() {
        let home = no_home();
        let mut context = FlowContext::new(Location::Unknown, &home);
        context.remote_hosts_of_process = 200;
        assert_eq!(judge_with(&nginx(), &context).verdict, Verdict::Business);
        context.remote_hosts_of_process = 412;
        let judgement = judge_with(&nginx(), &context);
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert_eq!(
            judgement.reasons[0].to_string(),
            "talks to 412 remote hosts in one interval (outbound flood, limit 200)"
        );
    }

    #[test]
    fn known_cloud_agents_are_recognised_by_path_name_or_script() {
        for (comm, exe, cmdline, program, provider) in [
            (
                "YDService",
                "/usr/local/qcloud/YunJing/YDEyes/YDService",
                "/usr/local/qcloud/YunJing/YDEyes/YDService",
                "YDService",
                "Tencent Cloud",
            ),
            (
                "sgagent",
                "/usr/local/qcloud/stargate/bin/sgagent",
                "sgagent -d",
                "sgagent",
                "Tencent Cloud",
            ),
            (
                "barad_agent",
                "/usr/local/bin/barad_agent",
                "barad_agent",
                "barad_agent",
                "Tencent Cloud",
            ),
            (
                "AliYunDun",
                "/opt/AliYunDun",
                "/opt/AliYunDun",
                "AliYunDun",
                "Alibaba Cloud",
            ),
            (
                "aliyun-service",
                "/usr/sbin/aliyun-service",
                "/usr/sbin/aliyun-service",
                "aliyun-service",
                "Alibaba Cloud",
            ),
            // The kernel cuts comm to 15 bytes; the executable is unreadable here.
            ("amazon-ssm-agen", "", "", "amazon-ssm-agen", "AWS"),
            (
                "ssm-agent-worke",
                "/usr/bin/ssm-agent-worker",
                "/usr/bin/ssm-agent-worker",
                "ssm-agent-worker",
                "AWS",
            ),
            (
                "google_guest_ag",
                "/usr/bin/google_guest_agent",
                "/usr/bin/google_guest_agent",
                "google_guest_agent",
                "Google Cloud",
            ),
            (
                "google_osconfig",
                "/usr/bin/google_osconfig_agent",
                "/usr/bin/google_osconfig_agent",
                "google_osconfig_agent",
                "Google Cloud",
            ),
            // Azure's agent is a python script.
            (
                "python3",
                "/usr/bin/python3.10",
                "/usr/bin/python3 -u /usr/sbin/waagent -daemon",
                "waagent",
                "Azure",
            ),
            (
                "python3",
                "/usr/bin/python3.10",
                "python3 -u bin/WALinuxAgent-2.9.1.1-py3.8.egg -run-exthandlers",
                "WALinuxAgent-2.9.1.1-py3.8.egg",
                "Azure",
            ),
        ] {
            let mut agent = process(comm, exe, cmdline);
            if exe.is_empty() {
                agent.exe = None;
            }
            let judgement = judge(&https(), Some(&agent));
            assert_eq!(judgement.verdict, Verdict::CloudAgent, "{comm} {exe}");
            assert_eq!(
                judgement.reasons,
                [Reason::CloudAgent {
                    program: program.into(),
                    provider: provider.into()
                }],
                "{comm} {exe}"
            );
        }
        let yd = process("YDService", "/usr/local/qcloud/YDService", "YDService");
        assert_eq!(
            judge(&https(), Some(&yd)).reasons[0].to_string(),
            "known cloud agent: YDService (Tencent Cloud)"
        );
        // A python program that merely mentions an agent later on is not one.
        let other = process("python3", "/usr/bin/python3", "python3 app.py waagent");
        assert_eq!(judge(&https(), Some(&other)).verdict, Verdict::Business);
    }

    #[test]
    fn suspicious_signs_win_over_a_cloud_agent_and_list_it_too() {
        let mut agent = process(
            "YDService",
            "/usr/local/qcloud/YunJing/YDEyes/YDService",
            "YDService",
        );
        agent.exe_deleted = true;
        let judgement = judge(&https(), Some(&agent));
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert!(matches!(
            &judgement.reasons[..],
            [Reason::ExeDeleted { .. }, Reason::CloudAgent { .. }]
        ));
        // An "agent" run from /tmp, or talking to a mining pool, is suspicious too.
        let fake = process("YDService", "/tmp/YDService", "/tmp/YDService");
        assert_eq!(judge(&https(), Some(&fake)).verdict, Verdict::Suspicious);
        let mining = flow(PROTO_TCP, "198.51.100.9:14444");
        let real = process("tat_agent", "/usr/local/qcloud/tat_agent/tat_agent", "");
        assert_eq!(judge(&mining, Some(&real)).verdict, Verdict::Suspicious);
        assert_eq!(judge(&https(), Some(&real)).verdict, Verdict::CloudAgent);
    }

    #[test]
    fn without_a_process_the_flow_alone_decides() {
        let judgement = judge(&https(), None);
        assert_eq!(judgement.verdict, Verdict::Business);
        assert_eq!(judgement.reasons, [Reason::NoLocalProcess]);
        assert!(
            judgement.reasons[0]
                .to_string()
                .starts_with("no local process")
        );

        let home = no_home();
        let mut context = FlowContext::new(Location::Unknown, &home);
        // Process signs need a process.
        context.remote_hosts_of_process = 10_000;
        context.hugetlb_kb = Some(2048);
        // Sent to a pool port (forwarded, or from a socket since closed).
        context.outbound = true;
        let mining = flow(PROTO_UDP, "198.51.100.9:3333");
        let judgement = Rules::default().judge(&mining, None, &context);
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert_eq!(
            judgement.reasons,
            [Reason::NoLocalProcess, Reason::MiningPort { port: 3333 }]
        );
    }

    #[test]
    fn inbound_traffic_from_a_pool_port_with_no_local_process_proves_nothing() {
        // A spoofed flood: random source ports, some on the pool list, nothing sent back.
        let home = no_home();
        let context = FlowContext::new(Location::Unknown, &home);
        let rules = Rules::default();
        for port in [3333, 4444, 14444] {
            let spoofed = flow(PROTO_UDP, &format!("198.51.100.9:{port}"));
            let judgement = rules.judge(&spoofed, None, &context);
            assert_eq!(judgement.verdict, Verdict::Business, "{port}");
            assert_eq!(judgement.reasons, [Reason::NoLocalProcess], "{port}");
        }
        // Nor is the local port, with no local process to listen on it.
        let mut to_3333 = flow(PROTO_UDP, "198.51.100.9:50000");
        to_3333.local_port = 3333;
        assert_eq!(
            rules.judge(&to_3333, None, &context).verdict,
            Verdict::Business
        );
    }

    #[test]
    fn a_local_listener_on_a_pool_port_is_suspicious() {
        // A miner's proxy (or a pool) serving on 3333: a client from an ordinary port.
        let mut inbound = flow(PROTO_TCP, "198.51.100.9:50000");
        inbound.local_port = 3333;
        let proxy = process("xmrig-proxy", "/usr/local/bin/xmrig-proxy", "xmrig-proxy");
        let judgement = judge(&inbound, Some(&proxy));
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert_eq!(
            judgement.reasons,
            [Reason::MiningPortListener { port: 3333 }]
        );
        assert_eq!(
            judgement.reasons[0].to_string(),
            "listens on local port 3333, a common mining-pool port"
        );
        // An ordinary local port is nothing.
        inbound.local_port = 8443;
        assert_eq!(judge(&inbound, Some(&proxy)).verdict, Verdict::Business);
        // Without ports (ICMP) neither side counts.
        let mut icmp = flow(1, "198.51.100.9:0");
        icmp.local_port = 3333;
        assert_eq!(judge(&icmp, Some(&proxy)).verdict, Verdict::Business);
    }

    #[test]
    fn processes_launched_from_persistence_points_are_suspicious() {
        let mut persistence = Persistence::new();
        persistence.add(
            "/var/spool/cron/crontabs/root",
            "*/5 * * * * /usr/local/bin/.update >/dev/null 2>&1",
        );
        persistence.add("/etc/rc.local", "nohup python3 /opt/.x/run.py &");
        let home = no_home();
        let mut context = FlowContext::new(Location::Unknown, &home);
        context.persistence = &persistence;

        let cron = process("update", "/usr/local/bin/.update", ".update");
        let judgement = judge_with(&cron, &context);
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert_eq!(
            judgement.reasons,
            [Reason::Persistence {
                point: "/var/spool/cron/crontabs/root".into(),
                command: "*/5 * * * * /usr/local/bin/.update >/dev/null 2>&1".into(),
            }]
        );
        let script = process("python3", "/usr/bin/python3.11", "python3 /opt/.x/run.py");
        let judgement = judge_with(&script, &context);
        assert_eq!(
            judgement.reasons[0].to_string(),
            "launched from a persistence point: /etc/rc.local"
        );
        // Other processes, including other python scripts, are not.
        let other = process("python3", "/usr/bin/python3.11", "python3 /srv/app.py");
        assert_eq!(judge_with(&other, &context).verdict, Verdict::Business);
        assert_eq!(judge_with(&nginx(), &context).verdict, Verdict::Business);
    }

    #[test]
    fn huge_pages_are_suspicious_unless_the_program_is_a_known_user() {
        let home = no_home();
        let mut context = FlowContext::new(Location::Unknown, &home);
        context.hugetlb_kb = Some(2048);
        let judgement = judge_with(&nginx(), &context);
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert_eq!(
            judgement.reasons[0].to_string(),
            "maps huge pages (HugetlbPages 2048 kB) and is not a known huge-page user"
        );
        for (comm, exe) in [
            ("postgres", "/usr/lib/postgresql/16/bin/postgres"),
            ("ora_pmon_orcl", "/u01/app/oracle/product/19c/bin/oracle"),
            ("java", "/usr/lib/jvm/java-17/bin/java"),
            ("qemu-system-x86", "/usr/bin/qemu-system-x86_64"),
            ("dpdk-testpmd", "/usr/bin/dpdk-testpmd"),
            ("mariadbd", "/usr/sbin/mariadbd"),
        ] {
            let user = process(comm, exe, exe);
            assert_eq!(
                judge_with(&user, &context).verdict,
                Verdict::Business,
                "{comm}"
            );
        }
        // No huge pages, or unknown: nothing to say.
        for kb in [Some(0), None] {
            context.hugetlb_kb = kb;
            assert_eq!(judge_with(&nginx(), &context).verdict, Verdict::Business);
        }
    }

    #[test]
    fn hugetlb_pages_are_read_from_proc_status() {
        let proc_root = tempfile::tempdir().unwrap();
        let write = |pid: u32, status: &str| {
            let dir = proc_root.path().join(pid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("status"), status).unwrap();
        };
        write(
            10,
            "Name:\txmrig\nVmRSS:\t  9000 kB\nHugetlbPages:\t    4096 kB\nThreads:\t4\n",
        );
        write(11, "Name:\tnginx\nHugetlbPages:\t       0 kB\n");
        write(12, "Name:\told kernel\n");
        assert_eq!(hugetlb_kb(proc_root.path(), 10), Some(4096));
        assert_eq!(hugetlb_kb(proc_root.path(), 11), Some(0));
        assert_eq!(hugetlb_kb(proc_root.path(), 12), None);
        assert_eq!(hugetlb_kb(proc_root.path(), 13), None);
        // This process, for real.
        let me = hugetlb_kb(Path::new("/proc"), std::process::id());
        assert_eq!(me, Some(0));
    }

    #[test]
    fn foreign_is_a_risk_mark_never_a_verdict() {
        let home: HomeCountries = "DE".parse().unwrap();
        let cn = Location::Country(CountryCode::new("CN").unwrap());
        let context = FlowContext::new(cn, &home);
        let judgement = judge_with(&nginx(), &context);
        assert_eq!(judgement.verdict, Verdict::Business);
        assert!(judgement.foreign);
        assert!(!judgement.raised_risk());
        assert_eq!(
            judgement
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["remote in CN, outside home countries DE"]
        );

        // A suspicious flow abroad says the risk is greater.
        let miner = process("xmrig", "/tmp/xmrig", "/tmp/xmrig");
        let judgement = judge_with(&miner, &context);
        assert_eq!(judgement.verdict, Verdict::Suspicious);
        assert!(judgement.raised_risk());
        assert_eq!(
            judgement.reasons.last().unwrap().to_string(),
            "remote in CN, outside home countries DE: greater risk with the signs above"
        );

        // Home, local, unknown, or no home declared: not foreign.
        let de = Location::Country(CountryCode::new("DE").unwrap());
        for location in [de, Location::Local, Location::Unknown] {
            let judgement = judge_with(&nginx(), &FlowContext::new(location, &home));
            assert!(!judgement.foreign, "{location}");
            assert!(judgement.reasons.is_empty(), "{location}");
        }
        let nowhere = no_home();
        assert!(!judge_with(&nginx(), &FlowContext::new(cn, &nowhere)).foreign);
    }

    #[test]
    fn a_rules_file_adds_agents_ports_and_huge_page_users() {
        let rules = Rules::from_toml(
            r#"
            [verdict]
            flood_hosts = 50
            mining_ports = [3334]
            huge_page_users = ["redis-server", "vpp-*"]

            [[verdict.agents]]
            provider = "Hetzner Cloud"
            names = ["hcloud-agent"]
            paths = ["/opt/hcloud/"]
            "#,
        )
        .unwrap();
        let home = no_home();
        let context = FlowContext::new(Location::Unknown, &home);

        let agent = process("hcloud-agent", "/usr/bin/hcloud-agent", "hcloud-agent");
        let judgement = rules.judge(&https(), Some(&agent), &context);
        assert_eq!(judgement.verdict, Verdict::CloudAgent);
        assert_eq!(
            judgement.reasons[0].to_string(),
            "known cloud agent: hcloud-agent (Hetzner Cloud)"
        );
        let by_path = process("helper", "/opt/hcloud/bin/helper", "helper");
        assert_eq!(
            rules.judge(&https(), Some(&by_path), &context).verdict,
            Verdict::CloudAgent
        );
        // Built-in rules stay.
        let yd = process("YDService", "/usr/local/qcloud/YDService", "YDService");
        assert_eq!(
            rules.judge(&https(), Some(&yd), &context).verdict,
            Verdict::CloudAgent
        );
        assert!(rules.mining_ports.contains(&3334) && rules.mining_ports.contains(&3333));
        let pool = flow(PROTO_TCP, "198.51.100.9:3334");
        assert_eq!(
            rules.judge(&pool, Some(&nginx()), &context).verdict,
            Verdict::Suspicious
        );
        assert_eq!(rules.flood_hosts, 50);
        let mut busy = context;
        busy.remote_hosts_of_process = 51;
        assert_eq!(
            rules.judge(&https(), Some(&nginx()), &busy).verdict,
            Verdict::Suspicious
        );
        let mut huge = context;
        huge.hugetlb_kb = Some(1 << 20);
        let vpp = process("vpp-main", "/usr/bin/vpp-main", "vpp-main");
        assert_eq!(
            rules.judge(&https(), Some(&vpp), &huge).verdict,
            Verdict::Business
        );

        // An empty file, or one without [verdict], is the built-in set.
        assert_eq!(Rules::from_toml("").unwrap(), Rules::default());
    }

    #[test]
    fn unknown_keys_in_a_rules_file_are_errors_that_say_where() {
        let error = Rules::from_toml("[verdict]\nmining_ports = [3334]\nminig_ports = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("invalid verdict rules (line 3): "),
            "{error}"
        );
        assert!(error.contains("unknown field `minig_ports`"), "{error}");
        assert!(
            error.contains("`mining_ports`"),
            "{error}: lists what is expected"
        );
        assert!(!error.contains('\n'), "one line: {error}");

        let error =
            Rules::from_toml("[verdict]\n[[verdict.agents]]\nprovider = \"X\"\nname = [\"x\"]\n")
                .unwrap_err()
                .to_string();
        assert!(error.contains("unknown field `name`"), "{error}");

        let error = Rules::from_toml("[verdcit]\nflood_hosts = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `verdcit`"), "{error}");

        for (bad, says) in [
            ("[verdict]\nmining_ports = [70000]\n", "70000"),
            (
                "[verdict]\nflood_hosts = 0\n",
                "flood_hosts must be at least 1",
            ),
            (
                "[[verdict.agents]]\nprovider = \"X\"\npaths = [\"opt/x\"]\n",
                "is not absolute",
            ),
            (
                "[[verdict.agents]]\nprovider = \"X\"\n",
                "neither names nor paths",
            ),
            ("[[verdict.agents]]\nnames = [\"x\"]\n", "provider"),
            ("[verdict\n", "line 1"),
        ] {
            let error = Rules::from_toml(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_rules_file_is_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "[verdict]\nmining_ports = [1234]\n").unwrap();
        assert!(Rules::load(&path).unwrap().mining_ports.contains(&1234));
        std::fs::write(&path, "[verdict]\ncolour = true\n").unwrap();
        let error = Rules::load(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "invalid verdict rules ({}, line 2)",
                path.display()
            )),
            "{error}"
        );
        let missing = dir.path().join("missing.toml");
        let error = Rules::load(&missing).unwrap_err().to_string();
        assert!(error.contains("cannot read verdict rules"), "{error}");
    }
}
