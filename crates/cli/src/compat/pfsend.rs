//! `pfsend`: PF_RING's traffic generator, as `nsring send` with PF_RING's flags (`-n` frames,
//! `-r` Gbit/s, `-p` pps, `-f` a pcap file, `-b` source addresses). `nsring send` runs as a
//! child; its statistics come out as pfsend prints them, on standard output:
//! `TX rate: [current ...][average ...][total N pkts]` once a second, `Sent N packets` at
//! the end.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;

use super::{device, number, parse, self_exe, unsupported};

const HELP: &str = "\
pfsend (nsring) - send synthetic traffic or a pcap file with PF_RING's flags; nsring send
does the work

pfsend -i out_dev [-f <.pcap file>] [-l <length>] [-n <num>] [-r <rate>] [-p <rate>]
       [-m <dst MAC>] [-b <num>] [-S <ip>] [-D <ip>] [-V <version>] [-L <num>]

-h              Print this help
-i <device>     Device: IFACE or NS/IFACE (ns0/eth1)
-f <.pcap file> Send the packets of a pcap or pcapng file (once, unless -n)
-l <length>     Packet length to send (60 or more). Ignored with -f
-n <num>        Num pkts to send (0 or none: until Ctrl-C)
-r <Gbps rate>  Rate in Gbit/s counting preamble, CRC and gap (24 bytes); -r -1 replays a
                pcap at its own pace
-p <pps rate>   Rate in packets per second
-m <dst MAC>    Destination MAC (AA:BB:CC:DD:EE:FF)
-b <num>        Source IP addresses to cycle through
-S <ip>         Base source IP for -b
-D <ip>         Destination IP
-V <version>    IP version 4 or 6
-L <num>        VLAN: 1 tags every packet with VLAN 1
Accepted without effect: -a -g -w -F -O -z -v. Not supported: -o -d -P -V 0 -L >1.
";

#[derive(Debug, clap::Parser)]
#[command(name = "pfsend", disable_help_flag = true, disable_version_flag = true)]
struct Flags {
    #[arg(short = 'h')]
    help: bool,
    #[arg(short = 'i')]
    device: Option<String>,
    #[arg(short = 'f')]
    file: Option<String>,
    #[arg(short = 'l')]
    length: Option<String>,
    #[arg(short = 'n')]
    num: Option<String>,
    #[arg(short = 'r', allow_hyphen_values = true)]
    gbps: Option<String>,
    #[arg(short = 'p')]
    pps: Option<String>,
    #[arg(short = 'm')]
    dst_mac: Option<String>,
    #[arg(short = 'b')]
    num_ips: Option<String>,
    #[arg(short = 'S')]
    src_ip: Option<String>,
    #[arg(short = 'D')]
    dst_ip: Option<String>,
    #[arg(short = 'V')]
    ip_version: Option<String>,
    #[arg(short = 'L')]
    vlans: Option<String>,
    #[arg(short = 'a')]
    _active: bool,
    #[arg(short = 'g')]
    _core: Option<String>,
    #[arg(short = 'w')]
    _watermark: Option<String>,
    #[arg(short = 'F')]
    _flush: bool,
    #[arg(short = 'O')]
    _on_the_fly: bool,
    #[arg(short = 'z')]
    _randomize: bool,
    #[arg(short = 'v')]
    _verbose: bool,
    #[arg(short = 'o')]
    offset: Option<String>,
    #[arg(short = 'd')]
    daemon: bool,
    #[arg(short = 'P')]
    pid_file: Option<String>,
}

/// PF_RING's rate in Gbit/s as packets per second: each frame costs its length plus 24 bytes
/// on the wire (preamble 8, CRC 4, gap 12), as pfsend computes it.
fn gbps_to_pps(gbps: f64, len: usize) -> f64 {
    gbps * 1e9 / 8.0 / (len as f64 + 24.0)
}

pub fn run(name: &str, rest: &[OsString]) -> anyhow::Result<ExitCode> {
    let f: Flags = parse(name, rest)?;
    if f.help {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    }
    if f.offset.is_some() {
        return Err(unsupported(name, 'o', "offsets", ""));
    }
    if f.daemon {
        return Err(unsupported(
            name,
            'd',
            "daemon mode",
            ": run it in the background",
        ));
    }
    if f.pid_file.is_some() {
        return Err(unsupported(name, 'P', "pid files", ""));
    }
    let dev = device(name, f.device)?;
    let len: usize = match &f.length {
        Some(l) => number::<usize>(name, 'l', l)?.max(60),
        None => 60,
    };
    let num: u64 = match &f.num {
        Some(n) => number(name, 'n', n)?,
        None => 0,
    };
    let mut argv: Vec<OsString> = vec!["send".into(), "-i".into(), dev.clone().into()];
    let mut rate_note = None;
    match &f.file {
        Some(path) => {
            argv.extend(["-r".into(), path.into()]);
            // pfsend sends the file once unless -n says how many packets (looping)
            if f.num.is_some() {
                argv.extend(["--loop".into(), "0".into()]);
            }
            if f.gbps.as_deref().map(str::trim) != Some("-1") && f.pps.is_none() {
                argv.push("--top-speed".into());
            }
        }
        None => argv.extend(["-l".into(), len.to_string().into()]),
    }
    if num > 0 {
        argv.extend(["-N".into(), num.to_string().into()]);
    }
    if let Some(p) = &f.pps {
        let pps: f64 = number(name, 'p', p)?;
        if pps > 0.0 {
            argv.extend(["--pps".into(), format!("{pps}").into()]);
            rate_note = Some(format!("Rate set to {pps:.2} pps"));
        }
    } else if let Some(g) = &f.gbps {
        let gbps: f64 = number(name, 'r', g)?;
        if gbps > 0.0 {
            let pps = gbps_to_pps(gbps, len);
            argv.extend(["--pps".into(), format!("{pps:.3}").into()]);
            rate_note = Some(format!(
                "Rate set to {gbps:.2} Gbit/s, {}-byte packets, {pps:.2} pps",
                len + 4
            ));
        }
    }
    if let Some(m) = &f.dst_mac {
        argv.extend(["--dst-mac".into(), m.into()]);
    }
    if let Some(b) = &f.num_ips {
        let n: u32 = number(name, 'b', b)?;
        argv.extend(["--src-count".into(), n.max(1).to_string().into()]);
    }
    if let Some(s) = &f.src_ip {
        argv.extend(["--src-ip".into(), s.into()]);
    }
    if let Some(d) = &f.dst_ip {
        argv.extend(["--dst-ip".into(), d.into()]);
    }
    match f.ip_version.as_deref().map(str::trim) {
        None | Some("4") => {}
        Some("6") => argv.push("-6".into()),
        Some(v) => {
            return Err(crate::usage(format!(
                "{name} -V {v}: nsring sends IPv4 (4) or IPv6 (6), not a mix"
            )));
        }
    }
    match f.vlans.as_deref().map(str::trim) {
        None => {}
        Some("1") => argv.extend(["--vlan".into(), "1".into()]),
        Some(v) => {
            return Err(crate::usage(format!(
                "{name} -L {v}: nsring tags with one VLAN (-L 1)"
            )));
        }
    }

    println!("Sending packets on {dev}");
    if let Some(r) = rate_note {
        println!("{r}");
    }
    std::io::stdout().flush()?;
    run_child(name, argv)
}

/// Runs `nsring send` and prints its statistics as pfsend does: the `TX rate` lines and the
/// final count on standard output, anything else (errors) on standard error.
fn run_child(name: &str, argv: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let mut child = Command::new(self_exe())
        .arg0("nsring")
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{name}: cannot start nsring send"))?;
    // A signal for this process (SIGTERM from a script) goes to the sender too; Ctrl-C
    // reaches both from the terminal.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    ctrlc::set_handler(move || {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    })
    .context("cannot install the Ctrl-C handler")?;
    let err = child.stderr.take().expect("piped");
    let mut out = std::io::stdout();
    for line in BufReader::new(err).lines().map_while(Result::ok) {
        if line.starts_with("TX rate:") {
            writeln!(out, "{line}")?;
            out.flush()?;
        } else if let Some(n) = line
            .strip_prefix("Sent ")
            .and_then(|l| l.split_whitespace().next())
        {
            writeln!(out, "Sent {} packets", n.replace('\'', ""))?;
        } else {
            eprintln!("{}", line.replacen("nsring: ", &format!("{name}: "), 1));
        }
    }
    let status = child.wait()?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

use std::os::unix::process::CommandExt as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pfsend_rates() {
        // 1 Gbit/s of 60-byte frames: 1e9 / 8 / 84
        assert!((gbps_to_pps(1.0, 60) - 1_488_095.238).abs() < 0.01);
        assert!((gbps_to_pps(10.0, 1514) - 812_743.823).abs() < 0.01);
    }
}
