//! The log file on a tiny tmpfs: a full disk is reported once, metering goes on, the
//! lines that could not be written are counted and the file keeps whole lines only;
//! rotation by size and reopening after a rename lose and duplicate nothing.
//!
//! Needs root (the tests fail without it). Each check runs in a child process — this test
//! binary again, running one ignored `child_*` test — started with
//! `unshare --mount --propagation private`: its tmpfs is mounted in the child's own mount
//! namespace only, and goes away with the child however the child ends.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use flowmeter::sinks::output::{BatchOutcome, Destination, LogOutput, Rotation};

/// The child's directory to mount the tmpfs on, set by the parent.
const DIR_VAR: &str = "FLOWMETER_TEST_TMPFS_DIR";
/// The tmpfs size (`mount -o size=`).
const SIZE_VAR: &str = "FLOWMETER_TEST_TMPFS_SIZE";
/// The parent's mount namespace, which the child must not be in.
const PARENT_NS_VAR: &str = "FLOWMETER_TEST_PARENT_MNT_NS";

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test mounts a tmpfs in a private mount namespace: run it as root"
    );
}

fn mount_namespace() -> PathBuf {
    fs::read_link("/proc/self/ns/mnt").expect("reading /proc/self/ns/mnt")
}

/// Runs the ignored test `child` in a new private mount namespace, with a `size` tmpfs
/// to be mounted on a fresh temporary directory, and checks it passed and left nothing
/// mounted here.
fn run_in_tmpfs(child: &str, size: &str) {
    require_root();
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(env::current_exe().expect("the test binary"))
        .args(["--exact", child, "--ignored", "--nocapture"])
        .env(DIR_VAR, dir.path())
        .env(SIZE_VAR, size)
        .env(PARENT_NS_VAR, mount_namespace())
        .output()
        .expect("running unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{child} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir_text = dir.path().to_str().unwrap();
    assert!(
        !mounts.contains(dir_text),
        "{dir_text} is mounted here:\n{mounts}"
    );
}

/// In the child: mounts the tmpfs and returns its path. Refuses to mount in the parent's
/// mount namespace.
fn mount_tmpfs() -> PathBuf {
    let dir = PathBuf::from(
        env::var_os(DIR_VAR).expect("a child test, run by the test of the same name"),
    );
    let parent_ns = env::var_os(PARENT_NS_VAR).expect("the parent's mount namespace");
    assert_ne!(
        mount_namespace().as_os_str(),
        parent_ns,
        "not in a private mount namespace: refusing to mount"
    );
    let size = env::var(SIZE_VAR).expect("the tmpfs size");
    let status = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "flowmeter-test",
        ])
        .arg(&dir)
        .status()
        .expect("running mount");
    assert!(status.success(), "mount -t tmpfs on {}", dir.display());
    dir
}

/// Batch `n`: a few JSON lines of varying length, each naming its batch and line.
fn batch(n: usize) -> Vec<u8> {
    let lines = 1 + n * 7 % 5;
    (0..lines)
        .map(|line| {
            let pad = "x".repeat(40 + (n * 31 + line * 17) % 400);
            format!(
                "{{\"v\":1,\"type\":\"flow\",\"batch\":{n},\"line\":{line},\"pad\":\"{pad}\"}}\n"
            )
        })
        .collect::<String>()
        .into_bytes()
}

fn line_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&byte| byte == b'\n').count() as u64
}

/// Every line of `text` is a whole JSON object.
fn assert_whole_lines(text: &[u8]) {
    assert!(
        text.is_empty() || text.ends_with(b"\n"),
        "a partial last line"
    );
    for line in text
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        serde_json::from_slice::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
    }
}

fn assert_written(output: &mut LogOutput, lines: &[u8]) {
    let outcome = output.write_batch(lines);
    assert!(matches!(outcome, BatchOutcome::Written), "{outcome:?}");
}

fn file(path: &Path, rotate: Option<Rotation>) -> Destination {
    Destination::File {
        path: path.to_owned(),
        rotate,
    }
}

#[test]
fn a_full_disk_is_reported_once_counted_and_recovered_from() {
    run_in_tmpfs("child_full_disk", "64k");
}

#[test]
#[ignore = "run by a_full_disk_is_reported_once_counted_and_recovered_from"]
fn child_full_disk() {
    let dir = mount_tmpfs();
    // Room to give back later.
    let filler = dir.join("filler");
    fs::write(&filler, vec![0u8; 16 * 1024]).unwrap();
    let path = dir.join("flowmeter.jsonl");
    let mut output = LogOutput::open(&file(&path, None)).unwrap();

    let mut written = Vec::new();
    let mut n = 0;
    let (error, first_lost) = loop {
        let lines = batch(n);
        n += 1;
        match output.write_batch(&lines) {
            BatchOutcome::Written => written.extend_from_slice(&lines),
            BatchOutcome::Failed(error) => break (error, lines),
            other => panic!("batch {n}: {other:?}"),
        }
        assert!(n < 1000, "the disk never filled");
    };
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    let (mut lost_lines, mut lost_bytes) = (line_count(&first_lost), first_lost.len() as u64);

    // Metering goes on: later failures are counted, not reported again.
    for _ in 0..5 {
        let lines = batch(n);
        n += 1;
        let outcome = output.write_batch(&lines);
        assert!(matches!(outcome, BatchOutcome::StillFailing), "{outcome:?}");
        lost_lines += line_count(&lines);
        lost_bytes += lines.len() as u64;
    }
    let on_disk = fs::read(&path).unwrap();
    assert_whole_lines(&on_disk);
    assert!(
        on_disk == written,
        "the file holds exactly the batches written"
    );
    // tmpfs fills page by page: with room left in its last page, the failed batch was
    // partly written before ENOSPC, and has been taken back.
    assert_ne!(
        on_disk.len() % 4096,
        0,
        "the failure did not come mid-batch"
    );
    let outage = output.outage().expect("an outage in progress");
    assert_eq!(
        (outage.lost_lines, outage.lost_bytes),
        (lost_lines, lost_bytes)
    );

    fs::remove_file(&filler).unwrap();
    let lines = batch(n);
    let BatchOutcome::Recovered(gap) = output.write_batch(&lines) else {
        panic!("writing works again");
    };
    written.extend_from_slice(&lines);
    assert_eq!(gap.lost_lines, lost_lines);
    assert_eq!(gap.lost_bytes, lost_bytes);
    assert_eq!(gap.lost_batches, 6);
    assert!(gap.since <= gap.until);
    assert!(output.outage().is_none());
    let on_disk = fs::read(&path).unwrap();
    assert_whole_lines(&on_disk);
    assert!(
        on_disk == written,
        "the file holds exactly the batches written"
    );
}

#[test]
fn rotation_by_size_loses_and_duplicates_nothing() {
    run_in_tmpfs("child_rotation", "1m");
}

#[test]
#[ignore = "run by rotation_by_size_loses_and_duplicates_nothing"]
fn child_rotation() {
    let dir = mount_tmpfs();
    let path = dir.join("flowmeter.jsonl");
    let rotation = Rotation {
        max_bytes: 4096,
        keep: 3,
    };
    let mut output = LogOutput::open(&file(&path, Some(rotation))).unwrap();
    let numbered = |n: usize| dir.join(format!("flowmeter.jsonl.{n}"));
    // All files, oldest first.
    let concatenated = || {
        let mut all = Vec::new();
        for n in (1..=rotation.keep).rev() {
            if let Ok(bytes) = fs::read(numbered(n)) {
                all.extend(bytes);
            }
        }
        all.extend(fs::read(&path).unwrap());
        all
    };

    let batches: Vec<Vec<u8>> = (0..200).map(batch).collect();
    let mut checked_before_any_drop = false;
    for (n, lines) in batches.iter().enumerate() {
        assert_written(&mut output, lines);
        if !checked_before_any_drop && numbered(rotation.keep).exists() {
            // The oldest file has only just been made: nothing dropped yet.
            assert!(concatenated() == batches[..=n].concat(), "after batch {n}");
            checked_before_any_drop = true;
        }
    }
    assert!(
        checked_before_any_drop,
        "too few batches to rotate {} times",
        rotation.keep
    );

    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "flowmeter.jsonl",
            "flowmeter.jsonl.1",
            "flowmeter.jsonl.2",
            "flowmeter.jsonl.3"
        ]
    );
    for name in &names {
        let size = fs::metadata(dir.join(name)).unwrap().len();
        assert!(size <= rotation.max_bytes, "{name}: {size} bytes");
    }
    // What is kept is the latest batches, whole, each once, in order.
    let all = concatenated();
    assert_whole_lines(&all);
    let first_kept = (0..batches.len())
        .find(|&k| batches[k..].concat() == all)
        .expect("the files hold a run of whole batches up to the last");
    assert!(first_kept > 0, "older batches were dropped");
}

#[test]
fn reopen_after_a_rename_loses_nothing() {
    run_in_tmpfs("child_reopen", "1m");
}

#[test]
#[ignore = "run by reopen_after_a_rename_loses_nothing"]
fn child_reopen() {
    let dir = mount_tmpfs();
    let path = dir.join("flowmeter.jsonl");
    let rotated = dir.join("flowmeter.jsonl.1");
    let mut output = LogOutput::open(&file(&path, None)).unwrap();
    let batches: Vec<Vec<u8>> = (0..9).map(batch).collect();
    for lines in &batches[..3] {
        assert_written(&mut output, lines);
    }
    // logrotate renames the file; a batch is written before the SIGHUP is seen.
    fs::rename(&path, &rotated).unwrap();
    assert_written(&mut output, &batches[3]);
    output.reopen().unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 0, "a new, empty file");
    for lines in &batches[4..] {
        assert_written(&mut output, lines);
    }
    assert!(fs::read(&rotated).unwrap() == batches[..4].concat());
    assert!(fs::read(&path).unwrap() == batches[4..].concat());
}
