//! nsring's socket records, for real (root): created, read, kept current, found stale,
//! refused when corrupt or planted, and joined with the kernel's view of the socket.
//!
//! Every test uses its own registry directory under the system temp dir (never
//! `/run/nsring`), so tests running in parallel do not see each other's records.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
use nsring_netns::NetNs;
use nsring_netns::lab::Lab;
use nsring_registry::record::{self, Counter, Counters, Header, RecordInfo, RunDir};

/// A fresh registry directory, removed on drop.
struct TempRun {
    path: PathBuf,
}

impl TempRun {
    fn new() -> TempRun {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "nsring-records-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        TempRun { path }
    }
    fn run(&self) -> RunDir {
        RunDir::at(&self.path)
    }
    fn ns_dir(&self, inode: u64) -> PathBuf {
        self.path.join(inode.to_string())
    }
}

impl Drop for TempRun {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn unix_socket() -> std::os::unix::net::UnixDatagram {
    std::os::unix::net::UnixDatagram::unbound().unwrap()
}

fn current_cookie() -> u64 {
    record::netns_cookie(&NetNs::current().unwrap()).unwrap()
}

fn info(iface: &str) -> RecordInfo {
    let mut i = RecordInfo::new("records-test", Some(iface));
    i.filter = Some("udp".into());
    i.snaplen = 96;
    i
}

/// Writes a record file by hand (as a dead owner would have left it).
fn plant(dir: &Path, name: &str, header: Header) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let bytes = record::encode(&header, &Counters::default(), &info("eth9")).unwrap();
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_record_is_created_read_updated_and_removed() {
    let t = TempRun::new();
    let run = t.run();
    let sock = unix_socket();
    let inode = 4_000_000_001;
    let rec = run.create(inode, &sock, &info("eth1")).unwrap();
    let pid = std::process::id();
    assert!(
        rec.name().starts_with(&format!("{pid}-eth1.")),
        "{}",
        rec.name()
    );
    let path = t.ns_dir(inode).join(rec.name());
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    assert_eq!(
        fs::metadata(t.ns_dir(inode)).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let dir_meta = fs::read_to_string(t.ns_dir(inode).join(record::NS_META)).unwrap();
    assert_eq!(
        dir_meta,
        format!("inode={inode}\ncookie={}\n", current_cookie())
    );

    rec.store(Counter::Packets, 1234);
    rec.store(Counter::Bytes, 99_000);
    rec.store(Counter::Drops, 3);
    let scan = run.scan(inode, Some(current_cookie())).unwrap();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    assert_eq!(scan.records.len(), 1);
    let v = &scan.records[0];
    assert_eq!(v.name, rec.name());
    assert_eq!(v.header.pid, pid);
    assert_eq!(v.header.netns_inode, inode);
    assert_eq!(
        v.header.socket_inode,
        nix::sys::stat::fstat(&sock).unwrap().st_ino
    );
    assert_eq!(
        v.info,
        info("eth1").clone_with_start(v.info.started_unix_ns)
    );
    assert_eq!(
        (v.counters.packets, v.counters.bytes, v.counters.drops),
        (1234, 99_000, 3)
    );
    assert_eq!(rec.counters().packets, 1234);

    // a second socket of the same process gets the next id
    let sock2 = unix_socket();
    let rec2 = run.create(inode, &sock2, &info("eth1")).unwrap();
    assert_ne!(rec2.name(), rec.name());
    assert_eq!(run.scan(inode, None).unwrap().records.len(), 2);

    drop(rec);
    assert!(!path.exists(), "drop removes the file");
    let scan = run.scan(inode, None).unwrap();
    assert_eq!(scan.records.len(), 1);
    assert!(scan.removed.is_empty());
    assert!(
        t.ns_dir(inode).join(record::NS_META).exists(),
        "a directory with a record left keeps its metadata"
    );
    drop(rec2);
    assert!(
        !t.ns_dir(inode).exists(),
        "the last record takes its directory along"
    );
    // and the next record makes it again
    let rec3 = run.create(inode, &sock2, &info("eth1")).unwrap();
    assert_eq!(
        run.scan(inode, Some(current_cookie()))
            .unwrap()
            .records
            .len(),
        1
    );
    drop(rec3);
    assert!(run.scan(inode, None).unwrap().records.is_empty());
}

trait WithStart {
    fn clone_with_start(self, t: u64) -> Self;
}
impl WithStart for RecordInfo {
    fn clone_with_start(mut self, t: u64) -> Self {
        self.started_unix_ns = t;
        self
    }
}

#[test]
fn a_record_without_a_lock_holder_is_stale_and_removed() {
    let t = TempRun::new();
    let run = t.run();
    let inode = 4_000_000_002;
    let sock = unix_socket();
    let live = run.create(inode, &sock, &info("eth1")).unwrap();
    let stale = plant(
        &t.ns_dir(inode),
        "999999-eth1.0",
        Header {
            pid: 999_999,
            netns_inode: inode,
            netns_cookie: current_cookie(),
            socket_inode: 1,
        },
    );
    // a dead writer's temporary is swept too
    let tmp = t.ns_dir(inode).join(".tmp-999999-5");
    fs::write(&tmp, b"half").unwrap();
    let scan = run.scan(inode, Some(current_cookie())).unwrap();
    assert_eq!(scan.removed, ["999999-eth1.0"]);
    assert_eq!(scan.records.len(), 1);
    assert_eq!(scan.records[0].name, live.name());
    assert!(!stale.exists());
    assert!(!tmp.exists());
}

#[test]
fn corrupt_and_planted_entries_are_reported_and_the_rest_is_read() {
    let t = TempRun::new();
    let run = t.run();
    let inode = 4_000_000_003;
    let sock = unix_socket();
    let live = run.create(inode, &sock, &info("eth1")).unwrap();
    let dir = t.ns_dir(inode);

    // garbage in a record whose "owner" (this test) holds the lock: corrupt, kept
    let garbage = dir.join("424242-eth2.0");
    fs::write(&garbage, b"this is not a record\n").unwrap();
    let held = File::open(&garbage).unwrap();
    held.lock().unwrap();
    // a truncated record, also locked
    let trunc = plant(
        &dir,
        "424242-eth3.1",
        Header {
            pid: 424242,
            netns_inode: inode,
            netns_cookie: current_cookie(),
            socket_inode: 2,
        },
    );
    let bytes = fs::read(&trunc).unwrap();
    fs::write(&trunc, &bytes[..300]).unwrap();
    let held2 = File::open(&trunc).unwrap();
    held2.lock().unwrap();
    // a symlink to a file outside: reported, not followed, the target untouched
    let outside = t.path.join("outside");
    fs::write(&outside, b"precious").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("424242-eth4.2")).unwrap();

    let scan = run.scan(inode, None).unwrap();
    assert_eq!(scan.records.len(), 1, "the good record is still read");
    assert_eq!(scan.records[0].name, live.name());
    let text: Vec<String> = scan.problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(
        text[0].starts_with("record 424242-eth2.0 is corrupt: truncated: 21 bytes"),
        "{}",
        text[0]
    );
    assert!(
        text[1].starts_with("record 424242-eth3.1 is corrupt: truncated: metadata"),
        "{}",
        text[1]
    );
    assert!(
        text[2].contains("is a symlink: not followed"),
        "{}",
        text[2]
    );
    assert_eq!(fs::read(&outside).unwrap(), b"precious");
    assert!(garbage.exists(), "a locked record is never removed");

    // once its "owner" lets go, the garbage is stale and goes away
    drop(held);
    let scan = run.scan(inode, None).unwrap();
    assert!(scan.removed.contains(&"424242-eth2.0".to_owned()));
    assert!(!garbage.exists());
}

#[test]
fn a_record_of_an_earlier_namespace_with_the_same_inode_is_not_shown() {
    let t = TempRun::new();
    let run = t.run();
    let inode = 4_000_000_004;
    let old_cookie = current_cookie() + 1_000_000;
    let path = plant(
        &t.ns_dir(inode),
        "77-eth1.0",
        Header {
            pid: 77,
            netns_inode: inode,
            netns_cookie: old_cookie,
            socket_inode: 3,
        },
    );
    let held = File::open(&path).unwrap();
    held.lock().unwrap();
    let scan = run.scan(inode, Some(current_cookie())).unwrap();
    assert!(scan.records.is_empty());
    assert_eq!(scan.problems.len(), 1);
    assert!(
        scan.problems[0].message.contains("earlier namespace"),
        "{}",
        scan.problems[0]
    );
    // without a cookie to check against, it is shown
    assert_eq!(run.scan(inode, None).unwrap().records.len(), 1);
}

#[test]
fn unsafe_directories_are_refused() {
    let t = TempRun::new();
    let sock = unix_socket();
    // the base is a symlink to a real directory
    let real = PathBuf::from(format!("{}-real", t.path.display()));
    fs::create_dir_all(&real).unwrap();
    std::os::unix::fs::symlink(&real, &t.path).unwrap();
    let err = t.run().create(1, &sock, &info("eth1")).unwrap_err();
    assert!(matches!(err, record::Error::Unsafe { .. }), "{err:?}");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(
        fs::read_dir(&real).unwrap().count(),
        0,
        "nothing written through it"
    );
    fs::remove_file(&t.path).unwrap();
    fs::remove_dir(&real).unwrap();

    // a base writable by everyone
    fs::create_dir(&t.path).unwrap();
    fs::set_permissions(&t.path, fs::Permissions::from_mode(0o777)).unwrap();
    let err = t.run().create(1, &sock, &info("eth1")).unwrap_err();
    assert!(
        err.to_string().contains("writable by group or others"),
        "{err}"
    );
    fs::set_permissions(&t.path, fs::Permissions::from_mode(0o755)).unwrap();

    // a namespace directory that is a symlink
    std::os::unix::fs::symlink(&t.path, t.path.join("5")).unwrap();
    let err = t.run().scan(5, None).unwrap_err();
    assert!(matches!(err, record::Error::Unsafe { .. }), "{err:?}");
}

#[test]
fn sweep_removes_directories_of_gone_namespaces() {
    let t = TempRun::new();
    let run = t.run();
    let sock = unix_socket();
    let live = run.create(11, &sock, &info("eth1")).unwrap();
    let _also_live = run.create(12, &sock, &info("eth1")).unwrap();
    plant(
        &t.ns_dir(13),
        "5-eth1.0",
        Header {
            pid: 5,
            netns_inode: 13,
            netns_cookie: 1,
            socket_inode: 1,
        },
    );
    assert_eq!(run.namespaces().unwrap(), [11, 12, 13]);
    // namespace 11 exists; 12 and 13 were not found
    let report = run.sweep(&BTreeSet::from([11])).unwrap();
    assert_eq!(report.removed, ["13/5-eth1.0"]);
    assert_eq!(report.removed_dirs, [13]);
    assert_eq!(report.orphans, [12], "a live record keeps its directory");
    assert!(!t.ns_dir(13).exists());
    assert_eq!(run.namespaces().unwrap(), [11, 12]);
    assert!(
        t.ns_dir(11).exists(),
        "sweep leaves existing namespaces alone"
    );
    drop(live);
    assert!(
        !t.ns_dir(11).exists(),
        "the last record takes its directory along"
    );
}

#[test]
fn a_missing_registry_is_an_empty_one() {
    let t = TempRun::new();
    let scan = t.run().scan(1, None).unwrap();
    assert!(scan.records.is_empty() && scan.problems.is_empty());
    assert!(t.run().namespaces().unwrap().is_empty());
    assert!(!t.path.exists(), "reading creates nothing");
}

/// An AF_PACKET socket created inside `ns`, bound to nothing (protocol 0).
fn packet_socket_in(ns: &NetNs) -> OwnedFd {
    ns.run(|| {
        socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )
    })
    .unwrap()
    .expect("socket(AF_PACKET): needs CAP_NET_RAW")
}

#[test]
fn the_view_joins_records_to_the_kernel_sockets_of_their_namespace() {
    let t = TempRun::new();
    let run = t.run();
    let mut lab = Lab::new("recview");
    let a = lab.netns("a");
    let b = lab.netns("b");
    lab.veth("a", "eth1", "b", "eth1");

    let ours = packet_socket_in(&a);
    let rec = run.create(a.inode(), &ours, &info("eth1")).unwrap();
    rec.store(Counter::Packets, 42);
    let foreign = packet_socket_in(&a);
    let ours_inode = nix::sys::stat::fstat(&ours).unwrap().st_ino;
    let foreign_inode = nix::sys::stat::fstat(&foreign).unwrap().st_ino;

    let view = nsring_registry::namespace_view(&a, "a", &run).unwrap();
    assert!(view.problems.is_empty(), "{:?}", view.problems);
    assert_eq!(view.namespace.inode, a.inode());
    assert_eq!(view.namespace.cookie, Some(rec.header().netns_cookie));
    assert_eq!(view.ours(), 1);
    assert_eq!(view.kernel_sockets, Some(2));
    let mine = view.find_socket(rec.name()).expect("our record");
    assert!(mine.ours);
    assert_eq!(mine.inode, ours_inode);
    assert!(mine.kernel.is_some(), "joined with packet_diag's entry");
    assert_eq!(mine.record.as_ref().unwrap().counters.packets, 42);
    assert_eq!(
        mine.owner_text(),
        format!("records-test[{}]", std::process::id())
    );
    let other = view.find_socket(&foreign_inode.to_string()).unwrap();
    assert!(!other.ours);
    assert!(
        other
            .owner_text()
            .contains(&format!("[{}]", std::process::id()))
    );
    let names: Vec<&str> = view.devices.iter().map(|d| d.link.name.as_str()).collect();
    assert_eq!(names, ["lo", "eth1"]);

    // namespace b: its own eth1, none of a's sockets
    let view_b = nsring_registry::namespace_view(&b, "b", &run).unwrap();
    assert_eq!(view_b.ours(), 0);
    assert_eq!(view_b.kernel_sockets, Some(0));
    assert!(view_b.find_device("eth1").is_some());
    assert_ne!(view_b.namespace.cookie, view.namespace.cookie);
}

#[test]
fn writes_to_a_record_are_visible_to_a_separate_reader_at_once() {
    let t = TempRun::new();
    let run = t.run();
    let sock = unix_socket();
    let rec = run.create(21, &sock, &info("eth1")).unwrap();
    let path = t.ns_dir(21).join(rec.name());
    for n in [1u64, 1000, u64::MAX / 3] {
        rec.store(Counter::Bytes, n);
        let mut f = OpenOptions::new().read(true).open(&path).unwrap();
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut b).unwrap();
        let (_, c, _) = record::decode(&b).unwrap();
        assert_eq!(c.bytes, n);
    }
    let _ = std::io::stdout().flush();
}

#[test]
fn records_of_a_newer_nsring_are_read_or_named_and_kept_while_alive() {
    // A package upgrade while captures run: the directory holds records of another format.
    let t = TempRun::new();
    let run = t.run();
    let inode = 4_000_000_009;
    let dir = t.ns_dir(inode);
    let header = |socket_inode| Header {
        pid: 515151,
        netns_inode: inode,
        netns_cookie: current_cookie(),
        socket_inode,
    };
    let retag = |path: &Path, format: u32, needs: u32| {
        let mut b = fs::read(path).unwrap();
        b[8..12].copy_from_slice(&format.to_le_bytes());
        b[28..32].copy_from_slice(&needs.to_le_bytes());
        fs::write(path, b).unwrap();
        let f = File::open(path).unwrap();
        f.lock().unwrap(); // its owner is alive
        f
    };
    // format 2 that format-1 readers can read, and format 3 that they cannot
    let readable = plant(&dir, "515151-eth5.0", header(11));
    let held_a = retag(&readable, 2, 1);
    let newer = plant(&dir, "515151-eth6.1", header(12));
    let held_b = retag(&newer, 3, 3);

    let scan = run.scan(inode, None).unwrap();
    assert_eq!(scan.records.len(), 1, "{:?}", scan.problems);
    assert_eq!(scan.records[0].header.socket_inode, 11);
    let text: Vec<String> = scan.problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].starts_with(&format!(
            "record 515151-eth6.1 is from a newer nsring ({}): record format 3 needs a reader of \
             format 3 or later",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        text[0]
    );
    assert!(text[0].ends_with("upgrade nsring to see it"), "{}", text[0]);
    assert!(
        newer.exists(),
        "a live record of any format is never removed"
    );

    // once their owners are gone, both are stale and removed like any other
    drop((held_a, held_b));
    let scan = run.scan(inode, None).unwrap();
    assert_eq!(scan.removed.len(), 2, "{:?}", scan.removed);
    assert!(!newer.exists() && !readable.exists());
}
