//! Frames kept as files in `tests/fixtures/frames/`: each one the fuzzer found the
//! kernel and the oracle disagreeing on (written by `fuzz_parser.rs`), or one picked by
//! hand, run again by the crafted-frame table (`datapath_test_run.rs`) on every program.
//!
//! A file `NAME.hex` holds `#` comment lines (how the frame was made, what was seen),
//! one `# link: ethernet` or `# link: raw-ip` line, and the frame as hex digits,
//! whitespace ignored.

#![allow(dead_code)]

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use flowmeter_common::{LINK_ETHERNET, LINK_RAW_IP};

pub struct KeptFrame {
    pub name: String,
    /// `LINK_ETHERNET` or `LINK_RAW_IP`.
    pub link: u32,
    pub bytes: Vec<u8>,
}

/// `tests/fixtures/frames/` of this source tree.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/frames")
}

fn link_name(link: u32) -> &'static str {
    if link == LINK_RAW_IP {
        "raw-ip"
    } else {
        "ethernet"
    }
}

/// Every kept frame, by name; none when the folder is missing.
pub fn read_all() -> Vec<KeptFrame> {
    let Ok(entries) = fs::read_dir(dir()) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("read tests/fixtures/frames").path())
        .filter(|path| path.extension().is_some_and(|e| e == "hex"))
        .collect();
    paths.sort();
    paths.iter().map(|path| read(path)).collect()
}

fn read(path: &Path) -> KeptFrame {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut link = None;
    let mut hex = String::new();
    for line in text.lines() {
        match line.strip_prefix('#') {
            Some(comment) => match comment.trim().strip_prefix("link:").map(str::trim) {
                Some("ethernet") => link = Some(LINK_ETHERNET),
                Some("raw-ip") => link = Some(LINK_RAW_IP),
                Some(other) => panic!("{}: unknown link {other:?}", path.display()),
                None => {}
            },
            None => hex.extend(line.chars().filter(|c| !c.is_whitespace())),
        }
    }
    let digits: Vec<u8> = hex
        .chars()
        .map(|c| {
            c.to_digit(16)
                .unwrap_or_else(|| panic!("{}: {c:?} is not a hex digit", path.display()))
                as u8
        })
        .collect();
    assert!(
        digits.len().is_multiple_of(2),
        "{}: an odd number of hex digits",
        path.display()
    );
    KeptFrame {
        name: path.file_stem().unwrap().to_string_lossy().into_owned(),
        link: link.unwrap_or_else(|| panic!("{}: no '# link:' line", path.display())),
        bytes: digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect(),
    }
}

/// Writes `bytes` as `NAME.hex` with `comments` above it, and returns its path.
pub fn write(name: &str, link: u32, comments: &[String], bytes: &[u8]) -> PathBuf {
    let mut text = String::new();
    for comment in comments {
        for line in comment.lines() {
            writeln!(text, "# {line}").unwrap();
        }
    }
    writeln!(text, "# link: {}", link_name(link)).unwrap();
    for row in bytes.chunks(16) {
        let row: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(text, "{}", row.join(" ")).unwrap();
    }
    fs::create_dir_all(dir()).expect("create tests/fixtures/frames");
    let path = dir().join(format!("{name}.hex"));
    fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}
