//! Free local ports for the services a test or harness starts.
//!
//! Why here: the system tests, the bench and the bank checker all start the
//! real services on ports of their own; one helper asks the kernel for them.

use std::net::SocketAddr;

/// A loopback address on a port the kernel just reported free.
///
/// The port is released before it is used, so another process could take it
/// in between; on a test machine that race is rare enough to accept.
pub fn try_free_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
}

/// [`try_free_addr`] for tests, where no free port is a broken machine.
pub fn free_addr() -> SocketAddr {
    try_free_addr().expect("a free port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addresses_are_loopback_with_a_port() {
        let a = free_addr();
        assert!(a.ip().is_loopback());
        assert_ne!(a.port(), 0);
    }
}
