//! The Prometheus/OpenMetrics exporter of nsring: every network namespace's interface
//! counters and packet sockets, as `nsring ls` shows them, served as metrics over HTTP.
//!
//! This crate owns:
//! - [`Select`]: which namespaces a scrape reads (all of the host's, or those named or
//!   matched by the target grammar's namespace part);
//! - [`metrics`]: one scrape: the facts collected with `nsring_registry::host::survey` and
//!   written as OpenMetrics text (prometheus-client), under the metric names and labels that
//!   are nsring's contract (docs/DESIGN.md, "Versioned contracts");
//! - [`Server`]: a small HTTP server (tiny_http) answering `GET /metrics`, one scrape at a
//!   time, so a scrape's cost is bounded by one survey of the host.
//!
//! It must not open capture sockets or change anything on the host, and it never exports a
//! value nobody knows (no 0 that means "unknown").
//!
//! ```no_run
//! use nsring_exporter::{Select, Server, metrics};
//! use nsring_registry::RunDir;
//!
//! // one scrape, as text
//! let scrape = metrics::collect(&Select::all(), &RunDir::new())?;
//! print!("{}", metrics::render(scrape));
//!
//! // or serve them until stopped
//! let server = Server::bind("127.0.0.1:19911".parse()?, Select::all(), RunDir::new())?;
//! server.serve()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod metrics;
mod select;
mod serve;

pub use select::Select;
pub use serve::{Error, Server, Stopper};

/// The address `nsring exporter` listens on unless told otherwise: loopback only. The port
/// is outside 9100-9999, the range the Prometheus project hands out to exporters, which is
/// fully allocated: any port there is some other exporter's default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:19911";
