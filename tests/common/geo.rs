//! Small GeoIP databases written by tests (ip-location-db's `country_code` layout).

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use mmdb_writer::{Value, Writer};

/// Writes a database mapping each prefix to its country code, under cargo's scratch
/// directory for integration tests, and returns its path.
pub fn write_country_db(entries: &[(&str, &str)]) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut writer = Writer::new("country ipvAll");
    for (prefix, code) in entries {
        let net: mmdb_writer::ipnet::IpNet = prefix
            .parse()
            .unwrap_or_else(|e| panic!("prefix {prefix}: {e}"));
        writer
            .insert_value(net, Value::map([("country_code", *code)]))
            .expect("insert a test prefix");
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("geo-db");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{}-{n}.mmdb", std::process::id()));
    std::fs::write(&path, writer.to_bytes().expect("serialise the database"))
        .expect("write the test database");
    path
}
