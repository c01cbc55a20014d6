//! IP → country, through a MaxMind DB (`.mmdb`) file.
//!
//! The default database is embedded in the binary: DB-IP Lite country, CC BY 4.0, from
//! `data/` (see `data/README.md`; anything that shows its answers credits [`DBIP_CREDIT`]).
//! `--geoip PATH` replaces it with a MaxMind GeoLite2/GeoIP2 Country or City file, or any
//! mmdb whose records carry `country.iso_code` or a top-level `country_code`.
//!
//! Private and special ranges that no country owns ([`is_local`]) are
//! [`Location::Local`] unless a `--geoip` file has a record for the address: a company's
//! own site database that maps 10.0.0.0/8 to a country is the user's explicit answer, and
//! it wins ([`GeoDb::locate`] states the rule). `--home CC[,CC...]` ([`HomeCountries`])
//! names the host's own countries; a remote in any other country is "foreign", a risk
//! mark and not a verdict.

use std::{
    borrow::Cow,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use maxminddb::{MaxMindDbError, Reader, WithinOptions};
use serde::Deserialize;

/// The embedded default database, kept byte for byte as shipped by its npm package.
static EMBEDDED_DB: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/dbip-country.mmdb"
));

/// The credit DB-IP's licence requires wherever answers from the embedded database show.
pub const DBIP_CREDIT: &str = "IP Geolocation by DB-IP (https://db-ip.com)";

/// What every "can't use this file" message ends with.
const FIX: &str = "pass a GeoLite2/GeoIP2 Country or City .mmdb, or drop --geoip to use the embedded DB-IP database";

/// How many records [`GeoDb::open`] reads to make sure the file holds country codes.
const PROBE_RECORDS: usize = 64;

/// A GeoIP database that cannot be used. Each message is one line that says what is
/// wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot read GeoIP database {}: {error}; check the path, or {FIX}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot read GeoIP database {}: not a valid MaxMind DB file ({reason}); {FIX}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "cannot use GeoIP database {} ({database_type}): its records carry no country code \
         (country.iso_code or country_code); {FIX}",
        path.display()
    )]
    NoCountries {
        path: PathBuf,
        database_type: String,
    },
    #[error(
        "the embedded GeoIP database is unreadable ({reason}): this build is broken; \
         pass --geoip with a GeoLite2/GeoIP2 Country or City .mmdb"
    )]
    Embedded { reason: String },
}

/// An ISO 3166-1 alpha-2 country code: two ASCII uppercase letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Two ASCII letters in either case; anything else is `None`.
    pub fn new(code: &str) -> Option<Self> {
        match code.as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Always two ASCII letters, by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = CountryParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s.trim()).ok_or_else(|| CountryParseError::NotACode(s.trim().to_owned()))
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Where an address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// A private or special range that no country owns (RFC 1918, loopback, link-local,
    /// CGNAT, multicast, IPv6 ULA, ...), where the database has no record.
    Local,
    /// The country the database puts the address in: a public one, or a private one
    /// that a `--geoip` site database maps.
    Country(CountryCode),
    /// A public address the database has no country for.
    Unknown,
}

impl Location {
    pub fn country(self) -> Option<CountryCode> {
        match self {
            Location::Country(code) => Some(code),
            Location::Local | Location::Unknown => None,
        }
    }
}

impl fmt::Display for Location {
    /// `DE`, `local` or `unknown`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Country(code) => code.fmt(f),
            Location::Local => f.pad("local"),
            Location::Unknown => f.pad("unknown"),
        }
    }
}

/// True for addresses that no country owns: "local" where the database has no record
/// for them (see [`GeoDb::locate`]). IPv4-mapped IPv6 addresses are judged as the IPv4
/// address they carry.
///
/// Documentation and benchmark ranges (192.0.2/24, 198.51.100/24, 203.0.113/24,
/// 198.18/15, 2001:db8::/32) are not local: they are looked up like any address,
/// which lets tests give them countries.
pub fn is_local(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_local_v4(v4),
        IpAddr::V6(v6) => is_local_v6(v6),
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        // 0.0.0.0/8 "this network", which holds the unspecified address.
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT (`Ipv4Addr::is_shared` is not stable).
        || (a == 100 && b & 0xc0 == 64)
        // 240.0.0.0/4, reserved, which holds the broadcast address.
        || a >= 240
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // fec0::/10, the deprecated site-local range: private by design.
        || ip.segments()[0] & 0xffc0 == 0xfec0
}

/// The two record layouts we read, borrowed from the database so a lookup allocates
/// nothing. Other fields are skipped.
#[derive(Deserialize)]
struct CountryRecord<'a> {
    /// MaxMind GeoIP2/GeoLite2 Country and City.
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    /// ip-location-db (the embedded DB-IP file) and similar flat databases.
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    /// MaxMind's fallback when it has no located country (some anycast ranges).
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

impl<'a> CountryRecord<'a> {
    fn code(&self) -> Option<CountryCode> {
        let iso = |c: &Option<IsoCode<'a>>| c.as_ref().and_then(|c| c.iso_code);
        iso(&self.country)
            .or(self.country_code)
            .or_else(|| iso(&self.registered_country))
            .and_then(CountryCode::new)
            // "ZZ" and "XX" are used for "unknown or unassigned", not a place.
            .filter(|c| !matches!(c.as_str(), "ZZ" | "XX"))
    }
}

enum Source {
    Embedded,
    File(PathBuf),
}

/// An open country database. Cheap to query from any thread (`Send + Sync`).
pub struct GeoDb {
    reader: Reader<Cow<'static, [u8]>>,
    source: Source,
}

impl GeoDb {
    /// The embedded DB-IP Lite country database.
    pub fn embedded() -> Result<Self, GeoError> {
        let reader =
            Reader::from_source(Cow::Borrowed(EMBEDDED_DB)).map_err(|e| GeoError::Embedded {
                reason: e.to_string(),
            })?;
        Ok(Self {
            reader,
            source: Source::Embedded,
        })
    }

    /// A database file given with `--geoip`. It is read whole into memory and checked:
    /// a missing, unreadable, corrupt or country-less file is an error here, not later.
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let bytes = std::fs::read(path).map_err(|error| GeoError::Read {
            path: path.to_owned(),
            error,
        })?;
        let invalid = |e: MaxMindDbError| GeoError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let reader = Reader::from_source(Cow::Owned(bytes)).map_err(invalid)?;
        if !has_country_codes(&reader).map_err(invalid)? {
            return Err(GeoError::NoCountries {
                path: path.to_owned(),
                database_type: reader.metadata().database_type.clone(),
            });
        }
        Ok(Self {
            reader,
            source: Source::File(path.to_owned()),
        })
    }

    /// `--geoip PATH` if given, else the embedded database.
    pub fn load(path: Option<&Path>) -> Result<Self, GeoError> {
        path.map_or_else(Self::embedded, Self::open)
    }

    /// One line for the start record and the help screen, e.g.
    /// "DB-IP Lite country (embedded, 2026-06)" or
    /// "/var/lib/GeoIP/GeoLite2-Country.mmdb (GeoLite2-Country, 2026-05-30)".
    pub fn description(&self) -> String {
        let meta = self.reader.metadata();
        match &self.source {
            // DB-IP Lite is monthly: the month says which edition it is.
            Source::Embedded => format!(
                "DB-IP Lite country (embedded, {})",
                build_date(
                    meta.build_epoch,
                    time::macros::format_description!("[year]-[month]")
                )
            ),
            Source::File(path) => format!(
                "{} ({}, {})",
                path.display(),
                meta.database_type,
                build_date(
                    meta.build_epoch,
                    time::macros::format_description!("[year]-[month]-[day]")
                )
            ),
        }
    }

    /// The credit to show beside answers, when the database's licence asks for one.
    pub fn attribution(&self) -> Option<&'static str> {
        match self.source {
            Source::Embedded => Some(DBIP_CREDIT),
            Source::File(_) => None,
        }
    }

    /// Where `ip` is. The one rule for private and special ranges: the database's own
    /// record wins (a `--geoip` site database may map 10.0.0.0/8 to a country), and an
    /// address of such a range that it has no country for is `Local`. Any other address
    /// the database has no country for, or cannot decode, is `Unknown`.
    ///
    /// The embedded database holds no record in those ranges (a test walks them), so it
    /// is not asked for them: the same answer, without the lookup.
    pub fn locate(&self, ip: IpAddr) -> Location {
        let ip = ip.to_canonical();
        let local = is_local(ip);
        if local && matches!(self.source, Source::Embedded) {
            return Location::Local;
        }
        let found = self.lookup(ip).unwrap_or_else(|e| {
            log::debug!("GeoIP lookup of {ip} failed: {e}");
            None
        });
        match found {
            Some(code) => Location::Country(code),
            None if local => Location::Local,
            None => Location::Unknown,
        }
    }

    fn lookup(&self, ip: IpAddr) -> Result<Option<CountryCode>, MaxMindDbError> {
        // An IPv4-only file cannot answer IPv6; that is "unknown", not a failure.
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        let record = self.reader.lookup(ip)?.decode::<CountryRecord<'_>>()?;
        Ok(record.and_then(|r| r.code()))
    }
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GeoDb").field(&self.description()).finish()
    }
}

/// Whether the first records of the file carry a country code in a layout we read.
/// Reading a handful is enough to reject an ASN or ISP database, and it walks part of
/// the tree, which catches some corruption before the first real lookup.
fn has_country_codes(reader: &Reader<Cow<'static, [u8]>>) -> Result<bool, MaxMindDbError> {
    for record in reader
        .networks(WithinOptions::default())?
        .take(PROBE_RECORDS)
    {
        if let Some(r) = record?.decode::<CountryRecord<'_>>()?
            && r.code().is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A database's build time (seconds since 1970) in `format`, in UTC.
fn build_date(epoch: u64, format: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    i64::try_from(epoch)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| "unknown date".to_owned())
}

/// A `--home` value that is not a list of country codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryParseError {
    #[error("no country code given; expected e.g. DE or DE,AT,CH")]
    Empty,
    #[error("{0:?} is not a two-letter country code (ISO 3166-1 alpha-2, e.g. DE, US, CN)")]
    NotACode(String),
}

/// The host's own countries (`--home CC[,CC...]`). Remotes located elsewhere are
/// foreign. Empty means no home was declared, and then nothing is foreign. Shared, so
/// that every verdict naming it costs a reference count, not a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HomeCountries(Arc<[CountryCode]>);

impl Default for HomeCountries {
    fn default() -> Self {
        Self(Arc::from([]))
    }
}

impl HomeCountries {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, code: CountryCode) -> bool {
        self.0.contains(&code)
    }

    pub fn iter(&self) -> impl Iterator<Item = CountryCode> + '_ {
        self.0.iter().copied()
    }

    /// Only a known country outside the set is foreign: local and unknown addresses
    /// are not, and with no home declared nothing is.
    pub fn is_foreign(&self, location: &Location) -> bool {
        match location {
            Location::Country(code) => !self.is_empty() && !self.contains(*code),
            Location::Local | Location::Unknown => false,
        }
    }
}

impl FromStr for HomeCountries {
    type Err = CountryParseError;

    /// Comma-separated codes in any case, spaces allowed around them: "de, at,CH".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(CountryParseError::Empty);
        }
        s.split(',').map(CountryCode::from_str).collect()
    }
}

impl FromIterator<CountryCode> for HomeCountries {
    fn from_iter<I: IntoIterator<Item = CountryCode>>(iter: I) -> Self {
        let mut codes: Vec<CountryCode> = iter.into_iter().collect();
        codes.sort_unstable();
        codes.dedup();
        Self(codes.into())
    }
}

impl fmt::Display for HomeCountries {
    /// `AT,CH,DE`: sorted, as `--home` takes it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, code) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(code.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cc(s: &str) -> CountryCode {
        CountryCode::new(s).unwrap()
    }

    #[test]
    fn private_and_special_ranges_are_local() {
        for addr in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "240.0.0.1",
            "224.0.0.251",
            "239.255.255.250",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::fb",
            // IPv4-mapped forms are judged as IPv4.
            "::ffff:10.1.2.3",
            "::ffff:192.168.0.1",
            "::ffff:127.0.0.1",
            "::ffff:100.64.0.1",
            "::ffff:169.254.1.1",
        ] {
            assert!(is_local(ip(addr)), "{addr} should be local");
        }
    }

    #[test]
    fn public_documentation_and_neighbouring_ranges_are_not_local() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            // Just outside the private and CGNAT blocks.
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "223.255.255.255",
            "1.0.0.0",
            // Documentation and benchmark ranges are looked up like any address.
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.200",
            "198.18.0.1",
            "198.19.255.255",
            "2001:db8::1",
            "2001:4860:4860::8888",
            "2a00:1450::1",
            "fbff::1",
            "::ffff:8.8.8.8",
            "::ffff:198.51.100.1",
        ] {
            assert!(!is_local(ip(addr)), "{addr} should not be local");
        }
    }

    #[test]
    fn country_codes_are_two_letters_uppercased() {
        assert_eq!(cc("de").as_str(), "DE");
        assert_eq!(cc("Us").to_string(), "US");
        assert_eq!(format!("{:>4}|", cc("jp")), "  JP|");
        for bad in ["", "D", "DEU", "D1", "1D", "é", "D-", " DE"] {
            assert_eq!(CountryCode::new(bad), None, "{bad:?}");
        }
        assert_eq!(" fr ".parse::<CountryCode>(), Ok(cc("FR")));
        assert_eq!(
            serde_json::to_string(&Location::Country(cc("nl")).country()).unwrap(),
            "\"NL\""
        );
    }

    #[test]
    fn home_parses_lists_case_insensitively() {
        let home: HomeCountries = "de, at,CH,de".parse().unwrap();
        assert_eq!(home.to_string(), "AT,CH,DE");
        assert_eq!(home.iter().count(), 3);
        assert!(home.contains(cc("DE")));
        assert_eq!("cn".parse::<HomeCountries>().unwrap().to_string(), "CN");
    }

    #[test]
    fn home_rejects_what_is_not_a_country_code() {
        assert_eq!("".parse::<HomeCountries>(), Err(CountryParseError::Empty));
        assert_eq!("  ".parse::<HomeCountries>(), Err(CountryParseError::Empty));
        assert_eq!(
            "DE,DEU".parse::<HomeCountries>(),
            Err(CountryParseError::NotACode("DEU".into()))
        );
        assert_eq!(
            "DE,,FR".parse::<HomeCountries>(),
            Err(CountryParseError::NotACode(String::new()))
        );
        assert_eq!(
            "D3".parse::<HomeCountries>(),
            Err(CountryParseError::NotACode("D3".into()))
        );
        let message = "germany".parse::<HomeCountries>().unwrap_err().to_string();
        assert!(
            message.contains("\"germany\" is not a two-letter country code"),
            "{message}"
        );
    }

    #[test]
    fn only_countries_outside_home_are_foreign() {
        let home: HomeCountries = "DE,AT".parse().unwrap();
        assert!(!home.is_foreign(&Location::Country(cc("DE"))));
        assert!(!home.is_foreign(&Location::Country(cc("AT"))));
        assert!(home.is_foreign(&Location::Country(cc("US"))));
        assert!(!home.is_foreign(&Location::Local));
        assert!(!home.is_foreign(&Location::Unknown));

        let nowhere = HomeCountries::default();
        assert!(nowhere.is_empty());
        assert!(!nowhere.is_foreign(&Location::Country(cc("US"))));
    }

    #[test]
    fn locations_display_compactly() {
        assert_eq!(Location::Country(cc("se")).to_string(), "SE");
        assert_eq!(Location::Local.to_string(), "local");
        assert_eq!(Location::Unknown.to_string(), "unknown");
        assert_eq!(Location::Local.country(), None);
    }

    #[test]
    fn record_prefers_located_country_and_ignores_placeholders() {
        let record = |country: Option<&'static str>,
                      country_code,
                      registered: Option<&'static str>| CountryRecord {
            country: country.map(|c| IsoCode { iso_code: Some(c) }),
            country_code,
            registered_country: registered.map(|c| IsoCode { iso_code: Some(c) }),
        };
        assert_eq!(
            record(Some("DE"), Some("FR"), Some("US")).code(),
            Some(cc("DE"))
        );
        assert_eq!(record(None, Some("fr"), Some("US")).code(), Some(cc("FR")));
        assert_eq!(record(None, None, Some("US")).code(), Some(cc("US")));
        assert_eq!(record(None, Some("ZZ"), None).code(), None);
        assert_eq!(record(None, Some("EUR"), None).code(), None);
        assert_eq!(record(None, None, None).code(), None);
    }

    #[test]
    fn embedded_database_opens_and_describes_itself() {
        let db = GeoDb::embedded().unwrap();
        let description = db.description();
        assert!(
            description.starts_with("DB-IP Lite country (embedded, 20"),
            "{description}"
        );
        assert_eq!(db.attribution(), Some(DBIP_CREDIT));
        assert!(has_country_codes(&db.reader).unwrap());
        // Local ranges are local: the embedded database has no record for them.
        assert_eq!(db.locate(ip("192.168.1.1")), Location::Local);
        assert_eq!(db.locate(ip("fe80::1")), Location::Local);
    }

    /// A `--geoip` file with these (prefix, country code) records.
    fn site_db(entries: &[(&str, &str)]) -> (tempfile::TempDir, GeoDb) {
        let mut writer = mmdb_writer::Writer::new("site country");
        for (prefix, code) in entries {
            let net: mmdb_writer::ipnet::IpNet = prefix.parse().unwrap();
            let record = mmdb_writer::Value::map([("country_code", *code)]);
            writer.insert_value(net, record).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.mmdb");
        std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
        let db = GeoDb::open(&path).unwrap();
        (dir, db)
    }

    #[test]
    fn a_site_databases_record_wins_for_private_ranges() {
        let (_dir, db) = site_db(&[
            ("10.0.0.0/8", "CH"),
            ("fd00::/8", "AT"),
            ("192.168.0.0/16", "ZZ"),
            ("198.51.100.0/24", "DE"),
        ]);
        for (addr, want) in [
            // The file's answer for its private ranges.
            ("10.1.2.3", Location::Country(cc("CH"))),
            ("::ffff:10.1.2.3", Location::Country(cc("CH"))),
            ("fd12::1", Location::Country(cc("AT"))),
            // Private ranges it has no record for are local.
            ("172.16.0.1", Location::Local),
            ("127.0.0.1", Location::Local),
            ("fe80::1", Location::Local),
            ("fc00::1", Location::Local),
            // A placeholder ("ZZ") is no answer, so still local.
            ("192.168.1.1", Location::Local),
            // Public addresses as ever.
            ("198.51.100.7", Location::Country(cc("DE"))),
            ("203.0.113.1", Location::Unknown),
        ] {
            assert_eq!(db.locate(ip(addr)), want, "{addr}");
        }
    }

    /// Every range [`is_local`] calls local, as CIDR blocks.
    const LOCAL_RANGES: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    ];

    #[test]
    fn the_embedded_database_has_no_record_in_local_ranges() {
        // So answering "local" without asking it gives what asking would.
        let db = GeoDb::embedded().unwrap();
        for range in LOCAL_RANGES {
            let first: IpAddr = range.split('/').next().unwrap().parse().unwrap();
            assert!(is_local(first), "{range} is not a local range");
            let records = db
                .reader
                .within(range.parse().unwrap(), WithinOptions::default())
                .unwrap();
            for record in records {
                let record = record.unwrap();
                let code = record
                    .decode::<CountryRecord<'_>>()
                    .unwrap()
                    .and_then(|r| r.code());
                assert_eq!(code, None, "{range}: {:?}", record.network());
            }
        }
        // The same walk does find a public range's records.
        let public = db
            .reader
            .within("8.8.0.0/16".parse().unwrap(), WithinOptions::default())
            .unwrap()
            .filter_map(|record| record.unwrap().decode::<CountryRecord<'_>>().unwrap())
            .filter(|record| record.code().is_some())
            .count();
        assert!(public > 0, "no records found in 8.8.0.0/16");
    }

    #[test]
    fn geodb_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GeoDb>();
    }
}
