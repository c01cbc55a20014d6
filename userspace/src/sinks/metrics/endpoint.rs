//! The HTTP endpoint (`tiny_http`) on a thread of its own: `GET /metrics` answers with
//! the text the metering thread last published (`Endpoint::publish`), then the
//! `process_*` metrics of this moment (`process.rs`), then `# EOF`. The two threads
//! share only the pointer to the latest text.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    thread::{self, JoinHandle},
};

use tiny_http::{Header, Method, Request, Response, Server};

use super::process;

/// OpenMetrics 1.0, which Prometheus asks for first and `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The listening endpoint; dropping it stops the thread.
pub struct Endpoint {
    server: Arc<Server>,
    latest: Arc<Mutex<Arc<str>>>,
    address: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Listens on `address` and serves from a new thread.
    pub fn serve(address: SocketAddr) -> io::Result<Self> {
        let server = Server::http(address).map_err(io::Error::other)?;
        let address = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("not an IP listener"))?;
        let server = Arc::new(server);
        let latest: Arc<Mutex<Arc<str>>> = Arc::new(Mutex::new(Arc::from("")));
        let thread = thread::Builder::new().name("metrics".into()).spawn({
            let (server, latest) = (server.clone(), latest.clone());
            move || {
                for request in server.incoming_requests() {
                    let text = latest
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    // A client that went away is its own business.
                    let _ = answer(request, &text);
                }
            }
        })?;
        Ok(Self {
            server,
            latest,
            address,
            thread: Some(thread),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Makes `text` (families without `# EOF`) the answer to the next scrapes.
    pub fn publish(&self, text: String) {
        let text: Arc<str> = Arc::from(text);
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = text;
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `/metrics` for GET and HEAD; 404 for any other path, 405 for other methods.
fn answer(request: Request, published: &str) -> io::Result<()> {
    let path = request.url().split('?').next().unwrap_or("");
    if path != "/metrics" {
        return request
            .respond(Response::from_string("not found; try /metrics\n").with_status_code(404));
    }
    if !matches!(request.method(), Method::Get | Method::Head) {
        return request.respond(Response::from_string("GET /metrics\n").with_status_code(405));
    }
    let mut body = String::with_capacity(published.len() + 1024);
    body.push_str(published);
    let _ = process::encode(&mut body);
    body.push_str("# EOF\n");
    let content_type = Header::from_bytes("Content-Type", CONTENT_TYPE).expect("a valid header");
    request.respond(Response::from_string(body).with_header(content_type))
}
