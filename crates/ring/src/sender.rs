//! [`Sender`]: the simplest transmit path, one `send(2)` per frame on a packet socket
//! bound to an interface of a namespace. For tests and low rates; the TX ring comes later.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use netns::NetNs;

use crate::capture::ifindex_here;
use crate::config::validate_ifname;
use crate::error::{Error, Result};
use crate::sys;

/// A packet socket that sends whole link-layer frames and receives nothing.
#[derive(Debug)]
pub struct Sender {
    fd: OwnedFd,
    ifindex: u32,
}

impl Sender {
    /// Opens a sender on `interface` of `ns`.
    pub fn open(ns: &NetNs, interface: &str) -> Result<Sender> {
        validate_ifname(interface)?;
        let nsname = ns.spec().to_string();
        ns.run(|| {
            let ifindex = ifindex_here(interface, &nsname)?;
            let fd = sys::packet_socket().map_err(|e| Error::sys("socket(AF_PACKET)", "", e))?;
            // protocol 0: bound for sending, hooked for receiving nothing
            sys::bind_packet(fd.as_fd(), 0, ifindex)
                .map_err(|e| Error::sys("bind", interface, e))?;
            Ok(Sender { fd, ifindex })
        })?
    }

    /// Sends one frame (link-layer header included) as is.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        let n = sys::send(self.fd.as_fd(), frame)
            .map_err(|e| Error::sys("send", "packet socket", e))?;
        if n != frame.len() {
            return Err(Error::sys(
                "send",
                format!("{n} of {} bytes", frame.len()),
                std::io::Error::from_raw_os_error(libc::EMSGSIZE),
            ));
        }
        Ok(())
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
}

impl AsFd for Sender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
