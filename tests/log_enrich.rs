//! `flowmeter log` says who and where: the local process behind a flow (pid, comm, exe,
//! user), the remote's country from the GeoIP database, the foreign mark against
//! `--home`, and the verdict, for real traffic between two test namespaces; and a site
//! database's country for a private remote it maps, "local" for one it does not.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket},
    thread,
    time::Duration,
};

use common::{
    Flowmeter,
    geo::write_country_db,
    netns::{Family, MAC_B, VethPair},
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

#[test]
fn a_site_database_locates_the_private_remotes_it_maps() {
    // a (10.99.0.1) sends to b at 10.99.0.2, which the site database puts in CH, and at
    // 172.16.99.2, a private range it has no record for.
    let pair = VethPair::new(Family::V4);
    let mapped = pair.b_ip;
    let unmapped = IpAddr::V4(Ipv4Addr::new(172, 16, 99, 2));
    pair.b
        .ip(&format!("addr add {unmapped}/32 dev {}", pair.b_if));
    pair.a
        .ip(&format!("route add {unmapped}/32 dev {}", pair.a_if));
    pair.a.ip(&format!(
        "neigh add {unmapped} lladdr {MAC_B} dev {} nud permanent",
        pair.a_if
    ));
    let db = write_country_db(&[("10.99.0.0/16", "CH"), ("198.51.100.0/24", "NL")]);
    let remotes = [mapped, unmapped].map(|ip| SocketAddr::new(ip, 9000));
    let _receivers =
        remotes.map(|remote| pair.b.run(|| UdpSocket::bind(remote).expect("bind in b")));
    let sender = pair
        .a
        .run(|| UdpSocket::bind((pair.a_ip, 0)).expect("bind in a"));

    let args = format!(
        "--iface {} --interval 0.2 --geoip {}",
        pair.a_if,
        db.display()
    );
    let flowmeter = Flowmeter::start_log(&pair.a, &args);
    for remote in remotes {
        for _ in 0..DATAGRAMS {
            sender.send_to(&[7; PAYLOAD], remote).expect("send");
        }
    }
    thread::sleep(Duration::from_millis(700));
    let finished = flowmeter.stop();
    assert!(finished.status.success(), "flowmeter failed: {finished:?}");

    let log = finished.log();
    let flows = log.of_type("flow");
    let to = |remote: IpAddr| -> Vec<&serde_json::Value> {
        let records: Vec<_> = flows
            .iter()
            .copied()
            .filter(|f| f["proto"] == "udp" && f["remote_ip"] == remote.to_string())
            .collect();
        assert!(!records.is_empty(), "no flow to {remote}: {flows:?}");
        records
    };
    for flow in to(mapped) {
        assert_eq!(flow["country"], "CH", "the database's answer wins: {flow}");
        assert!(flow.get("remote_local").is_none(), "{flow}");
    }
    for flow in to(unmapped) {
        assert!(
            flow.get("country").is_none(),
            "no record, no country: {flow}"
        );
        assert_eq!(flow["remote_local"], true, "{flow}");
    }
}
