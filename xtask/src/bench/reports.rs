//! What the meters print, read back: flowmeter's `totals` lines, iftop's and nethogs'
//! text output, bandwhich's raw output.

use std::{fs, path::Path};

use anyhow::{Context as _, Result, bail};

use super::json;

/// What a meter reported over its whole run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reported {
    pub packets: Option<f64>,
    pub bytes: Option<f64>,
}

/// The sums of the rx packets and bytes of every `totals` line.
pub fn flowmeter_totals(log: &Path) -> Result<Reported> {
    let text = fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let (mut packets, mut bytes) = (0.0, 0.0);
    for line in text.lines().filter(|l| l.contains("\"totals\"")) {
        let v = json::parse(line).with_context(|| format!("{}: {line}", log.display()))?;
        let field = |k: &str| {
            v.get(k)
                .and_then(json::Value::as_f64)
                .with_context(|| format!("no {k} in {line}"))
        };
        packets += field("rx_packets")?;
        bytes += field("rx_bytes")?;
    }
    Ok(Reported {
        packets: Some(packets),
        bytes: Some(bytes),
    })
}

/// iftop's `Cumulative (sent/received/total):  468B  19.1MB  19.1MB` (units of 1024).
pub fn iftop_received(out: &str) -> Result<Reported> {
    let line = out
        .lines()
        .rfind(|l| l.starts_with("Cumulative"))
        .context("no `Cumulative` line")?;
    let received = line
        .split_whitespace()
        .nth(3)
        .context("no received column")?;
    Ok(Reported {
        packets: None,
        bytes: Some(parse_size(received)?),
    })
}

/// `19.1MB`, `975B`, `4.77KB` in units of 1024 (iftop's -B output).
fn parse_size(text: &str) -> Result<f64> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale = match &text[digits.len()..] {
        "B" | "b" => 1.0,
        "KB" | "Kb" => 1024.0,
        "MB" | "Mb" => 1024.0 * 1024.0,
        "GB" | "Gb" => 1024.0 * 1024.0 * 1024.0,
        "TB" | "Tb" => 1024.0f64.powi(4),
        unit => bail!("unknown unit {unit:?} in {text:?}"),
    };
    let n: f64 = digits
        .parse()
        .with_context(|| format!("not a size: {text:?}"))?;
    Ok(n * scale)
}

/// nethogs' last `Refreshing:` block: `program/pid/uid<TAB>sent<TAB>received` per row.
pub fn nethogs_received(out: &str) -> Result<Reported> {
    let block = out
        .rsplit("Refreshing:")
        .next()
        .context("no `Refreshing:` block")?;
    if !out.contains("Refreshing:") {
        bail!("no `Refreshing:` block");
    }
    let mut bytes = 0.0;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let received = line.rsplit('\t').next().context("no received column")?;
        bytes += received
            .trim()
            .parse::<f64>()
            .with_context(|| format!("in {line:?}"))?;
    }
    Ok(Reported {
        packets: None,
        bytes: Some(bytes),
    })
}

/// bandwhich's last block: `connection: <T> <IF>:9 => 10.98.0.1:4000 (udp) up/down Bps: 0/7402176 process: ...`.
pub fn bandwhich_received(out: &str) -> Result<Reported> {
    let block = out
        .rsplit("Refreshing:")
        .find(|b| b.contains("connection:"))
        .context("no block with connections")?;
    let mut bytes = 0.0;
    for line in block.lines().filter(|l| l.starts_with("connection:")) {
        let (_, rest) = line.split_once("Bps: ").context("no `Bps:`")?;
        let pair = rest.split_whitespace().next().unwrap_or_default();
        let (_, down) = pair
            .split_once('/')
            .with_context(|| format!("no up/down in {line:?}"))?;
        bytes += down
            .parse::<f64>()
            .with_context(|| format!("in {line:?}"))?;
    }
    Ok(Reported {
        packets: None,
        bytes: Some(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_iftop_totals() {
        let out = "Total send rate:   0B  117B  117B\n\
                   Cumulative (sent/received/total):   468B     19.1MB     19.1MB\n";
        let r = iftop_received(out).unwrap();
        assert_eq!(r.bytes, Some(19.1 * 1024.0 * 1024.0));
        assert_eq!(parse_size("4.77KB").unwrap(), 4.77 * 1024.0);
        assert!(parse_size("3XB").is_err());
    }

    #[test]
    fn reads_the_last_nethogs_block() {
        let out = "Refreshing:\nunknown UDP/0/0\t0\t100\n\nRefreshing:\n\
                   unknown UDP/0/0\t0\t2.56e+07\niperf3/12/0\t10\t5\n\n";
        assert_eq!(nethogs_received(out).unwrap().bytes, Some(2.56e7 + 5.0));
        assert!(nethogs_received("Adding local address").is_err());
    }

    #[test]
    fn reads_bandwhich_connections() {
        let out = "Refreshing:\nconnection: <1> <r>:9 => 10.98.0.1:4000 (udp) up/down Bps: 0/100 process: \"x\"\n\
                   Refreshing:\nprocess: <2> \"<UNKNOWN>\" up/down Bps: 0/7402176 connections: 1\n\
                   connection: <2> <r>:9 => 10.98.0.1:4000 (udp) up/down Bps: 0/7402176 process: \"<UNKNOWN>\"\n\
                   connection: <2> <r>:9 => 10.98.0.1:4001 (udp) up/down Bps: 3/24 process: \"<UNKNOWN>\"\n\
                   Refreshing:\n<NO TRAFFIC>\n";
        assert_eq!(bandwhich_received(out).unwrap().bytes, Some(7402200.0));
    }
}
