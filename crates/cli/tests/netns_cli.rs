//! `nsring netns` end to end, as root, cross-checked with iproute2: interop both ways,
//! `list --all` with an anonymous namespace, `exec`, `del` of a held namespace, `identify`,
//! `pids`, `attach`, and every bad input with its exit code and no leftovers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nsring_netns::lab::Lab;

mod common;

fn nsring(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nsring"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nsring")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn ok(args: &[&str]) -> String {
    let o = nsring(args);
    assert!(
        o.status.success(),
        "nsring {args:?}: {:?}\n{}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

/// Asserts exit code `code` with a one-line `nsring: error:` message and nothing on stdout.
fn fails(args: &[&str], code: i32) -> String {
    let o = nsring(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "nsring {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("nsring: error: "), "{err:?}");
    assert_eq!(stdout(&o), "", "nsring {args:?}");
    err
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn run_dir_has(name: &str) -> bool {
    Path::new(nsring_netns::NETNS_RUN_DIR)
        .join(name)
        .symlink_metadata()
        .is_ok()
}

/// A namespace name made outside the lab, deleted on drop if it still exists.
struct NameGuard(String);

impl Drop for NameGuard {
    fn drop(&mut self) {
        let _ = nsring_netns::del(&self.0);
    }
}

/// A directory removed on drop.
struct DirGuard(PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A process killed and reaped on drop.
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
fn sleeper(argv: &[&str]) -> Proc {
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(format!("/proc/{}/comm", p.pid()))
        .unwrap_or_default()
        .trim()
        != "sleep"
    {
        assert!(Instant::now() < deadline, "{argv:?} did not become sleep");
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

#[test]
fn namespace_added_by_nsring_is_used_by_ip() {
    let lab = Lab::new("cli_add");
    let name = lab.ns_name("x");
    let _guard = NameGuard(name.clone());
    assert_eq!(ok(&["netns", "add", &name]), "");
    assert!(ip(&["netns", "list"]).lines().any(|l| l == name));
    let links = ip(&["netns", "exec", &name, "ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    assert!(links.contains(": lo:"), "{links}");
    assert!(ok(&["netns", "list"]).lines().any(|l| l == name));
    assert_eq!(ok(&["netns", "del", &name]), format!("{name}: deleted\n"));
    assert!(!ip(&["netns", "list"]).lines().any(|l| l.starts_with(&name)));
    assert!(!run_dir_has(&name));
}

#[test]
fn namespace_added_by_ip_is_used_by_nsring() {
    let lab = Lab::new("cli_ipadd");
    let name = lab.ns_name("x");
    let _guard = NameGuard(name.clone());
    ip(&["netns", "add", &name]);
    ip(&["netns", "set", &name, "auto"]);
    let ip_line = ip(&["netns", "list"])
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .expect("ip lists it with an id")
        .to_owned();
    assert!(ip_line.contains("(id: "), "{ip_line}");
    let ours = ok(&["netns", "list"]);
    assert!(ours.lines().any(|l| l == ip_line), "{ours}");

    let json = common::json_lines(&ok(&["netns", "list", "--json"]));
    let entry = json
        .iter()
        .find(|e| e["name"] == name.as_str())
        .expect("in the JSON list");
    let id = entry["id"].as_i64().unwrap();
    assert_eq!(ip_line, format!("{name} (id: {id})"));

    let links = ok(&["netns", "exec", &name, "ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert_eq!(ok(&["netns", "pids", &name]), "");
    ok(&["netns", "del", &name]);
    assert!(!ip(&["netns", "list"]).lines().any(|l| l.starts_with(&name)));
}

#[test]
fn list_all_shows_an_anonymous_namespace_and_its_pid() {
    let p = sleeper(&["unshare", "--net", "sleep", "30"]);
    let inode = fs::metadata(format!("/proc/{}/ns/net", p.pid()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let text = ok(&["netns", "list", "--all"]);
    assert!(text.starts_with("INODE "), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{inode} ")))
        .unwrap_or_else(|| panic!("no row for {inode}:\n{text}"));
    assert!(row.contains(&format!("{} (sleep)", p.pid())), "{row}");
    assert!(!row.contains("[initial]"), "{row}");
    assert_eq!(
        text.lines()
            .filter(|l| l.ends_with("[initial]") || l.contains("[initial] "))
            .count(),
        1,
        "{text}"
    );

    let json = common::json_lines(&ok(&["netns", "list", "--all", "--json"]));
    let entry = json
        .iter()
        .find(|e| e["inode"] == inode)
        .expect("in the JSON list");
    assert_eq!(entry["names"], serde_json::json!([]));
    assert!(
        entry["holders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["pid"] == p.pid() && h["comm"] == "sleep"),
        "{entry}"
    );
    assert_eq!(
        ok(&["netns", "pids", &format!("pid:{}", p.pid())]),
        format!("{}\n", p.pid())
    );
}

#[test]
fn exec_sees_interfaces_etc_files_and_passes_the_status_through() {
    let mut lab = Lab::new("cli_exec");
    lab.netns("a");
    lab.netns("b");
    lab.veth("a", "nsrt-ca", "b", "nsrt-cb");
    let name = lab.ns_name("a");
    let etc = DirGuard(Path::new(nsring_netns::NETNS_ETC_DIR).join(&name));
    fs::create_dir_all(&etc.0).unwrap();
    let marker = format!("198.18.0.9 nsrt-{}-cli\n", std::process::id());
    fs::write(etc.0.join("hosts"), &marker).unwrap();

    let links = ok(&["netns", "exec", &name, "ip", "-o", "link"]);
    assert!(links.contains("nsrt-ca@"), "{links}");
    assert!(!links.contains("nsrt-cb"), "{links}");
    assert_eq!(links.lines().count(), 2, "lo and nsrt-ca: {links}");
    let mut sys: Vec<String> = ok(&["netns", "exec", &name, "ls", "/sys/class/net"])
        .lines()
        .map(str::to_owned)
        .collect();
    sys.sort();
    assert_eq!(sys, ["lo", "nsrt-ca"]);
    assert_eq!(ok(&["netns", "exec", &name, "cat", "/etc/hosts"]), marker);
    // `--` is optional; options after the command belong to it.
    assert_eq!(ok(&["netns", "exec", &name, "--", "echo", "-n", "x"]), "x");

    let o = nsring(&["netns", "exec", &name, "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let o = nsring(&["netns", "exec", &name, "sh", "-c", "kill -TERM $$"]);
    assert_eq!(o.status.code(), Some(143));

    let err = fails(&["netns", "exec", &name, "nsrt-no-such-command"], 127);
    assert!(err.contains("No such file or directory"), "{err}");
    let noexec = std::env::temp_dir().join(format!("nsrt-{}-cli-noexec", std::process::id()));
    fs::write(&noexec, "#!/bin/sh\n").unwrap();
    let o = nsring(&["netns", "exec", &name, noexec.to_str().unwrap()]);
    let _ = fs::remove_file(&noexec);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));

    // A path spelling: the same namespace, without the /etc overlay.
    let path = format!("{}/{name}", nsring_netns::NETNS_RUN_DIR);
    assert!(ok(&["netns", "exec", &path, "ip", "-o", "link"]).contains("nsrt-ca@"));
    assert_ne!(ok(&["netns", "exec", &path, "cat", "/etc/hosts"]), marker);
}

#[test]
fn del_of_a_held_namespace_says_it_lives_on() {
    let mut lab = Lab::new("cli_del");
    lab.netns("a");
    lab.netns("b");
    lab.veth("a", "nsrt-da", "b", "nsrt-db");
    let name = lab.ns_name("a");
    let p = sleeper(&["ip", "netns", "exec", &name, "sleep", "30"]);
    let out = ok(&["netns", "del", &name]);
    assert_eq!(
        out,
        format!(
            "{name}: deleted; still held by {} (sleep), lives on until they exit\n  nsrt-da: destroyed (veth) when the namespace goes away\n",
            p.pid()
        )
    );
    assert!(!run_dir_has(&name));
    // The process still has it, with its interface.
    let links = ok(&[
        "netns",
        "exec",
        &format!("pid:{}", p.pid()),
        "ip",
        "-o",
        "link",
    ]);
    assert!(links.contains("nsrt-da@"), "{links}");

    let other = lab.ns_name("b");
    assert_eq!(
        ok(&["netns", "del", &other]),
        format!("{other}: deleted\n  nsrt-db: destroyed (veth)\n")
    );
}

#[test]
fn identify_pids_attach() {
    let mut lab = Lab::new("cli_ident");
    lab.netns("a");
    let name = lab.ns_name("a");
    let p = sleeper(&["ip", "netns", "exec", &name, "sleep", "30"]);
    let pid = p.pid().to_string();
    assert_eq!(ok(&["netns", "identify", &pid]), format!("{name}\n"));
    assert_eq!(ok(&["netns", "pids", &name]), format!("{pid}\n"));
    assert!(!ok(&["netns", "identify"]).contains(&name));

    let anon = sleeper(&["unshare", "--net", "sleep", "30"]);
    let attached = lab.ns_name("att");
    let _guard = NameGuard(attached.clone());
    assert_eq!(
        ok(&["netns", "attach", &attached, &anon.pid().to_string()]),
        ""
    );
    assert_eq!(
        ip(&["netns", "identify", &anon.pid().to_string()]).trim(),
        attached
    );
    assert_eq!(
        ok(&["netns", "pids", &attached]),
        format!("{}\n", anon.pid())
    );
    // Attaching a second time under the same name is refused; the first stays.
    fails(&["netns", "attach", &attached, &pid], 2);
    assert_eq!(
        ok(&["netns", "identify", &anon.pid().to_string()]),
        format!("{attached}\n")
    );
    // Any namespace spelling names a namespace: pid:PID, another name, a path.
    let (n2, n3, n4) = (
        lab.ns_name("att2"),
        lab.ns_name("att3"),
        lab.ns_name("att4"),
    );
    let _guards = [
        NameGuard(n2.clone()),
        NameGuard(n3.clone()),
        NameGuard(n4.clone()),
    ];
    let path = format!("/proc/{}/ns/net", anon.pid());
    ok(&["netns", "attach", &n2, &format!("pid:{}", anon.pid())]);
    ok(&["netns", "attach", &n3, &attached]);
    ok(&["netns", "attach", &n4, &path]);
    let mut want = [attached.clone(), n2, n3, n4];
    want.sort();
    assert_eq!(
        ok(&["netns", "identify", &anon.pid().to_string()]),
        want.join("\n") + "\n"
    );
}

#[test]
fn bad_input_exits_2_and_leaves_nothing() {
    let mut lab = Lab::new("cli_bad");
    lab.netns("a");
    let name = lab.ns_name("a");
    let missing = lab.ns_name("missing");
    let long = "n".repeat(256);
    let inode_before = nsring_netns::NetNs::open_str(&name).unwrap().inode();

    for bad in ["", ".", "..", "a/b", "../escape", long.as_str()] {
        let err = fails(&["netns", "add", bad], 2);
        assert!(err.contains("invalid namespace name"), "{err}");
    }
    assert!(!run_dir_has(&long));
    assert!(!Path::new("/run/escape").exists());

    let err = fails(&["netns", "add", &name], 2);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        nsring_netns::NetNs::open_str(&name).unwrap().inode(),
        inode_before
    );

    let err = fails(&["netns", "del", &missing], 2);
    assert!(err.contains("does not exist"), "{err}");
    // One missing name: nothing is deleted.
    fails(&["netns", "del", &name, &missing], 2);
    assert!(run_dir_has(&name));
    fails(&["netns", "del", "pid:1"], 2);
    fails(&["netns", "del", ".."], 2);

    fails(&["netns", "exec", &missing, "true"], 2);
    fails(&["netns", "exec", "/nonexistent/netns", "true"], 2);
    let err = fails(&["netns", "exec", "/etc/hosts", "true"], 2);
    assert!(err.contains("not a network namespace"), "{err}");
    let err = fails(&["netns", "exec", "pid:4294967294", "true"], 2);
    assert!(err.contains("no process with PID 4294967294"), "{err}");
    assert_eq!(nsring(&["netns", "exec", &name]).status.code(), Some(2));

    fails(&["netns", "attach", &missing, "4294967294"], 2);
    assert!(!run_dir_has(&missing));
    fails(&["netns", "attach", "a/b", "1"], 2);
    let err = fails(&["netns", "attach", &missing, &lab.ns_name("nowhere")], 2);
    assert!(err.contains("does not exist"), "{err}");
    let err = fails(&["netns", "attach", &missing, "nsrtfoo:x"], 2);
    assert!(err.contains("unknown prefix"), "{err}");
    assert!(!run_dir_has(&missing));
    fails(&["netns", "identify", "4294967294"], 2);
    fails(&["netns", "pids", &missing], 2);
    let err = fails(&["netns", "pids", "pid:4294967294"], 2);
    assert!(err.contains("no process with PID"), "{err}");
    assert!(run_dir_has(&name) && !run_dir_has(&missing));
}
