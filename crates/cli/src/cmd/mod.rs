//! One module per subcommand. Each has `Args` (clap derive, parsed without touching the
//! system) and `run(Args) -> anyhow::Result<ExitCode>`, which resolves the arguments into a plan
//! (namespaces opened, interfaces looked up) and carries it out.

pub mod bridge;
pub mod completions;
pub mod count;
pub mod count_kernel;
pub mod demo;
pub mod devs;
pub mod dump;
pub mod exporter;
pub mod extcap;
pub mod latency;
pub mod link;
pub mod ls;
pub mod ls_kernel;
pub mod man;
pub mod mount;
pub mod netns;
pub mod send;
