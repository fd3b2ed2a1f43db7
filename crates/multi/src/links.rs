//! The interfaces of one namespace, followed: a route-netlink socket opened inside it,
//! subscribed to link notifications (`RTMGRP_LINK`) before it asks for the full list, so no
//! change falls between the list and the notifications. Read without blocking from the
//! session's event loop; a lost notification (the socket's buffer overran) starts a new
//! full list.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nsring_netns::{NetNs, NsSpec};

use crate::{Error, Result};

/// `RTMGRP_LINK` (include/uapi/linux/rtnetlink.h).
const RTMGRP_LINK: u32 = 1;
/// Room for a burst of notifications (many interfaces made or moved at once).
const RCVBUF: usize = 1 << 20;

/// One interface as a notification or the list describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Its ifindex.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// `ARPHRD_*`.
    pub link_type: u16,
    /// `IFF_UP`.
    pub up: bool,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The interface exists (new, changed, or listed).
    Present(LinkInfo),
    /// The interface is gone: removed, or moved to another namespace.
    Gone(u32),
    /// A full list ended: these indexes are every interface there is.
    Listed(Vec<u32>),
}

/// The link socket of one namespace.
#[derive(Debug)]
pub struct LinkWatch {
    sock: Socket,
    seq: u32,
    /// The sequence number of the list being received, and what it has shown.
    listing: Option<(u32, Vec<u32>)>,
    /// Ask again once the current list is done (it was interrupted).
    again: bool,
}

/// Room for one netlink datagram; one buffer serves every namespace's socket.
pub const READ_BUF: usize = 64 << 10;

impl LinkWatch {
    /// Opens the socket inside `ns`, subscribes, and asks for the full list (the answer
    /// comes through [`LinkWatch::read`] like any notification).
    pub fn open(ns: &NetNs) -> Result<LinkWatch> {
        fn socket() -> io::Result<Socket> {
            let mut sock = Socket::new(NETLINK_ROUTE)?;
            sock.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
            Ok(sock)
        }
        let here = matches!(ns.spec(), NsSpec::Current)
            || NetNs::current().is_ok_and(|cur| cur.same_as(ns));
        let sock = if here { socket() } else { ns.run(socket)? }
            .map_err(|e| Error::sys("socket(NETLINK_ROUTE)", ns.spec().to_string(), e))?;
        let _ = sock.set_rx_buf_sz(RCVBUF);
        sock.set_non_blocking(true)
            .map_err(|e| Error::sys("fcntl O_NONBLOCK", "netlink", e))?;
        let mut w = LinkWatch {
            sock,
            seq: 0,
            listing: None,
            again: false,
        };
        w.request_list()?;
        Ok(w)
    }

    /// Asks for the full list of interfaces.
    fn request_list(&mut self) -> Result<()> {
        if self.listing.is_some() {
            self.again = true;
            return Ok(());
        }
        self.seq = self.seq.wrapping_add(1);
        let mut packet = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::GetLink(LinkMessage::default())),
        );
        packet.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|e| Error::sys("send RTM_GETLINK", "", e))?;
        self.listing = Some((self.seq, Vec::new()));
        Ok(())
    }

    /// Reads everything that is waiting, without blocking, into `out`; `buf` is scratch
    /// room (give it a capacity of [`READ_BUF`]).
    pub fn read(&mut self, buf: &mut Vec<u8>, out: &mut Vec<LinkEvent>) -> Result<()> {
        if buf.capacity() < READ_BUF {
            buf.reserve(READ_BUF);
        }
        loop {
            buf.clear();
            match self.sock.recv(buf, 0) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // notifications were lost: the list tells what there is now
                    self.request_list()?;
                    continue;
                }
                Err(e) => return Err(Error::sys("recv", "netlink link notifications", e)),
            }
            self.parse(buf, out)?;
        }
    }

    fn parse(&mut self, data: &[u8], out: &mut Vec<LinkEvent>) -> Result<()> {
        let mut offset = 0;
        while offset < data.len() {
            let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
            else {
                break;
            };
            let len = msg.header.length as usize;
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3;
            let ours = self
                .listing
                .as_ref()
                .is_some_and(|(s, _)| *s == msg.header.sequence_number);
            if ours && msg.header.flags & NLM_F_DUMP_INTR != 0 {
                self.again = true;
            }
            match msg.payload {
                // A notification while a list comes counts as much as the list: an
                // interface made after the list passed it is there all the same.
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                    let info = link_info(&m);
                    if let Some((_, seen)) = self.listing.as_mut() {
                        seen.push(info.index);
                    }
                    out.push(LinkEvent::Present(info));
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                    if let Some((_, seen)) = self.listing.as_mut() {
                        seen.retain(|&i| i != m.header.index);
                    }
                    out.push(LinkEvent::Gone(m.header.index));
                }
                NetlinkPayload::Done(_) | NetlinkPayload::Error(_) if ours => {
                    let (_, seen) = self.listing.take().unwrap_or_default();
                    if std::mem::take(&mut self.again) {
                        self.request_list()?;
                    } else {
                        out.push(LinkEvent::Listed(seen));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl AsFd for LinkWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

fn link_info(m: &LinkMessage) -> LinkInfo {
    let name = m
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default();
    LinkInfo {
        index: m.header.index,
        name,
        link_type: u16::from(m.header.link_layer_type),
        up: m.header.flags.contains(LinkFlags::Up),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_route::link::{LinkHeader, LinkLayerType};

    fn message(payload: RouteNetlinkMessage, seq: u32, flags: u16) -> Vec<u8> {
        let mut m = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(payload));
        m.header.sequence_number = seq;
        m.header.flags = flags;
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    fn link(index: u32, name: &str, t: LinkLayerType) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header = LinkHeader {
            index,
            link_layer_type: t,
            flags: LinkFlags::Up,
            ..LinkHeader::default()
        };
        m.attributes = vec![LinkAttribute::IfName(name.into())];
        let mut b = vec![0; m.buffer_len()];
        m.emit(&mut b);
        m
    }

    /// A list (two links, then done) with a notification in between, parsed from bytes.
    #[test]
    fn list_and_notifications() {
        let Ok(sock) = Socket::new(NETLINK_ROUTE) else {
            return; // no netlink here: nothing to parse into
        };
        let mut w = LinkWatch {
            sock,
            seq: 7,
            listing: Some((7, Vec::new())),
            again: false,
        };
        let mut bytes = message(
            RouteNetlinkMessage::NewLink(link(1, "lo", LinkLayerType::Loopback)),
            7,
            0,
        );
        bytes.extend(message(
            RouteNetlinkMessage::DelLink(link(9, "old", LinkLayerType::Ether)),
            0,
            0,
        ));
        bytes.extend(message(
            RouteNetlinkMessage::NewLink(link(4, "veth0", LinkLayerType::Ether)),
            7,
            0,
        ));
        // made after the list passed it: notified, not listed, but there
        bytes.extend(message(
            RouteNetlinkMessage::NewLink(link(5, "veth1", LinkLayerType::Ether)),
            0,
            0,
        ));
        let mut out = Vec::new();
        w.parse(&bytes, &mut out).unwrap();
        let mut done = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::<RouteNetlinkMessage>::Done(Default::default()),
        );
        done.header.sequence_number = 7;
        done.finalize();
        let mut d = vec![0; done.buffer_len()];
        done.serialize(&mut d);
        w.parse(&d, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                LinkEvent::Present(LinkInfo {
                    index: 1,
                    name: "lo".into(),
                    link_type: 772,
                    up: true
                }),
                LinkEvent::Gone(9),
                LinkEvent::Present(LinkInfo {
                    index: 4,
                    name: "veth0".into(),
                    link_type: 1,
                    up: true
                }),
                LinkEvent::Present(LinkInfo {
                    index: 5,
                    name: "veth1".into(),
                    link_type: 1,
                    up: true
                }),
                LinkEvent::Listed(vec![1, 4, 5]),
            ]
        );
        assert!(w.listing.is_none());
    }
}
