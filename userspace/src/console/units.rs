//! The console's units: bits or bytes per second (the `B` key), and its numbers as iftop
//! prints them, in the crate's [`compact`] form: three significant digits and an
//! SI prefix, at most six characters ("812b", "12.3kb", "1.23Mb"), so the columns of an
//! 80x24 screen line up.

use crate::units::compact;

/// How rates are shown: bits per second (iftop's default) or bytes (`-B`, the `B` key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Units {
    #[default]
    Bits,
    Bytes,
}

impl Units {
    pub fn toggled(self) -> Self {
        match self {
            Units::Bits => Units::Bytes,
            Units::Bytes => Units::Bits,
        }
    }

    /// For the header line: "bits/s" or "bytes/s".
    pub fn name(self) -> &'static str {
        match self {
            Units::Bits => "bits/s",
            Units::Bytes => "bytes/s",
        }
    }
}

/// A rate given in bytes/s, in the chosen units: "1.23Mb" or "157kB".
pub fn rate(bytes_per_second: f64, units: Units) -> String {
    match units {
        Units::Bits => compact(bytes_per_second * 8.0, "b"),
        Units::Bytes => compact(bytes_per_second, "B"),
    }
}

/// An amount of bytes (cumulative columns are always bytes, as in iftop): "9.80MB".
pub fn amount(bytes: u64) -> String {
    compact(bytes as f64, "B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_digits_and_a_prefix() {
        assert_eq!(rate(0.0, Units::Bits), "0b");
        assert_eq!(rate(100.0, Units::Bits), "800b");
        assert_eq!(rate(125.0, Units::Bits), "1.00kb");
        assert_eq!(rate(1_540.0, Units::Bits), "12.3kb");
        assert_eq!(rate(1_000_000.0, Units::Bits), "8.00Mb");
        assert_eq!(rate(1_000_000.0, Units::Bytes), "1.00MB");
        assert_eq!(rate(123_456.0, Units::Bytes), "123kB");
        assert_eq!(amount(9_800_000), "9.80MB");
        assert_eq!(amount(999), "999B");
    }

    #[test]
    fn rounding_moves_to_the_next_prefix() {
        assert_eq!(amount(999_700), "1.00MB");
        assert_eq!(amount(99_960), "100kB");
        assert_eq!(amount(9_996), "10.0kB");
    }

    #[test]
    fn never_wider_than_six_characters() {
        let mut value = 1.0;
        while value < 1e17 {
            for factor in [1.0, 9.99, 99.96, 999.4, 999.6] {
                let text = amount((value * factor) as u64);
                assert!(text.len() <= 6, "{text}");
                let text = rate(value * factor, Units::Bits);
                assert!(text.len() <= 6, "{text}");
            }
            value *= 10.0;
        }
        assert_eq!(rate(f64::NAN, Units::Bits), "0b");
    }
}
