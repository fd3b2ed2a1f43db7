//! Unit tests of link parsing: messages emitted to bytes and parsed back.

use super::*;
use netlink_packet_core::{Emitable, Parseable};
use netlink_packet_route::link::{LinkHeader, LinkLayerType};

#[test]
fn ifname_rules() {
    for ok in ["eth0", "veth-a", "a", "x".repeat(15).as_str(), "br.10"] {
        validate_ifname(ok).unwrap();
    }
    for bad in ["", ".", "..", "a/b", "a:b", "a b", "a\tb", "a\0"] {
        assert!(validate_ifname(bad).is_err(), "{bad:?} accepted");
    }
    let long = "x".repeat(16);
    let err = validate_ifname(&long).unwrap_err().to_string();
    assert!(err.contains("is longer than 15 bytes"), "{err}");
    assert!(err.contains(&long), "{err}");
}

#[test]
fn mac_format() {
    assert_eq!(
        format_mac(&[0x02, 0xab, 0, 1, 0xff, 0x10]),
        "02:ab:00:01:ff:10"
    );
}

/// A veth as the kernel reports it when its peer is in another namespace: the message is
/// emitted to bytes and parsed back, then turned into a `Link`.
#[test]
fn veth_message_round_trip() {
    let mut msg = LinkMessage::default();
    msg.header = LinkHeader {
        interface_family: AddressFamily::Unspec,
        index: 25,
        link_layer_type: LinkLayerType::Ether,
        flags: LinkFlags::Up | LinkFlags::Broadcast | LinkFlags::LowerUp,
        change_mask: LinkFlags::empty(),
    };
    msg.attributes = vec![
        LinkAttribute::IfName("veth-a".into()),
        LinkAttribute::Mtu(1500),
        LinkAttribute::Address(vec![0x02, 0, 0, 0, 0, 0x01]),
        LinkAttribute::OperState(State::LowerLayerDown),
        LinkAttribute::Promiscuity(1),
        LinkAttribute::NumRxQueues(2),
        LinkAttribute::NumTxQueues(3),
        LinkAttribute::Link(12),
        LinkAttribute::LinkNetNsId(3),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        LinkAttribute::Stats64(stats64()),
    ];
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    let parsed = LinkMessage::parse(&buf[..]).unwrap();
    let (link, peer) = parse_link(&parsed);
    assert_eq!(link.index, 25);
    assert_eq!(link.name, "veth-a");
    assert_eq!(link.kind.as_deref(), Some("veth"));
    assert_eq!(link.mac.as_deref(), Some("02:00:00:00:00:01"));
    assert_eq!(link.mtu, 1500);
    assert!(link.admin_up);
    assert_eq!(link.oper_state, "lowerlayerdown");
    assert_eq!(link.link_type, 1);
    assert_eq!(
        (link.promiscuity, link.num_rx_queues, link.num_tx_queues),
        (1, 2, 3)
    );
    let st = link.stats.expect("IFLA_STATS64 parsed");
    assert_eq!((st.rx_packets, st.tx_packets), (11, 12));
    assert_eq!((st.rx_bytes, st.tx_bytes), (1300, 1400));
    assert_eq!((st.rx_errors, st.tx_errors), (15, 16));
    assert_eq!((st.rx_dropped, st.tx_dropped), (17, 18));
    assert_eq!(st.multicast, 19);
    assert_eq!(
        peer,
        Some(RawPeer {
            owner: 25,
            index: 12,
            netns_id: Some(3)
        })
    );
}

/// `IFLA_LINK` on something that is not a veth (a VLAN's lower device) is not a peer.
#[test]
fn non_veth_link_is_not_a_peer() {
    let mut msg = LinkMessage::default();
    msg.header.index = 4;
    msg.attributes = vec![
        LinkAttribute::IfName("eth0.10".into()),
        LinkAttribute::Link(2),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Vlan)]),
    ];
    let (link, peer) = parse_link(&msg);
    assert_eq!(link.kind.as_deref(), Some("vlan"));
    assert!(!link.admin_up);
    assert_eq!(peer, None);
}

/// Counters with a distinct value in each field, so a swapped field shows.
fn stats64() -> netlink_packet_route::link::Stats64 {
    let mut s = netlink_packet_route::link::Stats64::default();
    s.rx_packets = 11;
    s.tx_packets = 12;
    s.rx_bytes = 1300;
    s.tx_bytes = 1400;
    s.rx_errors = 15;
    s.tx_errors = 16;
    s.rx_dropped = 17;
    s.tx_dropped = 18;
    s.multicast = 19;
    s
}
