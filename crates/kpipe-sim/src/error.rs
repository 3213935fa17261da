//! The simulator's error type.

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Binding the listening socket on 127.0.0.1 failed.
    #[error("cannot bind the simulator to 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The configured JWT-bearer public key is not a PEM RSA public key.
    #[error("invalid JWT-bearer public key: {0}")]
    PublicKey(String),
    /// A knob has a value that cannot work (e.g. a latency range whose minimum exceeds its maximum).
    #[error("invalid simulator configuration: {0}")]
    Config(String),
}
