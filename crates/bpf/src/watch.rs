//! Watching one interface for going away or down: a route-netlink socket in its namespace,
//! subscribed to link events (`RTNLGRP_LINK`), read when poll(2) says so. A count in the
//! kernel has no socket that would see the interface vanish, so this is how it learns.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// `RTMGRP_LINK` (include/uapi/linux/rtnetlink.h).
const RTMGRP_LINK: u32 = 1;

/// What happened to the watched interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Administratively up.
    Up,
    /// Set down (the capture ring stops there too).
    Down,
    /// Deleted, or moved to another namespace.
    Gone,
}

/// A link-event subscription in the calling thread's namespace (create it inside the
/// namespace; it keeps listening there from any thread).
#[derive(Debug)]
pub struct LinkWatch {
    sock: Socket,
    ifindex: u32,
}

impl LinkWatch {
    /// Subscribes to the link events of the calling thread's namespace.
    pub fn open_here(ifindex: u32) -> io::Result<LinkWatch> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        sock.set_non_blocking(true)?;
        Ok(LinkWatch { sock, ifindex })
    }

    /// Reads the pending events: `Some(state)` if one concerned our interface (the last
    /// one wins), `None` if nothing did. If events were lost (the socket overran), asks
    /// the kernel for the interface's state instead.
    pub fn poll_events(&mut self) -> io::Result<Option<LinkState>> {
        let mut state = None;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match self.sock.recv(&mut &mut buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(state),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return self.ask().map(Some);
                }
                Err(e) => return Err(e),
            };
            if let Some(s) = self.parse(&buf[..n]) {
                state = Some(s);
            }
        }
    }

    fn parse(&self, mut data: &[u8]) -> Option<LinkState> {
        let mut state = None;
        while !data.is_empty() {
            let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(data) else {
                break;
            };
            let len = (msg.header.length as usize + 3) & !3;
            if len == 0 {
                break;
            }
            data = data.get(len..).unwrap_or_default();
            match msg.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m))
                    if m.header.index == self.ifindex =>
                {
                    state = Some(LinkState::Gone);
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m))
                    if m.header.index == self.ifindex =>
                {
                    state = Some(up_or_down(&m));
                }
                _ => {}
            }
        }
        state
    }

    /// Asks the kernel for the interface's state now (after lost events, or to tell a
    /// deletion in progress from a plain "down").
    pub fn ask(&mut self) -> io::Result<LinkState> {
        // Through the subscribed socket: one made now would be in the calling thread's
        // namespace, which may not be the interface's.
        let mut msg = LinkMessage::default();
        msg.header.index = self.ifindex;
        let mut packet = NetlinkMessage::from(RouteNetlinkMessage::GetLink(msg));
        packet.header.flags = netlink_packet_core::NLM_F_REQUEST;
        packet.header.sequence_number = 1;
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send_to(&out, &SocketAddr::new(0, 0), 0)?;
        let mut buf = vec![0u8; 1 << 16];
        for _ in 0..64 {
            let n = match self.sock.recv(&mut &mut buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_readable(self.sock.as_fd())?;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) => return Err(e),
            };
            let mut data = &buf[..n];
            while !data.is_empty() {
                let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(data) else {
                    break;
                };
                let len = (msg.header.length as usize + 3) & !3;
                if len == 0 {
                    break;
                }
                data = data.get(len..).unwrap_or_default();
                match msg.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m))
                        if msg.header.sequence_number == 1 && m.header.index == self.ifindex =>
                    {
                        return Ok(up_or_down(&m));
                    }
                    NetlinkPayload::Error(e) if msg.header.sequence_number == 1 => {
                        return match e.code {
                            Some(_) => Ok(LinkState::Gone),
                            None => Ok(LinkState::Up),
                        };
                    }
                    _ => {}
                }
            }
        }
        Ok(LinkState::Up)
    }
}

fn up_or_down(m: &LinkMessage) -> LinkState {
    if m.header.flags.contains(LinkFlags::Up) {
        LinkState::Up
    } else {
        LinkState::Down
    }
}

fn wait_readable(fd: BorrowedFd<'_>) -> io::Result<()> {
    nsring_capture::sys::poll_ready(fd, None, 1000).map(drop)
}

impl AsFd for LinkWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
