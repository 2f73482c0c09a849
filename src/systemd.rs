//! Talking to systemd when it runs the pod as a `Type=notify` unit: readiness once the
//! pod listens and its workers run, a watchdog ping while the store still commits,
//! and "stopping" on shutdown. Outside systemd (no `NOTIFY_SOCKET`) all of it is a
//! no-op.
//!
//! The protocol is sd_notify(3): one datagram of `KEY=value` lines to the Unix socket
//! named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tokio::sync::watch;

/// Sends `state` (e.g. `READY=1`) to systemd; false when not under systemd or the send
/// failed (which is logged once at `debug`: the pod runs on without it).
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let sent = (|| -> std::io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            socket.send_to(state.as_bytes(), std::path::Path::new(&path))?;
        }
        Ok(())
    })();
    if let Err(e) = &sent {
        tracing::debug!("systemd notification {state:?} not sent: {e}");
    }
    sent.is_ok()
}

/// The watchdog interval systemd asks for (`WATCHDOG_USEC`, for this process), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the watchdog at half its interval for as long as `alive` answers true within
/// that time (the caller checks that the store still commits), until `stopped`.
/// A pod whose store hangs stops pinging, and systemd restarts it.
pub async fn keep_watchdog<F, Fut>(mut stopped: watch::Receiver<bool>, alive: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let every = interval / 2;
    loop {
        match tokio::time::timeout(every, alive()).await {
            Ok(true) => {
                notify("WATCHDOG=1");
            }
            Ok(false) => tracing::error!("watchdog: the store does not commit; not telling systemd we are alive"),
            Err(_) => tracing::error!("watchdog: the store did not commit within {every:?}"),
        }
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket_named_by_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        // The variable is process-wide: this is the only test that sets it.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify("READY=1\nSTATUS=serving"));
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
        std::env::remove_var("NOTIFY_SOCKET");
        assert!(!notify("READY=1"), "outside systemd nothing is sent");
    }
}
