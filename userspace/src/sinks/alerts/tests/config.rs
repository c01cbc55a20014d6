//! The `--alert-*` option values.

use super::MIB;
use crate::{
    sinks::alerts::{RateLimit, RateLimitError},
    units::{UnitError, parse_bytes},
};

/// `--alert-foreign` takes the one grammar of byte counts.
#[test]
fn byte_counts_parse_with_decimal_and_binary_units() {
    for (text, bytes) in [
        ("0", 0),
        ("1048576", MIB),
        ("500K", 500_000),
        ("500 kb", 500_000),
        ("10MB", 10_000_000),
        ("1MiB", MIB),
        ("1mi", MIB),
        ("2GiB", 2 << 30),
        ("1.5 GiB", 3 << 29),
        ("1T", 1_000_000_000_000),
        ("64B", 64),
    ] {
        assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
    }
    for bad in [
        "",
        "MiB",
        "-1",
        "1 XB",
        "1e6",
        "1.2.3",
        "99999999999999999999",
        "20000000TiB",
    ] {
        assert!(parse_bytes(bad).is_err(), "{bad}");
    }
    let message = parse_bytes("lots").unwrap_err().to_string();
    assert!(message.contains("500K"), "{message}");
}

#[test]
fn rates_parse_as_bits_per_second_or_a_share_of_the_link() {
    for (text, bps) in [
        ("1000000", 1_000_000),
        ("800M", 800_000_000),
        ("800m", 800_000_000),
        ("1G", 1_000_000_000),
        ("1.5Gbit/s", 1_500_000_000),
        ("100kbps", 100_000),
        ("10 Mb", 10_000_000),
    ] {
        assert_eq!(text.parse(), Ok(RateLimit::BitsPerSecond(bps)), "{text}");
    }
    assert_eq!("90%".parse(), Ok(RateLimit::PercentOfLink(90.0)));
    assert_eq!("92.5 %".parse(), Ok(RateLimit::PercentOfLink(92.5)));
    assert_eq!("100%".parse(), Ok(RateLimit::PercentOfLink(100.0)));
    for bad in ["", "fast", "100MB", "1MiB", "10Bps", "-5M", "1e9"] {
        assert!(
            matches!(
                bad.parse::<RateLimit>(),
                Err(RateLimitError::NotARate(UnitError::BitsPerSecond(_)))
            ),
            "{bad}"
        );
    }
    let message = "fast".parse::<RateLimit>().unwrap_err().to_string();
    assert!(
        message.contains("e.g. 800M")
            && message.ends_with("or a share of the link speed, e.g. 90%"),
        "{message}"
    );
    assert!(matches!(
        "0".parse::<RateLimit>(),
        Err(RateLimitError::Invalid(UnitError::ZeroBitsPerSecond(_)))
    ));
    for bad in ["0%", "101%", "-3%"] {
        assert!(
            matches!(
                bad.parse::<RateLimit>(),
                Err(RateLimitError::Invalid(UnitError::PercentRange(_)))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        "x%".parse::<RateLimit>(),
        Err(RateLimitError::Invalid(UnitError::Percent(_)))
    ));
    assert_eq!(
        RateLimit::BitsPerSecond(800_000_000).to_string(),
        "800 Mbit/s"
    );
}
