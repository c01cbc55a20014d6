//! `flowmeter log` says who and where: the local process behind a flow (pid, comm, exe,
//! user), the remote's country from the GeoIP database, the foreign mark against
//! `--home`, and the verdict, for real traffic between two test namespaces.

mod common;

use std::{thread, time::Duration};

use common::{
    Flowmeter,
    scene::{CountryScene, own_comm},
};

const DATAGRAMS: u64 = 12;
const PAYLOAD: usize = 64;

#[test]
fn a_flow_names_its_process_country_and_foreign_mark() {
    let scene = CountryScene::new();
    let (pair, db, remote) = (&scene.pair, &scene.db, scene.remote);
    let local = scene.sender.local_addr().expect("sender address");

    let args = format!(
        "--iface {} --interval 0.2 --geoip {} --home de",
        pair.a_if,
        db.display()
    );
    let flowmeter = Flowmeter::start_log(&pair.a, &args);
    for _ in 0..DATAGRAMS {
        scene.sender.send_to(&[7; PAYLOAD], remote).expect("send");
    }
    // Keep the socket open while flowmeter attributes the flow.
    thread::sleep(Duration::from_millis(700));
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "flowmeter failed: {finished:?}");
    drop(scene.receiver);

    let log = finished.log();
    let start = &log.of_type("start")[0];
    assert!(
        start["geoip"]
            .as_str()
            .unwrap_or("")
            .contains(&*db.to_string_lossy()),
        "start record names the database: {start}"
    );
    let records: Vec<&serde_json::Value> = log
        .of_type("flow")
        .into_iter()
        .filter(|f| f["proto"] == "udp" && f["local_port"] == local.port())
        .collect();
    assert!(
        !records.is_empty(),
        "no flow for {local}: {:?}",
        log.flows()
    );
    let sent: u64 = records
        .iter()
        .map(|f| f["tx_packets"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, DATAGRAMS);
    for flow in records {
        assert_eq!(flow["remote_ip"], remote.ip().to_string(), "{flow}");
        assert_eq!(flow["country"], "NL", "{flow}");
        assert_eq!(flow["foreign"], true, "{flow}");
        assert_eq!(flow["owner"], "process", "{flow}");
        assert_eq!(flow["pid"], std::process::id(), "{flow}");
        assert_eq!(flow["comm"], own_comm(), "{flow}");
        assert_eq!(flow["user"], "root", "{flow}");
        let exe = std::env::current_exe().expect("test executable");
        assert_eq!(flow["exe"], exe.display().to_string(), "{flow}");
        // A test binary built under /tmp (a clone there) runs from a temporary directory:
        // the rules rightly call that suspicious.
        let expected = match flowmeter::enrich::verdict::temp_dir(&exe) {
            Some(_) => "suspicious",
            None => "business",
        };
        assert_eq!(flow["verdict"], expected, "{flow}");
        let reasons = flow["reasons"].to_string();
        assert!(
            reasons.contains("NL"),
            "the foreign mark says where: {flow}"
        );
    }
}
