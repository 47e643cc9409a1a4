//! Opening client connections from many loopback source addresses.
//!
//! One (source address, destination address, port) triple gives ~28,000 ephemeral ports.
//! Binding each socket to one of several 127.0.0.x addresses with `IP_BIND_ADDRESS_NO_PORT`
//! lets the kernel pick the port at connect time per 4-tuple, so a generator can open far
//! more connections to one server port than one address allows.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

/// The source address for connection number `n`, or None to let the kernel choose
/// (non-loopback targets).
pub fn source_for(target: &SocketAddr, n: usize, spread: u8) -> Option<IpAddr> {
    match target.ip() {
        IpAddr::V4(v4) if v4.is_loopback() && spread > 1 => Some(IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            1 + (n % spread as usize) as u8,
        ))),
        _ => None,
    }
}

/// Connect to `target`, from `source` when given.
pub async fn connect(target: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source {
        bind_address_no_port(&socket);
        socket.bind(SocketAddr::new(src, 0))?;
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Ask the kernel to choose the source port at connect time, not at bind time.
#[allow(unsafe_code)]
fn bind_address_no_port(socket: &TcpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a plain setsockopt on a socket we own, with a pointer to a live c_int and
        // its exact size; no crate in our dependency set exposes this option safely.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            tracing::debug!("IP_BIND_ADDRESS_NO_PORT not available; ports are reserved at bind");
        }
    }
}

/// Raise the soft open-file limit to the hard limit; returns the limit in effect.
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024),
    }
}
