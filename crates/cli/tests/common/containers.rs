//! Helpers of the container tests (Podman and Docker labs): frames sent out of a
//! container's `eth0`, `nsring count` runs with exact counts, one-line errors.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use nsring_capture::Sender;
use nsring_netns::NetNs;

use super::{NSRING, Running, json_lines, start};

const SRC: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x01];
const DST: [u8; 6] = [0x02, 0x6e, 0x73, 0x72, 0x74, 0x02];

/// Variables nsring runs with (the labs' `CONTAINERS_CONF`, `DOCKER_HOST`, ...).
pub type Env = [(String, String)];

/// `n` UDP frames to port 9, `len` bytes each, out of `eth0` of `ns`.
pub fn send(ns: &NetNs, n: usize, len: usize) {
    let payload = vec![0x5a; len - 14 - 20 - 8];
    let mut f = Vec::new();
    PacketBuilder::ethernet2(SRC, DST)
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(40000, 9)
        .write(&mut f, &payload)
        .unwrap();
    let s = Sender::open(ns, "eth0").unwrap();
    for _ in 0..n {
        s.send(&f).unwrap();
    }
}

/// `nsring count ARGS` in the background, once it says it is capturing.
pub fn count(env: &Env, args: &[&str]) -> Running {
    let mut cmd = Command::new(NSRING);
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .arg("count")
        .args(args);
    start(cmd, "capturing on", Stdio::piped())
}

/// Waits (bounded) for the capturer to exit; returns (status, stdout, stderr).
pub fn finish(mut r: Running, within: Duration) -> (i32, String, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = r.child.try_wait().unwrap() {
            let mut out = String::new();
            r.child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            // the banner first: start() took it
            let err: Vec<String> = std::iter::once(r.ready.clone())
                .chain(r.lines.try_iter())
                .collect();
            return (st.code().unwrap_or(-1), out, err.join("\n"));
        }
        assert!(Instant::now() < deadline, "capturer did not finish in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `--json` line holding `"final"`.
pub fn final_json(out: &str) -> serde_json::Value {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("\"final\""))
        .unwrap_or_else(|| panic!("no final JSON in {out:?}"));
    json_lines(line).remove(0)
}

/// Counts exactly `n` frames sent out of the container's eth0 (`ns`), captured through
/// `target`; returns count's stdout and stderr. Outgoing only: Podman's bridge ports are in
/// hairpin mode, so a flooded frame also comes back in on eth0.
pub fn exact_count(env: &Env, ns: &NetNs, target: &str, n: usize) -> (String, String) {
    exact_count_with(env, ns, target, n, &[])
}

/// [`exact_count`] with more arguments for count (`--backend ring`, say).
pub fn exact_count_with(
    env: &Env,
    ns: &NetNs,
    target: &str,
    n: usize,
    more: &[&str],
) -> (String, String) {
    let n_text = n.to_string();
    let mut args = vec![
        "-i",
        target,
        "-e",
        "out",
        "-f",
        "udp port 9",
        "-N",
        &n_text,
        "--json",
    ];
    args.extend_from_slice(more);
    let r = count(env, &args);
    send(ns, n, 200);
    let (code, out, err) = finish(r, Duration::from_secs(30));
    assert_eq!(code, 0, "{target}: {err}");
    let v = final_json(&out);
    assert_eq!(v["packets"], n as u64, "{target}: {out}");
    assert_eq!(v["bytes"], (n * 200) as u64, "{target}: {out}");
    (out, err)
}

/// Runs nsring to completion; (exit code, stdout, stderr).
pub fn nsring(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(NSRING)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs nsring expecting success; its stdout.
pub fn ok(env: &Env, args: &[&str]) -> String {
    let (code, out, err) = nsring(env, args);
    assert_eq!(code, 0, "nsring {args:?}: {err}");
    out
}

/// Runs nsring expecting exit `code` and one error line containing `what`; the line.
pub fn fails(env: &Env, args: &[&str], code: i32, what: &str) -> String {
    let (got, _, err) = nsring(env, args);
    assert_eq!(got, code, "nsring {args:?}: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {err:?}");
    assert!(lines[0].starts_with("nsring: error: "), "{}", lines[0]);
    assert!(
        lines[0].contains(what),
        "{args:?}: {} lacks {what:?}",
        lines[0]
    );
    lines[0].to_owned()
}

/// `env` with more variables.
pub fn with(env: &Env, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = env.to_vec();
    v.extend(more.iter().map(|(k, x)| (k.to_string(), x.to_string())));
    v
}

/// Dumps exactly `n` frames sent out of the container's eth0 (`ns`) through `target` into a
/// pcapng file; returns dump's stderr and, per packet, tshark's
/// `interface_name<TAB>interface_description`.
pub fn dump_described(env: &Env, ns: &NetNs, target: &str, n: usize) -> (String, Vec<String>) {
    let file = std::env::temp_dir().join(format!(
        "nsrt-{}-dump-{}.pcapng",
        std::process::id(),
        target.replace(['/', ':'], "_")
    ));
    let mut cmd = Command::new(NSRING);
    cmd.envs(env.iter().map(|(k, v)| (k, v))).args([
        "dump",
        "-i",
        target,
        "-e",
        "out",
        "-f",
        "udp port 9",
        "-N",
        &n.to_string(),
        "-w",
        file.to_str().unwrap(),
    ]);
    let r = start(cmd, "capturing on", Stdio::null());
    send(ns, n, 200);
    let mut child = r;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "dump did not finish in time");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(50));
    let err: Vec<String> = std::iter::once(child.ready.clone())
        .chain(child.lines.try_iter())
        .collect();
    assert!(status.success(), "{target}: {err:?}");
    let out = Command::new("tshark")
        .args(["-r", file.to_str().unwrap(), "-T", "fields"])
        .args([
            "-e",
            "frame.interface_name",
            "-e",
            "frame.interface_description",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(rows.len(), n, "{target}: {rows:?}");
    (err.join("\n"), rows)
}
