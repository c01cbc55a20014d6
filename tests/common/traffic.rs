//! Known traffic between the ends of a veth pair: UDP datagrams that all arrive, and TCP
//! transfers of a known size that close cleanly (FIN both ways), at once or paced, from
//! `a` to `b` or back.

use std::{
    io::{self, Read, Write},
    net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket},
    thread,
    time::{Duration, Instant},
};

use super::netns::{Netns, VethPair};

/// Longest wait for any socket operation.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `count` datagrams of `payload` bytes and receives every one of them.
pub fn send_datagrams(from: &UdpSocket, to: &UdpSocket, count: usize, payload: usize) {
    let to_addr = to.local_addr().unwrap();
    let from_addr = from.local_addr().unwrap();
    for n in 0..count {
        let sent = from
            .send_to(&vec![n as u8; payload], to_addr)
            .expect("sending a datagram");
        assert_eq!(sent, payload);
    }
    to.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buffer = [0; 2048];
    for n in 0..count {
        let (len, source) = to
            .recv_from(&mut buffer)
            .unwrap_or_else(|e| panic!("datagram {n} of {count} {from_addr} -> {to_addr}: {e}"));
        assert_eq!((len, source), (payload, from_addr));
    }
}

/// Sends `size` bytes over TCP from a client in `a` to a server in `b`, then both
/// close cleanly. Returns (client address, server address).
pub fn tcp_transfer(pair: &VethPair, size: usize) -> (SocketAddr, SocketAddr) {
    tcp_paced(pair, size, 1, Duration::ZERO)
}

/// Like [`tcp_transfer`], from a client in `b` to a server in `a`.
pub fn tcp_transfer_to_a(pair: &VethPair, size: usize) -> (SocketAddr, SocketAddr) {
    tcp_between(&pair.b, &pair.a, pair.a_ip, size, 1, Duration::ZERO)
}

/// Like [`tcp_transfer`], in `chunks` writes of `chunk` bytes with `gap` after each but
/// the last: a flow that lasts about `chunks - 1` gaps.
pub fn tcp_paced(
    pair: &VethPair,
    chunk: usize,
    chunks: usize,
    gap: Duration,
) -> (SocketAddr, SocketAddr) {
    tcp_between(&pair.a, &pair.b, pair.b_ip, chunk, chunks, gap)
}

/// The paced transfer from a client in `client` to a server at `server_ip` in `server`.
fn tcp_between(
    client: &Netns,
    server: &Netns,
    server_ip: IpAddr,
    chunk: usize,
    chunks: usize,
    gap: Duration,
) -> (SocketAddr, SocketAddr) {
    let listener = server
        .run(move || TcpListener::bind((server_ip, 0)))
        .expect("TCP listener");
    let server_addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || -> io::Result<u64> {
        let mut stream = accept(&listener)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        let received = io::copy(&mut stream, &mut io::sink())?;
        // Dropping the stream closes b's side after a's FIN arrived.
        Ok(received)
    });

    let mut client = client
        .run(move || TcpStream::connect_timeout(&server_addr, IO_TIMEOUT))
        .expect("connecting to the server");
    client.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    client.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    for n in 0..chunks {
        client
            .write_all(&vec![0x5a; chunk])
            .expect("sending the transfer");
        if n + 1 < chunks {
            thread::sleep(gap);
        }
    }
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("waiting for the server to close");
    assert!(rest.is_empty(), "the server sends nothing");
    let client_addr = client.local_addr().unwrap();
    drop(client);

    let received = server
        .join()
        .expect("server thread")
        .expect("server side of the transfer");
    assert_eq!(
        received,
        (chunk * chunks) as u64,
        "bytes the server received"
    );
    (client_addr, server_addr)
}

/// `accept` that gives up after [`IO_TIMEOUT`].
fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}
