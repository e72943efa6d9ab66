//! Free local ports for the services a test or harness starts.
//!
//! Why here: the system tests, the bench and the bank checker all start the
//! real services on ports of their own; one helper finds them.

use std::net::{SocketAddr, TcpListener};

/// Lowest port handed out.
const FLOOR: u16 = 10_000;
/// Ports tried before falling back to one the kernel picks.
const TRIES: usize = 64;

/// A loopback address on a port that was free a moment ago.
///
/// The port is released before the service binds it. A port from
/// `bind(":0")` comes from the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`), where every outgoing connection of the
/// machine also takes its source port: once released, a harness's own
/// client connections could take it first (seen: a chaos run's notifier
/// failed to start with "Address already in use"). So the port is taken
/// below that range, where only another listener can take it, at random so
/// that parallel test processes rarely try the same one.
pub fn try_free_addr() -> std::io::Result<SocketAddr> {
    let ceiling = ephemeral_low().unwrap_or(32_768);
    if ceiling > FLOOR + 1_000 {
        let span = u128::from(ceiling - FLOOR);
        for _ in 0..TRIES {
            let port = FLOOR + (uuid::Uuid::new_v4().as_u128() % span) as u16;
            if let Ok(addr) = TcpListener::bind(("127.0.0.1", port)).and_then(|l| l.local_addr()) {
                return Ok(addr);
            }
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
}

/// The first port of the kernel's ephemeral range, where it says.
fn ephemeral_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
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

    #[test]
    fn free_ports_are_below_the_ephemeral_range() {
        let low = ephemeral_low().unwrap_or(32_768);
        if low <= FLOOR + 1_000 {
            return; // no room below it on this machine: the kernel picks
        }
        for _ in 0..100 {
            let port = free_addr().port();
            assert!((FLOOR..low).contains(&port), "port {port}");
        }
    }
}
