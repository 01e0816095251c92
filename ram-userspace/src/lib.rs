//! ram's userspace: the data path from policy file to log line.
//!
//! policy file → [`policy`] (parse, validate, compile) → [`loader`] (programs
//! attached to cgroups, pinned) and [`kernel`] (rules written to pinned maps)
//! → kernel verdict → [`events`] (ring buffer → log line). [`status`] is what
//! ramd tells ramctl; [`paths`] is where everything lives.

pub mod bpf_calls;
pub mod btf;
pub mod cgroup;
pub mod containers;
pub mod daemon;
pub mod error;
pub mod event_source;
pub mod events;
pub mod features;
pub mod forwarders;
pub mod host;
pub mod journal;
pub mod kernel_log;
pub mod loader;
pub mod log_limit;
pub mod maps;
pub mod metrics;
pub mod netns;
pub mod paths;
pub mod policy;
pub mod programs;
pub mod routes;
pub mod status;
pub mod suggest;
pub mod sys;
pub mod verifier;

pub use error::Error;
/// ramd's and ramctl's command lines (the ram-cli crate: xtask renders them
/// into man pages and completions without building the daemon).
pub use ram_cli as cli;
