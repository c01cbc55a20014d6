//! Human quantities, one grammar for every option and every screen: parsing what a
//! user types (bytes, bits per second, seconds, percentages) and formatting what
//! flowmeter prints.
//!
//! The grammar: a whole or decimal number, an optional space, an optional unit.
//! `K`, `M`, `G`, `T` are powers of 1000 (SI) and `Ki`, `Mi`, `Gi`, `Ti` powers of 1024
//! (IEC), in every option alike; case does not matter for bytes. Bytes may end in `B`
//! (`10MB`, `1MiB`); bits per second in `b`, `bps`, `b/s` or `bit/s` (`800M`,
//! `1.5Gbit/s`), where an upper-case `B` is refused rather than read as bits.

use std::time::Duration;

/// What every byte-count option's `--help` says about its suffixes.
pub const BYTES_GRAMMAR: &str = "K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti powers of 1024";

/// A value that cannot be used; each message says what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error(
        "'{0}' is not a byte count; give e.g. 1048576, 500K, 10MB or 1MiB \
         (K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti powers of 1024)"
    )]
    Bytes(String),
    #[error("'{0}': must be more than 0 bytes")]
    ZeroBytes(String),
    #[error(
        "'{0}' is not a rate; give bits per second, e.g. 800M or 1G (k, M, G, T are powers \
         of 1000; bytes are not accepted: 100 MB/s is 800M)"
    )]
    BitsPerSecond(String),
    #[error("'{0}': must be more than 0 bits per second")]
    ZeroBitsPerSecond(String),
    #[error("'{0}' is not a number of seconds")]
    Seconds(String),
    #[error("'{0}': must be at least 0.001 seconds")]
    TooShort(String),
    #[error("'{0}' is not a percentage; give e.g. 90%")]
    Percent(String),
    #[error("'{0}': a percentage must be more than 0% and at most 100%")]
    PercentRange(String),
}

// ---------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------

/// A byte count: `1048576`, `500K` (500,000), `10MB` (10,000,000), `1MiB` (1,048,576),
/// `1.5 GiB`. Zero is allowed.
pub fn parse_bytes(text: &str) -> Result<u64, UnitError> {
    let text = text.trim();
    let (number, suffix) = split_number(text);
    byte_multiplier(suffix)
        .and_then(|multiplier| scale(number, multiplier))
        .ok_or_else(|| UnitError::Bytes(text.to_owned()))
}

/// A byte count of at least one byte (a size limit: zero would mean nothing fits).
pub fn parse_positive_bytes(text: &str) -> Result<u64, UnitError> {
    match parse_bytes(text)? {
        0 => Err(UnitError::ZeroBytes(text.trim().to_owned())),
        bytes => Ok(bytes),
    }
}

/// A rate in bits per second, more than zero: `800000000`, `800M`, `1G`, `1.5Gbit/s`.
pub fn parse_bits_per_second(text: &str) -> Result<u64, UnitError> {
    let text = text.trim();
    let (number, suffix) = split_number(text);
    let bps = bit_multiplier(suffix)
        .and_then(|multiplier| scale(number, multiplier))
        .ok_or_else(|| UnitError::BitsPerSecond(text.to_owned()))?;
    if bps == 0 {
        return Err(UnitError::ZeroBitsPerSecond(text.to_owned()));
    }
    Ok(bps)
}

/// A duration in seconds, decimals allowed, at least a millisecond: `1`, `0.5`, `300`.
pub fn parse_seconds(text: &str) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    let seconds: f64 = trimmed
        .strip_suffix('s')
        .unwrap_or(trimmed)
        .trim_end()
        .parse()
        .map_err(|_| UnitError::Seconds(trimmed.to_owned()))?;
    if !seconds.is_finite() || seconds < 0.001 {
        return Err(UnitError::TooShort(trimmed.to_owned()));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| UnitError::Seconds(trimmed.to_owned()))
}

/// A percentage that ends in `%`, more than 0 and at most 100: `90%`, `92.5%`.
/// `None` when `text` has no `%` (it may be another kind of quantity).
pub fn parse_percent(text: &str) -> Option<Result<f64, UnitError>> {
    let text = text.trim();
    let number = text.strip_suffix('%')?;
    Some(match number.trim().parse::<f64>() {
        Err(_) => Err(UnitError::Percent(text.to_owned())),
        Ok(value) if value > 0.0 && value <= 100.0 => Ok(value),
        Ok(_) => Err(UnitError::PercentRange(text.to_owned())),
    })
}

/// Splits "1.5 GiB" into ("1.5", "GiB").
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

/// `number * multiplier`, exact for whole numbers, rounded for decimals; `None` for
/// what is not a number or does not fit.
fn scale(number: &str, multiplier: u64) -> Option<u64> {
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(multiplier);
    }
    let value: f64 = number.parse().ok()?;
    let scaled = value * multiplier as f64;
    (scaled.is_finite() && scaled >= 0.0 && scaled < u64::MAX as f64).then(|| scaled.round() as u64)
}

fn byte_multiplier(suffix: &str) -> Option<u64> {
    Some(match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => return None,
    })
}

fn bit_multiplier(suffix: &str) -> Option<u64> {
    let (multiplier, rest) = match suffix.chars().next() {
        Some('k' | 'K') => (1_000, &suffix[1..]),
        Some('m' | 'M') => (1_000_000, &suffix[1..]),
        Some('g' | 'G') => (1_000_000_000, &suffix[1..]),
        Some('t' | 'T') => (1_000_000_000_000, &suffix[1..]),
        _ => (1, suffix),
    };
    let (multiplier, unit) = match rest.strip_prefix('i') {
        Some(unit) if multiplier > 1 => (binary_of(multiplier), unit),
        _ => (multiplier, rest),
    };
    // Lower-case `b` only: `B` would be bytes, off by a factor of 8.
    matches!(unit, "" | "b" | "bps" | "b/s" | "bit/s").then_some(multiplier)
}

/// 1000^n → 1024^n.
fn binary_of(decimal: u64) -> u64 {
    match decimal {
        1_000 => 1 << 10,
        1_000_000 => 1 << 20,
        1_000_000_000 => 1 << 30,
        _ => 1 << 40,
    }
}

// ---------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------

/// `512 B`, `1 MiB`, `4.2 MiB`: powers of 1024, one decimal unless whole.
pub fn bytes(bytes: u64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
}

/// `800 Mbit/s`, `1.2 Gbit/s`: powers of 1000, one decimal unless whole.
pub fn bits_per_second(bps: u64) -> String {
    scaled(
        bps,
        1000.0,
        &["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s", "Pbit/s"],
    )
}

/// `512 B`, `1.2 kB`, `3.0 MB`, `5.6 GB`: powers of 1000, always one decimal past 1 kB.
pub fn bytes_decimal(count: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if count < 1000 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn scaled(value: u64, base: f64, units: &[&str]) -> String {
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= base && unit + 1 < units.len() {
        scaled /= base;
        unit += 1;
    }
    if scaled.fract() == 0.0 {
        format!("{scaled:.0} {}", units[unit])
    } else {
        format!("{scaled:.1} {}", units[unit])
    }
}

/// `1.23 M` + unit, two decimals and a decimal prefix (up to G): `1.23 Mpkt/s`,
/// `812.00 b/s`; for tables whose columns are wide enough.
pub fn decimal(value: f64, unit: &str) -> String {
    let (scaled, prefix) = match value {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    format!("{scaled:.2} {prefix}{unit}").trim_end().to_owned()
}

const PREFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];

/// As iftop prints numbers: three significant digits and a decimal prefix, no space,
/// at most six characters with a one-letter unit ("812b", "12.3kb", "1.23Mb"), so the
/// columns of an 80x24 screen line up. Rounding is done before choosing the prefix, so
/// 999.7 kb prints as "1.00Mb", never "1000kb".
pub fn compact(value: f64, unit: &str) -> String {
    let value = if value.is_finite() {
        value.max(0.0)
    } else {
        0.0
    };
    if value < 999.5 {
        return format!("{value:.0}{unit}");
    }
    let mut scaled = value;
    for prefix in &PREFIXES[1..] {
        scaled /= 1000.0;
        let text = if scaled < 9.995 {
            format!("{scaled:.2}")
        } else if scaled < 99.95 {
            format!("{scaled:.1}")
        } else if scaled < 999.5 {
            format!("{scaled:.0}")
        } else {
            continue;
        };
        return format!("{text}{prefix}{unit}");
    }
    format!("{:.0}{}{unit}", scaled, PREFIXES[PREFIXES.len() - 1])
}

/// A clock-like elapsed time: `42s`, `5m03s`, `2h05m`.
pub fn clock(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

/// A rough age, for how long ago something happened: `45 s`, `12 min`, `3 h`, `2 days`.
pub fn age(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.0} h", s / 3600.0),
        s => format!("{:.0} days", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_si_without_i_and_binary_with_it() {
        assert_eq!(parse_bytes("1048576"), Ok(1_048_576));
        assert_eq!(parse_bytes("500K"), Ok(500_000));
        assert_eq!(parse_bytes("500k"), Ok(500_000));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("100M"), Ok(100_000_000));
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("100Mi"), Ok(100 << 20));
        assert_eq!(parse_bytes("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("2T"), Ok(2_000_000_000_000));
        assert_eq!(parse_bytes("0"), Ok(0));
    }

    #[test]
    fn bytes_refuse_nonsense_and_overflow() {
        for bad in [
            "",
            "M",
            "ten",
            "1.2.3",
            "-1",
            "10 MBs",
            "1Mbit",
            "20000000000000T",
        ] {
            assert_eq!(
                parse_bytes(bad),
                Err(UnitError::Bytes(bad.trim().to_owned()))
            );
        }
        assert_eq!(
            parse_positive_bytes("0K"),
            Err(UnitError::ZeroBytes("0K".into()))
        );
        assert_eq!(parse_positive_bytes("1K"), Ok(1_000));
    }

    #[test]
    fn rates_are_bits_and_refuse_bytes() {
        assert_eq!(parse_bits_per_second("800000000"), Ok(800_000_000));
        assert_eq!(parse_bits_per_second("800M"), Ok(800_000_000));
        assert_eq!(parse_bits_per_second("800m"), Ok(800_000_000));
        assert_eq!(parse_bits_per_second("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bits_per_second("1.5Gbit/s"), Ok(1_500_000_000));
        assert_eq!(parse_bits_per_second("10 Mbps"), Ok(10_000_000));
        assert_eq!(parse_bits_per_second("1Gi"), Ok(1 << 30));
        assert_eq!(parse_bits_per_second("2Kib/s"), Ok(2048));
        for bad in ["100MB", "1MiB", "fast", "1Gbit/h"] {
            assert_eq!(
                parse_bits_per_second(bad),
                Err(UnitError::BitsPerSecond(bad.into()))
            );
        }
        assert_eq!(
            parse_bits_per_second("0M"),
            Err(UnitError::ZeroBitsPerSecond("0M".into()))
        );
    }

    #[test]
    fn seconds_accept_decimals_and_refuse_nonsense() {
        assert_eq!(parse_seconds("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("1e30").is_err());
    }

    #[test]
    fn percentages_are_within_0_and_100() {
        assert_eq!(parse_percent("90%"), Some(Ok(90.0)));
        assert_eq!(parse_percent(" 92.5 %"), Some(Ok(92.5)));
        assert_eq!(parse_percent("800M"), None);
        assert_eq!(
            parse_percent("0%"),
            Some(Err(UnitError::PercentRange("0%".into())))
        );
        assert_eq!(
            parse_percent("101%"),
            Some(Err(UnitError::PercentRange("101%".into())))
        );
        assert_eq!(
            parse_percent("x%"),
            Some(Err(UnitError::Percent("x%".into())))
        );
    }

    #[test]
    fn figures_read_like_a_person_writes_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1 << 20), "1 MiB");
        assert_eq!(bytes(4_404_019), "4.2 MiB");
        assert_eq!(bytes_decimal(512), "512 B");
        assert_eq!(bytes_decimal(1_234), "1.2 kB");
        assert_eq!(bytes_decimal(3_000_000), "3.0 MB");
        assert_eq!(bits_per_second(800_000_000), "800 Mbit/s");
        assert_eq!(bits_per_second(1_200_000_000), "1.2 Gbit/s");
        assert_eq!(decimal(1_234_567.0, "pkt/s"), "1.23 Mpkt/s");
        assert_eq!(decimal(12.0, ""), "12.00");
        assert_eq!(decimal(2.5e9, "bit/s"), "2.50 Gbit/s");
    }

    #[test]
    fn compact_is_three_digits_and_a_prefix() {
        assert_eq!(compact(0.0, "b"), "0b");
        assert_eq!(compact(800.0, "b"), "800b");
        assert_eq!(compact(1_000.0, "b"), "1.00kb");
        assert_eq!(compact(12_320.0, "b"), "12.3kb");
        assert_eq!(compact(123_456.0, "B"), "123kB");
        assert_eq!(compact(999_700.0, "B"), "1.00MB");
        assert_eq!(compact(99_960.0, "B"), "100kB");
        assert_eq!(compact(f64::NAN, "b"), "0b");
    }

    #[test]
    fn durations_read_like_a_clock_or_an_age() {
        assert_eq!(clock(Duration::from_secs(42)), "42s");
        assert_eq!(clock(Duration::from_secs(303)), "5m03s");
        assert_eq!(clock(Duration::from_secs(7500)), "2h05m");
        assert_eq!(age(45.0), "45 s");
        assert_eq!(age(720.0), "12 min");
        assert_eq!(age(3.0 * 3600.0), "3 h");
        assert_eq!(age(2.0 * 86_400.0), "2 days");
    }
}
