//! `nsring exporter` scraped by a real Prometheus server (root): the test sends a known
//! number of frames through a lab veth pair, then asks Prometheus's HTTP API for the
//! interface counters and finds exactly those numbers; nsring's own socket shows its exact
//! packet count, tcpdump's socket shows with its owner and without the counts the kernel
//! does not tell. Prometheus and the exporter listen on loopback ports the kernel picked,
//! run from a temporary directory, and are stopped (and their ports checked closed) by
//! guards.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nsring_capture::Sender;
use nsring_netns::NetNs;
use serde_json::Value;

mod common;

use common::{NSRING, pair, start};

/// A child stopped with SIGTERM (then killed) and reaped on drop.
struct Guard {
    child: Child,
    what: &'static str,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM: killed", self.what);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nsring exporter` on a loopback port of the kernel's choosing, for namespaces `netns`.
fn exporter(netns: &[&str]) -> (Guard, SocketAddr) {
    let mut cmd = Command::new(NSRING);
    cmd.args(["exporter", "--listen", "127.0.0.1:0"]);
    for n in netns {
        cmd.args(["-n", n]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let guard = Guard {
        child,
        what: "nsring exporter",
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the exporter says where it serves");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("{line}"));
    (guard, addr.parse().unwrap())
}

/// A loopback port that was free a moment ago (Prometheus cannot report one it picked).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server with its own configuration and storage in a temporary directory,
/// scraping `target` every second; the directory is removed on drop.
struct Prometheus {
    guard: Option<Guard>,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    fn start(tag: &str, target: SocketAddr) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("nsrt-prom-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: nsring\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus) is installed");
        let p = Prometheus {
            guard: Some(Guard {
                child,
                what: "prometheus",
            }),
            addr,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(addr, "/-/ready").map(|(code, _)| code) != Some(200) {
            assert!(Instant::now() < deadline, "prometheus never became ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// The samples of an instant query: (labels, value).
    fn query(&self, q: &str) -> Vec<(Value, f64)> {
        let (code, body) = get(self.addr, &format!("/api/v1/query?query={}", encode(q)))
            .expect("prometheus answers");
        assert_eq!(code, 200, "{q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (s["metric"].clone(), value)
            })
            .collect()
    }

    /// Waits until `q` has exactly one sample of value `want` (the exporter is scraped every
    /// second; the counters may still be on their way).
    fn expect(&self, q: &str, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.query(q);
            if got.len() == 1 && got[0].1 == want as f64 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{q}: wanted one sample of {want}, got {got:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        drop(self.guard.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes a query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` over HTTP/1.0: the status code and the body, or None if nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// 100-byte frames (EtherType 0x88b5, local experimental) from `ns`'s eth1.
fn send(ns: &NetNs, n: usize) {
    let s = Sender::open(ns, "eth1").unwrap();
    let mut f = vec![
        0x02, 0x6e, 0x73, 0x72, 0x74, 0x02, 0x02, 0x6e, 0x73, 0x72, 0x74, 0x01,
    ];
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(100, 0);
    for _ in 0..n {
        s.send(&f).unwrap();
    }
}

fn stats(ns: &NetNs) -> nsring_netns::link::LinkStats {
    nsring_netns::link::get(ns, "eth1").unwrap().stats.unwrap()
}

fn closed(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
}

#[test]
fn prometheus_finds_the_labs_interface_counters_exactly() {
    let (lab, a, b) = pair("prom");
    let (na, nb) = (lab.ns_name("a"), lab.ns_name("b"));
    let (exp, exp_addr) = exporter(&[&na, &nb]);
    let prom = Prometheus::start("ifaces", exp_addr);
    let prom_addr = prom.addr;
    const N: u64 = 37;
    let (before_a, before_b) = (stats(&a), stats(&b));
    send(&a, N as usize);
    let q = |name: &str, ns: &str| format!(r#"{name}{{netns="{ns}",interface="eth1"}}"#);
    prom.expect(
        &q("nsring_interface_transmit_packets_total", &na),
        before_a.tx_packets + N,
    );
    prom.expect(
        &q("nsring_interface_transmit_bytes_total", &na),
        before_a.tx_bytes + 100 * N,
    );
    prom.expect(
        &q("nsring_interface_receive_packets_total", &nb),
        before_b.rx_packets + N,
    );
    prom.expect(
        &q("nsring_interface_receive_bytes_total", &nb),
        before_b.rx_bytes + 100 * N,
    );
    // by now the kernel has counted everything: its drops counter as it stands
    prom.expect(
        &q("nsring_interface_receive_drops_total", &nb),
        stats(&b).rx_dropped,
    );
    prom.expect(&q("nsring_interface_up", &nb), 1);
    prom.expect(r#"nsring_exporter_namespaces"#, 2);
    // the namespace label is `netns`, nowhere `namespace`
    assert!(
        prom.query(r#"{__name__=~"nsring_.+",namespace!=""}"#)
            .is_empty(),
        "a series labelled namespace"
    );
    drop(prom);
    drop(exp);
    assert!(
        closed(prom_addr) && closed(exp_addr),
        "something still listens"
    );
}

#[test]
fn sockets_show_with_what_is_known_and_nothing_else() {
    let (lab, a, _b) = pair("promsock");
    let nb = lab.ns_name("b");
    let mut cmd = Command::new(NSRING);
    cmd.args([
        "count",
        "-i",
        &format!("{nb}/eth1"),
        "--app-name",
        "nsrt-prom",
        "--duration",
        "120",
        "--interval",
        "3600",
        "--block-timeout-ms",
        "10",
    ]);
    let count = start(cmd, "capturing on", Stdio::null());
    // and an in-kernel counter (eBPF at the interface's hooks) with a filter
    let mut cmd = Command::new(NSRING);
    cmd.args([
        "count",
        "-i",
        &format!("{nb}/eth1"),
        "--backend",
        "kernel",
        "-f",
        "ether proto 0x88b5",
        "--app-name",
        "nsrt-promk",
        "--duration",
        "120",
        "--interval",
        "3600",
    ]);
    let kernel = start(cmd, "capturing on", Stdio::null());
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &nb,
        "tcpdump",
        "-n",
        "-i",
        "eth1",
        "-w",
        "/dev/null",
    ]);
    let td = start(cmd, "listening on", Stdio::null());
    let (exp, exp_addr) = exporter(&[&nb]);
    let prom = Prometheus::start("socks", exp_addr);
    const N: u64 = 23;
    send(&a, N as usize);
    let ours = format!("nsrt-prom[{}]", count.pid());
    let theirs = format!("tcpdump[{}]", td.pid());
    prom.expect(
        &format!(r#"nsring_socket_receive_packets_total{{netns="{nb}",owner="{ours}"}}"#),
        N,
    );
    prom.expect(
        &format!(r#"nsring_socket_receive_bytes_total{{netns="{nb}",owner="{ours}"}}"#),
        100 * N,
    );
    prom.expect(
        &format!(r#"nsring_socket_receive_drops_total{{netns="{nb}",owner="{ours}"}}"#),
        0,
    );
    prom.expect(
        &format!(
            r#"nsring_socket_info{{netns="{nb}",owner="{ours}",kind="nsring",app="nsrt-prom",interface="eth1"}}"#
        ),
        1,
    );
    prom.expect(
        &format!(
            r#"nsring_socket_info{{netns="{nb}",owner="{theirs}",kind="other",interface="eth1"}}"#
        ),
        1,
    );
    let counter = format!("nsrt-promk[{}]", kernel.pid());
    prom.expect(
        &format!(r#"nsring_kernel_counter_packets_total{{netns="{nb}",owner="{counter}"}}"#),
        N,
    );
    prom.expect(
        &format!(r#"nsring_kernel_counter_bytes_total{{netns="{nb}",owner="{counter}"}}"#),
        100 * N,
    );
    prom.expect(
        &format!(
            r#"nsring_kernel_counter_info{{owner="{counter}",filter="ether proto 0x88b5",direction="both"}}"#
        ),
        1,
    );
    // it is a counter, not a socket that receives
    let q = format!(r#"nsring_socket_info{{owner="{counter}"}}"#);
    assert!(prom.query(&q).is_empty(), "{q}");
    // tcpdump's counts are tcpdump's to know: no series, not a 0
    for name in [
        "nsring_socket_receive_packets_total",
        "nsring_socket_receive_drops_total",
        "nsring_socket_receive_bytes_total",
    ] {
        let q = format!(r#"{name}{{owner="{theirs}"}}"#);
        assert!(prom.query(&q).is_empty(), "{q}");
    }
    drop(prom);
    drop(exp);
    drop(td);
    drop(kernel);
    drop(count);
    assert!(closed(exp_addr), "the exporter still listens");
}
