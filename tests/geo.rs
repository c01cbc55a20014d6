//! GeoIP: `GeoDb` against small databases written here in both layouts it reads
//! (MaxMind's `country.iso_code`, ip-location-db's `country_code`), the embedded DB-IP
//! database on a few well-known public addresses (lookups only, no traffic), and files
//! that cannot be used, which must give the one-line error and never a panic.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use flowmeter::enrich::geo::{CountryCode, GeoDb, GeoError, HomeCountries, Location};
use mmdb_writer::{IpVersion, Value, Writer, ipnet::IpNet};

/// A fresh path under cargo's scratch directory for integration tests.
fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("geo");
    std::fs::create_dir_all(&dir).unwrap();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{}-{n}-{name}", std::process::id()))
}

fn write_db(name: &str, writer: &Writer) -> PathBuf {
    let path = scratch(name);
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn country(code: &str) -> Location {
    Location::Country(CountryCode::new(code).unwrap())
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// The test prefixes and what they map to. Two private ranges are in the file too, with
/// a country, as a company's site database maps them: the file's answer wins there.
const ENTRIES: &[(&str, &str)] = &[
    ("198.51.100.0/24", "DE"),
    ("203.0.113.0/24", "US"),
    ("2001:db8:1::/48", "JP"),
    ("10.0.0.0/8", "FR"),
    ("fd00::/8", "FR"),
];

/// A record shaped like GeoLite2-City's: the code sits in `country.iso_code` among
/// fields we skip.
fn geolite2_record(code: &str) -> Value {
    let names = Value::map([
        ("en", format!("Land {code}")),
        ("de", format!("Land {code}")),
    ]);
    let country = Value::map([
        ("geoname_id", Value::from(2_921_044_u32)),
        ("is_in_european_union", Value::from(code == "DE")),
        ("iso_code", Value::from(code)),
        ("names", names.clone()),
    ]);
    Value::map([
        (
            "city",
            Value::map([("geoname_id", Value::from(1_u32)), ("names", names)]),
        ),
        (
            "continent",
            Value::map([("code", "EU"), ("geoname_id", "6255148")]),
        ),
        ("country", country.clone()),
        (
            "location",
            Value::map([
                ("latitude", Value::from(51.5_f64)),
                ("longitude", Value::from(10.5_f64)),
            ]),
        ),
        ("registered_country", country),
    ])
}

fn geolite2_db() -> PathBuf {
    let mut writer = Writer::new("GeoLite2-City");
    for (prefix, code) in ENTRIES {
        writer
            .insert_value(net(prefix), geolite2_record(code))
            .unwrap();
    }
    // Located nowhere, registered in SE: MaxMind's anycast case falls back to that.
    let registered_only = Value::map([("registered_country", Value::map([("iso_code", "SE")]))]);
    writer
        .insert_value(net("192.0.2.128/25"), registered_only)
        .unwrap();
    write_db("geolite2.mmdb", &writer)
}

fn flat_db() -> PathBuf {
    let mut writer = Writer::new("country ipvAll");
    for (prefix, code) in ENTRIES {
        writer
            .insert_value(net(prefix), Value::map([("country_code", *code)]))
            .unwrap();
    }
    write_db("flat.mmdb", &writer)
}

fn assert_answers_test_prefixes(db: &GeoDb) {
    for (addr, want) in [
        ("198.51.100.7", country("DE")),
        ("198.51.100.255", country("DE")),
        ("203.0.113.1", country("US")),
        ("2001:db8:1::5", country("JP")),
        ("2001:db8:1:ffff::1", country("JP")),
        // IPv4-mapped IPv6 is looked up as IPv4.
        ("::ffff:198.51.100.7", country("DE")),
        // Outside every prefix.
        ("198.51.101.1", Location::Unknown),
        ("192.0.2.1", Location::Unknown),
        ("2001:db8:2::1", Location::Unknown),
        ("8.8.8.8", Location::Unknown),
        // Private, and in the file as FR: the file's answer.
        ("10.1.2.3", country("FR")),
        ("fd00::1", country("FR")),
        ("::ffff:10.1.2.3", country("FR")),
        // Private or special ranges the file has no record for: local.
        ("192.168.1.1", Location::Local),
        ("127.0.0.1", Location::Local),
        ("fe80::1", Location::Local),
        ("100.64.1.1", Location::Local),
    ] {
        assert_eq!(db.locate(ip(addr)), want, "{addr}");
    }
}

#[test]
fn geolite2_layout_answers_test_prefixes() {
    let path = geolite2_db();
    let db = GeoDb::open(&path).unwrap();
    assert_answers_test_prefixes(&db);
    assert_eq!(db.locate(ip("192.0.2.200")), country("SE"));

    let description = db.description();
    assert!(
        description.contains(&path.display().to_string()),
        "{description}"
    );
    assert!(description.contains("GeoLite2-City"), "{description}");
    assert_eq!(db.attribution(), None);
}

#[test]
fn country_code_layout_answers_test_prefixes() {
    let db = GeoDb::open(&flat_db()).unwrap();
    assert_answers_test_prefixes(&db);
}

#[test]
fn ipv4_only_database_leaves_ipv6_unknown() {
    let mut writer = Writer::builder("country ipv4")
        .ip_version(IpVersion::V4)
        .build();
    writer
        .insert_value(net("198.51.100.0/24"), Value::map([("country_code", "DE")]))
        .unwrap();
    let db = GeoDb::open(&write_db("v4.mmdb", &writer)).unwrap();
    assert_eq!(db.locate(ip("198.51.100.1")), country("DE"));
    assert_eq!(db.locate(ip("::ffff:198.51.100.1")), country("DE"));
    assert_eq!(db.locate(ip("2001:db8:1::1")), Location::Unknown);
}

#[test]
fn home_marks_other_countries_foreign() {
    let db = GeoDb::open(&flat_db()).unwrap();
    let home: HomeCountries = "de".parse().unwrap();
    let foreign = |addr| home.is_foreign(&db.locate(ip(addr)));
    assert!(!foreign("198.51.100.1"), "DE is home");
    assert!(foreign("203.0.113.1"), "US is abroad");
    assert!(!foreign("192.168.0.1"), "local is not foreign");
    assert!(
        foreign("10.0.0.1"),
        "a private range the file puts in FR is abroad"
    );
    assert!(!foreign("192.0.2.1"), "unknown is not foreign");
}

/// Answers DB-IP gives for long-standing infrastructure. These are what the shipped
/// file says, not claims about where the hosts really are; if a database update
/// changes one, check it against DB-IP and update the expectation.
#[test]
fn embedded_database_answers_well_known_addresses() {
    let db = GeoDb::embedded().unwrap();
    for (addr, want) in [
        ("8.8.8.8", "US"),                   // Google Public DNS
        ("9.9.9.9", "US"),                   // Quad9
        ("1.1.1.1", "AU"),                   // Cloudflare; APNIC-registered block
        ("193.0.6.139", "NL"),               // RIPE NCC, Amsterdam
        ("2001:67c:2e8:22::c100:68b", "NL"), // RIPE NCC over IPv6
        ("202.12.27.33", "JP"),              // M-root, WIDE
        ("2001:7fe::53", "SE"),              // I-root, Netnod
        ("::ffff:8.8.8.8", "US"),            // IPv4-mapped form
    ] {
        assert_eq!(db.locate(ip(addr)), country(want), "{addr}");
    }
    assert_eq!(db.locate(ip("192.168.0.1")), Location::Local);
    assert_eq!(db.locate(ip("2001:db8::1")), Location::Unknown);
    assert!(
        db.description()
            .starts_with("DB-IP Lite country (embedded, ")
    );
    assert_eq!(
        db.attribution(),
        Some("IP Geolocation by DB-IP (https://db-ip.com)")
    );
}

/// The error for `path`, checked to be the one-line message that names the file and
/// says what to do.
fn open_error(path: &Path) -> GeoError {
    let error = GeoDb::open(path).expect_err("opening should fail");
    let message = error.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("--geoip"), "says what to do: {message}");
    error
}

#[test]
fn missing_file_is_an_error() {
    let path = scratch("does-not-exist.mmdb");
    let error = open_error(&path);
    assert!(matches!(error, GeoError::Read { .. }), "{error}");
    assert!(error.to_string().contains("No such file"), "{error}");
}

#[test]
fn directory_is_an_error() {
    let path = scratch("a-directory");
    std::fs::create_dir(&path).unwrap();
    assert!(matches!(open_error(&path), GeoError::Read { .. }));
}

#[test]
fn empty_file_is_an_error() {
    let path = scratch("empty.mmdb");
    std::fs::write(&path, b"").unwrap();
    let error = open_error(&path);
    assert!(matches!(error, GeoError::Invalid { .. }), "{error}");
    assert!(
        error.to_string().contains("not a valid MaxMind DB file"),
        "{error}"
    );
}

#[test]
fn random_bytes_are_an_error() {
    // A fixed xorshift stream: "random", and the same on every run.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let path = scratch("random.mmdb");
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(open_error(&path), GeoError::Invalid { .. }));
}

#[test]
fn truncated_real_file_is_an_error() {
    let whole = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/dbip-country.mmdb"))
        .unwrap();
    // Cut in the tree, and cut just the metadata's tail.
    for (name, len) in [("half", whole.len() / 2), ("tail", whole.len() - 40)] {
        let path = scratch(&format!("truncated-{name}.mmdb"));
        std::fs::write(&path, &whole[..len]).unwrap();
        let error = open_error(&path);
        assert!(matches!(error, GeoError::Invalid { .. }), "{name}: {error}");
    }
}

#[test]
fn database_without_countries_is_an_error() {
    let mut writer = Writer::new("GeoLite2-ASN");
    writer
        .insert_value(
            net("198.51.100.0/24"),
            Value::map([
                ("autonomous_system_number", Value::from(64_496_u32)),
                ("autonomous_system_organization", Value::from("Example")),
            ]),
        )
        .unwrap();
    let path = write_db("asn.mmdb", &writer);
    let error = open_error(&path);
    assert!(matches!(error, GeoError::NoCountries { .. }), "{error}");
    assert!(error.to_string().contains("GeoLite2-ASN"), "{error}");
}

/// Damage in the data of a file whose tree and metadata are intact: the records
/// [`GeoDb::open`] probes are fine, later ones are garbage. No lookup may panic;
/// what cannot be decoded is `Unknown`.
#[test]
fn damaged_records_are_unknown_not_a_panic() {
    // 256 prefixes with distinct codes, so the data section holds 256 records.
    let codes: Vec<String> = (b'A'..=b'P')
        .flat_map(|a| (b'A'..=b'P').map(move |b| String::from_utf8(vec![a, b]).unwrap()))
        .collect();
    let mut writer = Writer::new("country ipvAll");
    for (i, code) in codes.iter().enumerate() {
        let prefix = format!("2001:db8:{i:x}::/48");
        writer
            .insert_value(net(&prefix), Value::map([("country_code", code.as_str())]))
            .unwrap();
    }
    let good = writer.to_bytes().unwrap();
    let metadata = good
        .windows(14)
        .rposition(|w| w == b"\xab\xcd\xefMaxMind.com")
        .unwrap();
    let mut bad = good.clone();
    for byte in &mut bad[metadata - 400..metadata] {
        *byte = 0xff;
    }
    let path = scratch("damaged.mmdb");
    std::fs::write(&path, bad).unwrap();
    let db = GeoDb::open(&path).unwrap();
    let mut unknown = 0;
    for (i, code) in codes.iter().enumerate() {
        match db.locate(ip(&format!("2001:db8:{i:x}::1"))) {
            Location::Unknown => unknown += 1,
            found => assert_eq!(
                found,
                country(code),
                "damage never gives a wrong answer here"
            ),
        }
    }
    assert!(unknown > 0, "the damage reached some records");
}
