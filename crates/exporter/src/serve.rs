//! The HTTP side: `GET /metrics` runs one scrape and answers with its text.

use std::net::SocketAddr;
use std::sync::Arc;

use nsring_registry::RunDir;
use tiny_http::{Header, Method, Request, Response};

use crate::metrics::{self, CONTENT_TYPE};
use crate::select::Select;

/// Errors of the exporter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be made.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why (address in use, no permission, ...).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The host's namespaces could not be read at all.
    #[error(transparent)]
    Host(#[from] nsring_registry::host::Error),
}

/// The exporter's HTTP server: requests are answered one at a time, on the thread that
/// calls [`Server::serve`], so two scrapes never run at once.
pub struct Server {
    http: Arc<tiny_http::Server>,
    select: Select,
    run: RunDir,
}

/// Stops a [`Server::serve`] from another thread (a signal handler's, say).
#[derive(Clone)]
pub struct Stopper(Arc<tiny_http::Server>);

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr())
            .field("select", &self.select)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stopper").finish_non_exhaustive()
    }
}

impl Stopper {
    /// Makes `serve` return once the request in hand, if any, is answered.
    pub fn stop(&self) {
        self.0.unblock();
    }
}

impl Server {
    /// Listens on `addr` (port 0: one the kernel picks; see [`Server::local_addr`]).
    pub fn bind(addr: SocketAddr, select: Select, run: RunDir) -> Result<Server, Error> {
        let http = tiny_http::Server::http(addr).map_err(|source| Error::Bind { addr, source })?;
        Ok(Server {
            http: Arc::new(http),
            select,
            run,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.http
            .server_addr()
            .to_ip()
            .expect("bound to an IP address")
    }

    /// A handle that stops [`Server::serve`].
    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.http))
    }

    /// Answers requests until stopped: `GET /metrics` with a scrape, `GET /` with a page
    /// that points there, anything else with 404 or 405. A client that goes away while
    /// answered is no error of the exporter's.
    pub fn serve(&self) -> Result<(), Error> {
        for req in self.http.incoming_requests() {
            let resp = self.answer(&req);
            let _ = req.respond(resp);
        }
        Ok(())
    }

    fn answer(&self, req: &Request) -> Response<std::io::Cursor<Vec<u8>>> {
        let path = req.url().split('?').next().unwrap_or_default();
        let get = matches!(req.method(), Method::Get | Method::Head);
        match (path, get) {
            ("/metrics", true) => match metrics::collect(&self.select, &self.run) {
                Ok(scrape) => text(200, CONTENT_TYPE, metrics::render(scrape)),
                Err(e) => text(500, "text/plain; charset=utf-8", chain(&e)),
            },
            ("/", true) => text(
                200,
                "text/html; charset=utf-8",
                format!(
                    "<html><head><title>nsring exporter</title></head><body>\
                     <h1>nsring exporter</h1><p>Namespaces: {}</p>\
                     <p><a href=\"/metrics\">Metrics</a></p></body></html>\n",
                    html_escape(&self.select.to_string())
                ),
            ),
            (_, false) => text(405, "text/plain; charset=utf-8", "GET only\n".into()),
            _ => text(
                404,
                "text/plain; charset=utf-8",
                "not found: try /metrics\n".into(),
            ),
        }
    }
}

fn text(code: u16, content_type: &str, body: String) -> Response<std::io::Cursor<Vec<u8>>> {
    let header = Header::from_bytes("Content-Type", content_type).expect("a valid header");
    Response::from_data(body.into_bytes())
        .with_status_code(code)
        .with_header(header)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s.push('\n');
    s
}
