//! Errors of the daemon library: each names what it was doing and on which path.

use std::io;
use std::path::PathBuf;

/// Why the daemon could not start or reload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listening socket could not be set up.
    #[error("listener {listener}: {what} {}", path.display())]
    Listen {
        /// Listener name.
        listener: String,
        /// The step that failed (`bind`, `chmod`, `chown`, `rename`, ...).
        what: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The socket path is served by a live process: we do not steal it.
    #[error("listener {listener}: {} is in use by a running server", path.display())]
    InUse {
        /// Listener name.
        listener: String,
        /// The socket path.
        path: PathBuf,
    },
    /// Something other than a socket is at the socket path: we do not delete it.
    #[error("listener {listener}: {} exists and is not a socket", path.display())]
    NotASocket {
        /// Listener name.
        listener: String,
        /// The path.
        path: PathBuf,
    },
    /// Socket activation handed us something unusable.
    #[error("socket activation: {detail}")]
    Activation {
        /// Which descriptor or variable.
        detail: String,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// A file could not be read or opened.
    #[error("{what} {}", path.display())]
    File {
        /// The operation (`read`, `open audit log`, ...).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The policy or gate configuration is invalid.
    #[error("{}: {message}", path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "embedded policy".into()))]
    Config {
        /// The file, when there is one.
        path: Option<PathBuf>,
        /// What is wrong, with line and column when the parser gives them.
        message: String,
    },
    /// `--owner USER:GROUP` names an unknown user or group.
    #[error("owner {spec:?}: {message}")]
    Owner {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// The metrics endpoint could not be set up.
    #[error("metrics endpoint {addr}: {what}")]
    Metrics {
        /// The address as given.
        addr: String,
        /// What failed.
        what: String,
        /// The underlying failure.
        #[source]
        source: Option<io::Error>,
    },
    /// The identifier could not be set up.
    #[error("identifier")]
    Identifier(#[source] callerid::Error),
    /// Another I/O failure.
    #[error("{what}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
}
