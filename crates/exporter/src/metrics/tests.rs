//! The text of a scrape built from views made by hand: names, units, labels, escaping,
//! and nothing for what is not known.

use nsring_netns::link::{Link, LinkStats};
use nsring_registry::NamespaceView;
use nsring_registry::view::{Device, NsId};

use super::{Scrape, render};

fn link(index: u32, name: &str, stats: Option<LinkStats>) -> Link {
    Link {
        index,
        name: name.into(),
        kind: Some("veth".into()),
        mac: None,
        mtu: 1500,
        admin_up: true,
        oper_state: "up".into(),
        link_type: 1,
        promiscuity: 0,
        num_rx_queues: 1,
        num_tx_queues: 1,
        peer: None,
        master: None,
        stats,
    }
}

fn view(label: &str, devices: Vec<Link>) -> NamespaceView {
    NamespaceView {
        namespace: NsId {
            label: label.into(),
            inode: 4026532001,
            cookie: None,
            initial: false,
            container: None,
        },
        devices: devices
            .into_iter()
            .map(|link| Device { link, sockets: 0 })
            .collect(),
        sockets: Vec::new(),
        kernel_sockets: Some(0),
        problems: Vec::new(),
        removed_stale: Vec::new(),
    }
}

fn stats() -> LinkStats {
    LinkStats {
        rx_packets: 11,
        tx_packets: 12,
        rx_bytes: 1300,
        tx_bytes: 1400,
        rx_dropped: 15,
        tx_dropped: 16,
        rx_errors: 17,
        tx_errors: 18,
        multicast: 19,
    }
}

fn text(views: Vec<NamespaceView>) -> String {
    render(Scrape {
        views,
        failed: vec![("gone".into(), "vanished".into())],
        seconds: 0.25,
    })
}

#[test]
fn interface_counters_with_their_names_units_and_labels() {
    let t = text(vec![view("ns0", vec![link(2, "eth1", Some(stats()))])]);
    let l = r#"{netns="ns0",interface="eth1"}"#;
    for want in [
        format!("nsring_interface_receive_packets_total{l} 11"),
        format!("nsring_interface_transmit_packets_total{l} 12"),
        format!("nsring_interface_receive_bytes_total{l} 1300"),
        format!("nsring_interface_transmit_bytes_total{l} 1400"),
        format!("nsring_interface_receive_drops_total{l} 15"),
        format!("nsring_interface_transmit_drops_total{l} 16"),
        format!("nsring_interface_receive_errors_total{l} 17"),
        format!("nsring_interface_transmit_errors_total{l} 18"),
        format!("nsring_interface_up{l} 1"),
        r#"nsring_netns_info{netns="ns0",inode="4026532001"} 1"#.into(),
        "# TYPE nsring_interface_receive_bytes counter".into(),
        "# UNIT nsring_interface_receive_bytes bytes".into(),
        "nsring_exporter_namespaces 1".into(),
        "nsring_exporter_namespace_failures 1".into(),
        "nsring_exporter_scrape_duration_seconds 0.25".into(),
    ] {
        assert!(t.lines().any(|x| x == want), "no line {want:?} in\n{t}");
    }
    assert!(t.ends_with("# EOF\n"), "{t}");
    assert!(!t.contains("namespace="), "{t}");
}

/// An interface whose counters the kernel did not send has no counter series (no 0 for
/// "unknown"), only its state.
#[test]
fn no_series_for_counters_not_known() {
    let t = text(vec![view("ns0", vec![link(3, "tun0", None)])]);
    assert!(!t.contains("_total{"), "{t}");
    assert!(
        t.contains(r#"nsring_interface_up{netns="ns0",interface="tun0"} 1"#),
        "{t}"
    );
    // no socket at all: no socket family declared either
    assert!(!t.contains("nsring_socket"), "{t}");
}

#[test]
fn label_values_are_escaped() {
    let t = text(vec![view(
        r#"we"ird\ns"#,
        vec![link(2, "eth1", Some(stats()))],
    )]);
    assert!(
        t.contains(
            r#"nsring_interface_receive_packets_total{netns="we\"ird\\ns",interface="eth1"} 11"#
        ),
        "{t}"
    );
}

#[test]
fn a_containers_namespace_carries_its_container() {
    let mut v = view("podman:web1", vec![link(2, "eth0", Some(stats()))]);
    v.namespace.container = Some("podman:web1".into());
    let t = text(vec![v]);
    assert!(
        t.contains(
            r#"nsring_interface_receive_packets_total{netns="podman:web1",container="podman:web1",interface="eth0"} 11"#
        ),
        "{t}"
    );
}
