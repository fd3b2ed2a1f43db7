//! Namespace management and discovery against the real kernel (run as root): list, list_all,
//! identify, pids, attach, del's report, exec. Cross-checked with iproute2 and unshare.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nsring_netns::lab::Lab;
use nsring_netns::{Error, ExecStatus, Fate, NetNs, NsSpec, link};

/// A process killed (and reaped) on drop.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `argv` (which ends by exec'ing `sleep`) and waits until it is `sleep`.
fn spawn_sleeper(argv: &[&str]) -> Proc {
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let comm = fs::read_to_string(format!("/proc/{}/comm", p.pid())).unwrap_or_default();
        if comm.trim() == "sleep" {
            return p;
        }
        assert!(Instant::now() < deadline, "{argv:?} did not become sleep");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sleeping process inside named namespace `name` (iproute2 execs without forking).
fn sleeper_in(name: &str) -> Proc {
    spawn_sleeper(&["ip", "netns", "exec", name, "sleep", "30"])
}

/// A namespace name made outside the lab (attach), deleted on drop.
struct NameGuard(String);

impl Drop for NameGuard {
    fn drop(&mut self) {
        let _ = nsring_netns::del(&self.0);
    }
}

/// A directory removed (recursively) on drop.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run_dir_has(name: &str) -> bool {
    Path::new(nsring_netns::NETNS_RUN_DIR)
        .join(name)
        .symlink_metadata()
        .is_ok()
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn list_matches_ip_netns_list_with_ids() {
    let mut lab = Lab::new("list");
    let a = lab.netns("a");
    lab.netns("b");
    let (na, nb) = (lab.ns_name("a"), lab.ns_name("b"));
    // Give `a` an id in the initial namespace (the kernel picks a free one).
    ip(&["netns", "set", &na, "auto"]);

    let list = nsring_netns::list().unwrap();
    let names: Vec<&str> = list.iter().map(|n| n.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "list is sorted by name");
    let ea = list.iter().find(|n| n.name == na).expect("a listed");
    let eb = list.iter().find(|n| n.name == nb).expect("b listed");
    assert_eq!(ea.inode, Some(a.inode()));
    let id = ea.id.expect("a has an id after 'ip netns set auto'");
    assert_eq!(eb.id, None, "b has no id");

    let ip_list = ip(&["netns", "list"]);
    assert!(
        ip_list.lines().any(|l| l == format!("{na} (id: {id})")),
        "ip netns list disagrees:\n{ip_list}"
    );
    assert!(ip_list.lines().any(|l| l == nb), "{ip_list}");
}

#[test]
fn list_all_finds_an_anonymous_namespace_with_its_pid() {
    let sleeper = spawn_sleeper(&["unshare", "--net", "sleep", "30"]);
    let pid = sleeper.pid();
    let ns = NetNs::open(&NsSpec::Pid(pid)).unwrap();
    assert!(!ns.same_as(&NetNs::current().unwrap()));

    let all = nsring_netns::list_all().unwrap();
    let found = all
        .iter()
        .find(|i| i.inode == ns.inode())
        .expect("the unshare'd namespace is listed");
    assert!(found.names.is_empty(), "{found:?}");
    assert!(!found.initial && !found.current);
    assert!(
        found
            .holders
            .iter()
            .any(|h| h.pid == pid && h.comm == "sleep" && h.tid.is_none()),
        "{found:?}"
    );
    assert_eq!(nsring_netns::pids(&ns), vec![pid]);
    assert!(nsring_netns::identify(pid).unwrap().is_empty());

    // Exactly one initial and one current namespace; here they are the same.
    assert_eq!(all.iter().filter(|i| i.initial).count(), 1);
    let current = all.iter().find(|i| i.current).unwrap();
    assert_eq!(current.inode, NetNs::current().unwrap().inode());
    assert!(
        current
            .holders
            .iter()
            .any(|h| h.pid == std::process::id() && h.tid.is_none())
    );
}

#[test]
fn list_all_names_lab_namespaces_and_threads_inside() {
    let mut lab = Lab::new("all");
    let a = lab.netns("a");
    let name = lab.ns_name("a");
    // A thread of this process inside `a` (NetNs::run) is a holder with its tid.
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let inside = a.try_clone().unwrap();
        s.spawn(move || {
            inside
                .run(move || {
                    tx.send(nix::unistd::gettid().as_raw() as u32).unwrap();
                    let _ = done_rx.recv_timeout(Duration::from_secs(10));
                })
                .unwrap();
        });
        let tid = rx.recv().unwrap();
        let all = nsring_netns::list_all().unwrap();
        let info = all.iter().find(|i| i.inode == a.inode()).unwrap();
        assert_eq!(info.names, vec![name.clone()]);
        assert!(
            info.holders
                .iter()
                .any(|h| h.pid == std::process::id() && h.tid == Some(tid)),
            "{info:?}"
        );
        // `pids` lists processes, like `ip netns pids`: not a thread that entered.
        assert!(!nsring_netns::pids(&a).contains(&std::process::id()));
        done_tx.send(()).unwrap();
    });
}

#[test]
fn identify_and_pids_of_a_process_in_a_named_namespace() {
    let mut lab = Lab::new("ident");
    let a = lab.netns("a");
    let name = lab.ns_name("a");
    let p = sleeper_in(&name);
    assert_eq!(nsring_netns::identify(p.pid()).unwrap(), vec![name.clone()]);
    assert_eq!(nsring_netns::pids(&a), vec![p.pid()]);
    let ip_ident = ip(&["netns", "identify", &p.pid().to_string()]);
    assert_eq!(ip_ident.trim(), name);
    // This process is in no named namespace.
    assert!(
        !nsring_netns::identify(std::process::id())
            .unwrap()
            .contains(&name)
    );
    assert!(matches!(
        nsring_netns::identify(u32::MAX - 1),
        Err(Error::ProcessNotFound { .. })
    ));
}

#[test]
fn attach_names_a_process_namespace_and_leaves_nothing_on_failure() {
    let lab = Lab::new("attach");
    let name = lab.ns_name("att");
    let guard = NameGuard(name.clone());
    let sleeper = spawn_sleeper(&["unshare", "--net", "sleep", "30"]);
    let ns = nsring_netns::attach(&name, &NsSpec::Pid(sleeper.pid())).unwrap();
    assert!(ns.same_as(&NetNs::open(&NsSpec::Pid(sleeper.pid())).unwrap()));
    assert!(ns.same_as(&NetNs::open_str(&name).unwrap()));
    assert_eq!(
        nsring_netns::identify(sleeper.pid()).unwrap(),
        vec![name.clone()]
    );
    assert!(ip(&["netns", "list"]).lines().any(|l| l.starts_with(&name)));

    // Any spelling of a namespace can be named: another name, a path.
    let by_name = lab.ns_name("att2");
    let _g2 = NameGuard(by_name.clone());
    let by_path = lab.ns_name("att3");
    let _g3 = NameGuard(by_path.clone());
    nsring_netns::attach(&by_name, &NsSpec::Name(name.clone())).unwrap();
    let path = PathBuf::from(format!("/proc/{}/ns/net", sleeper.pid()));
    nsring_netns::attach(&by_path, &NsSpec::Path(path)).unwrap();
    let mut names = nsring_netns::identify(sleeper.pid()).unwrap();
    names.sort();
    let mut want = vec![name.clone(), by_name.clone(), by_path.clone()];
    want.sort();
    assert_eq!(names, want);
    drop((_g2, _g3));

    // The name is taken now.
    assert!(matches!(
        nsring_netns::attach(&name, &NsSpec::Pid(std::process::id())),
        Err(Error::Exists { .. })
    ));
    assert!(
        NetNs::open_str(&name).unwrap().same_as(&ns),
        "still attached"
    );

    // A missing process, or a bad name: nothing is created.
    let other = lab.ns_name("none");
    assert!(matches!(
        nsring_netns::attach(&other, &NsSpec::Pid(u32::MAX - 1)),
        Err(Error::ProcessNotFound { .. })
    ));
    assert!(!run_dir_has(&other));
    for bad in ["", ".", "..", "a/b"] {
        assert!(matches!(
            nsring_netns::attach(bad, &NsSpec::Pid(sleeper.pid())),
            Err(Error::InvalidName { .. })
        ));
    }
    drop(guard);
    assert!(!run_dir_has(&name));

    // A name on this process's own namespace (the initial one, when run from a host shell):
    // deleting it says so and predicts nothing for its interfaces.
    let own = lab.ns_name("own");
    let _guard = NameGuard(own.clone());
    nsring_netns::attach(&own, &NsSpec::Pid(std::process::id())).unwrap();
    let report = nsring_netns::del(&own).unwrap();
    let current_is_initial = nsring_netns::discover::is_initial(&NetNs::current().unwrap());
    assert_eq!(report.initial, current_is_initial);
    if current_is_initial {
        assert!(report.links.is_empty() && report.lives_on(), "{report:?}");
    }
    assert!(!run_dir_has(&own));
}

#[test]
fn del_reports_holders_and_interface_fates() {
    let mut lab = Lab::new("del");
    lab.netns("a");
    lab.netns("b");
    lab.veth("a", "va", "b", "vb");
    let (na, nb) = (lab.ns_name("a"), lab.ns_name("b"));

    // `a` is held by a process: the name goes, the namespace and its veth stay.
    let p = sleeper_in(&na);
    let report = nsring_netns::del(&na).unwrap();
    assert!(!run_dir_has(&na));
    assert!(report.lives_on());
    assert_eq!(report.name, na);
    assert!(
        report
            .holders
            .iter()
            .any(|h| h.pid == p.pid() && h.comm == "sleep"),
        "{report:?}"
    );
    assert!(!report.links_unknown);
    let fate = |n: &str| report.links.iter().find(|l| l.name == n).map(|l| l.fate);
    assert_eq!(fate("va"), Some(Fate::Destroyed));
    assert_eq!(fate("lo"), Some(Fate::Destroyed));
    let held = NetNs::open(&NsSpec::Pid(p.pid())).unwrap();
    assert_eq!(held.inode(), report.inode);
    assert!(
        link::list(&held).unwrap().iter().any(|l| l.name == "va"),
        "the process still sees its namespace"
    );
    drop(held);

    // `b` is held by nobody (but the lab's handle, which is not a process).
    let report = nsring_netns::del(&nb).unwrap();
    assert!(!report.lives_on(), "{report:?}");
    assert!(
        report.links.iter().any(|l| l.name == "vb"
            && l.kind.as_deref() == Some("veth")
            && l.fate == Fate::Destroyed)
    );

    assert!(matches!(
        nsring_netns::del(&nb),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        nsring_netns::del("a/b"),
        Err(Error::InvalidName { .. })
    ));
}

#[test]
fn fates_by_kind() {
    use nsring_netns::manage::fate_of;
    assert_eq!(fate_of("lo", None), Fate::Destroyed);
    assert_eq!(fate_of("veth0", Some("veth")), Fate::Destroyed);
    assert_eq!(fate_of("br0", Some("bridge")), Fate::Destroyed);
    assert_eq!(fate_of("eth1", None), Fate::ReturnsToInitial);
}

/// Runs `sh -c script` in `spec` with its stdout to a file, returns (status, stdout).
fn exec_sh(spec: &NsSpec, script: &str, tag: &str) -> (ExecStatus, String) {
    let out = std::env::temp_dir().join(format!("nsrt-{}-{tag}.out", std::process::id()));
    let full = format!("exec > {}; {script}", out.display());
    let status = nsring_netns::exec(spec, &["sh", "-c", &full]).unwrap();
    let text = fs::read_to_string(&out).unwrap_or_default();
    let _ = fs::remove_file(&out);
    (status, text)
}

#[test]
fn exec_enters_the_namespace_with_its_sys_and_etc() {
    let mut lab = Lab::new("exec");
    lab.netns("a");
    lab.netns("b");
    lab.veth("a", "nsrt-xa", "b", "nsrt-xb");
    let name = lab.ns_name("a");
    let etc = DirGuard(Path::new(nsring_netns::NETNS_ETC_DIR).join(&name));
    fs::create_dir_all(&etc.0).unwrap();
    let marker = format!("198.18.0.1 nsrt-{}-marker\n", std::process::id());
    fs::write(etc.0.join("hosts"), &marker).unwrap();
    let spec = NsSpec::Name(name.clone());

    let (status, out) = exec_sh(
        &spec,
        "ls /sys/class/net; echo ---; cat /etc/hosts; echo ---; ip -o link",
        "exec-a",
    );
    assert_eq!(status, ExecStatus::Exited(0));
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    let mut sys: Vec<&str> = parts[0].lines().collect();
    sys.sort();
    assert_eq!(sys, vec!["lo", "nsrt-xa"], "/sys/class/net inside");
    assert_eq!(parts[1], marker, "/etc/netns/NAME/hosts over /etc/hosts");
    assert!(parts[2].contains("nsrt-xa@"), "{}", parts[2]);
    assert!(!parts[2].contains("eth0"), "{}", parts[2]);
    // Outside, /etc/hosts is untouched.
    assert_ne!(fs::read_to_string("/etc/hosts").unwrap(), marker);

    // By path or pid: the same namespace, without the /etc overlay.
    let by_path = NsSpec::Path(Path::new(nsring_netns::NETNS_RUN_DIR).join(&name));
    let (_, out) = exec_sh(&by_path, "ls /sys/class/net; cat /etc/hosts", "exec-p");
    assert!(out.contains("nsrt-xa"), "{out}");
    assert!(!out.contains(&marker), "{out}");

    // Exit status and signals are passed through.
    let st = nsring_netns::exec(&spec, &["sh", "-c", "exit 7"]).unwrap();
    assert_eq!((st, st.code()), (ExecStatus::Exited(7), 7));
    let st = nsring_netns::exec(&spec, &["sh", "-c", "kill -TERM $$"]).unwrap();
    assert_eq!((st, st.code()), (ExecStatus::Signaled(15), 143));
}

#[test]
fn exec_failures() {
    let mut lab = Lab::new("execfail");
    lab.netns("a");
    let spec = NsSpec::Name(lab.ns_name("a"));
    let errno = |e: Error| match e {
        Error::Exec { source, .. } => source.raw_os_error(),
        other => panic!("not an exec error: {other:?}"),
    };
    let missing = format!("nsrt-no-such-command-{}", std::process::id());
    assert_eq!(
        errno(nsring_netns::exec(&spec, &[missing.as_str()]).unwrap_err()),
        Some(libc::ENOENT)
    );
    let noexec = std::env::temp_dir().join(format!("nsrt-{}-noexec", std::process::id()));
    fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    let r = nsring_netns::exec(&spec, &[noexec.as_os_str()]);
    let _ = fs::remove_file(&noexec);
    assert_eq!(errno(r.unwrap_err()), Some(libc::EACCES));
    assert!(matches!(
        nsring_netns::exec(&NsSpec::Name(lab.ns_name("missing")), &["true"]),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        nsring_netns::exec(&spec, &[] as &[&str]),
        Err(Error::Exec { .. })
    ));
}

#[test]
fn bad_names_leave_nothing() {
    let long = "n".repeat(256);
    for bad in ["", ".", "..", "a/b", "../x", long.as_str()] {
        assert!(
            matches!(nsring_netns::add(bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
    }
    assert!(!run_dir_has(&long));
    let mut lab = Lab::new("exists");
    let a = lab.netns("a");
    let name = lab.ns_name("a");
    assert!(matches!(
        nsring_netns::add(&name),
        Err(Error::Exists { .. })
    ));
    assert!(
        NetNs::open_str(&name).unwrap().same_as(&a),
        "the existing namespace is untouched"
    );
}

/// `del_and_wait`: once the namespace goes, its veth peer is gone too when it returns, so
/// the peer's name can be used again at once; a namespace kept alive by a handle leaves the
/// peer there, and the report names it.
#[test]
fn del_waits_until_veth_peers_are_gone() {
    let mut lab = Lab::new("delwait");
    let b = lab.netns("b");
    for held in [false, true] {
        let name = format!("{}-x{}", lab.prefix(), u8::from(held));
        let ns = nsring_netns::add(&name).unwrap();
        link::add_veth(&ns, "v0", "v1", Some(&b)).unwrap();
        let keep = held.then_some(ns);
        let wait = if held {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(5)
        };
        let report = nsring_netns::del_and_wait(&name, wait).unwrap();
        if held {
            assert_eq!(
                report.remaining,
                vec![format!("v1 in {}", lab.ns_name("b"))]
            );
            drop(keep);
            // The handle was the last reference: now the pair goes.
            let deadline = Instant::now() + Duration::from_secs(10);
            while link::get(&b, "v1").is_ok() {
                assert!(Instant::now() < deadline, "v1 outlived its namespace");
                std::thread::sleep(Duration::from_millis(10));
            }
        } else {
            assert!(report.remaining.is_empty(), "{:?}", report.remaining);
            // No wait needed: the name is free the moment del returns.
            assert!(link::get(&b, "v1").is_err(), "v1 still in b after del");
        }
        // Reuse the peer's name at once.
        link::add_veth(&b, "v1", "v2", None).unwrap();
        link::del(&b, "v1").unwrap();
    }
}
