//! `pfcount`: PF_RING's packet counter, as `nsring count` with PF_RING's flags. The
//! statistics blocks are pfcount's (`Absolute Stats: [...]`, `Actual Stats: [...]`, on
//! standard error).

use std::ffi::OsString;
use std::process::ExitCode;

use super::{device, direction, number, parse, unsupported};

const HELP: &str = "\
pfcount (nsring) - count packets with PF_RING's flags; nsring count does the work

-h              Print this help
-i <device>     Device: IFACE or NS/IFACE (ns0/eth1), or a comma-separated list
-f <filter>     BPF filter (tcpdump syntax)
-e <direction>  0=RX+TX, 1=RX only, 2=TX only
-c <cluster id> Cluster ID (a PACKET_FANOUT group)
-H <hash type>  Cluster hash type: 1 (round robin) spreads packets evenly, others by flow
-l <len>        Capture length (snaplen)
-N <num>        Read <num> packets and exit
-v <mode>       Verbose: 1 packet lines, 2 with the payload
-J              Do not enable promiscuous mode
-L              List the interfaces and exit
Accepted without effect (PF_RING module and thread tuning): -n -g -w -p -b -K -a -m -r -s
-S -F -t -M -B -T -U -R -0 -q. Not supported: -x -o -u -C -I -P -z -d.
";

#[derive(Debug, clap::Parser)]
#[command(
    name = "pfcount",
    disable_help_flag = true,
    disable_version_flag = true
)]
struct Flags {
    #[arg(short = 'h')]
    help: bool,
    #[arg(short = 'i')]
    device: Option<String>,
    #[arg(short = 'f')]
    filter: Option<String>,
    #[arg(short = 'e')]
    direction: Option<String>,
    #[arg(short = 'c')]
    cluster: Option<String>,
    #[arg(short = 'H')]
    hash: Option<String>,
    #[arg(short = 'l')]
    snaplen: Option<String>,
    #[arg(short = 'N')]
    num: Option<String>,
    #[arg(short = 'v')]
    verbose: Option<String>,
    #[arg(short = 'J')]
    no_promisc: bool,
    #[arg(short = 'L')]
    list: bool,
    // PF_RING tuning: accepted, no effect here
    #[arg(short = 'n')]
    _threads: Option<String>,
    #[arg(short = 'g')]
    _core: Option<String>,
    #[arg(short = 'w')]
    _watermark: Option<String>,
    #[arg(short = 'p')]
    _poll: Option<String>,
    #[arg(short = 'b')]
    _cpu: Option<String>,
    #[arg(short = 'K')]
    _min_len: Option<String>,
    #[arg(short = 'a')]
    _active: bool,
    #[arg(short = 'm')]
    _long_header: bool,
    #[arg(short = 'r')]
    _rehash: bool,
    #[arg(short = 's')]
    _hw_ts: bool,
    #[arg(short = 'S')]
    _keep_ts: bool,
    #[arg(short = 'F')]
    _keep_fcs: bool,
    #[arg(short = 't')]
    _touch: bool,
    #[arg(short = 'M')]
    _memcpy: bool,
    #[arg(short = 'B')]
    _burst: bool,
    #[arg(short = 'T')]
    _check_ts: bool,
    #[arg(short = 'U')]
    _check_ip: bool,
    #[arg(short = 'R')]
    _rss: bool,
    #[arg(short = '0')]
    _rss0: bool,
    #[arg(short = 'q')]
    _sysdig: bool,
    // features nsring does not have
    #[arg(short = 'x')]
    strings: Option<String>,
    #[arg(short = 'o')]
    dump: Option<String>,
    #[arg(short = 'u')]
    drop_rules: Option<String>,
    #[arg(short = 'C')]
    chunk: Option<String>,
    #[arg(short = 'I')]
    hw_ip: Option<String>,
    #[arg(short = 'P')]
    hw_prio: Option<String>,
    #[arg(short = 'z')]
    hw_ts_mode: Option<String>,
    #[arg(short = 'd')]
    reflector: Option<String>,
}

pub fn run(name: &str, rest: &[OsString]) -> anyhow::Result<ExitCode> {
    let f: Flags = parse(name, rest)?;
    if f.help {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    }
    for (flag, given, what, instead) in [
        ('x', f.strings.is_some(), "string search", ""),
        (
            'o',
            f.dump.is_some(),
            "dump to pcap files",
            ": use pfdump or nsring dump",
        ),
        ('u', f.drop_rules.is_some(), "drop rules", ""),
        ('C', f.chunk.is_some(), "chunk mode", ""),
        ('I', f.hw_ip.is_some(), "hardware filters", ""),
        ('P', f.hw_prio.is_some(), "hardware filter priority", ""),
        ('z', f.hw_ts_mode.is_some(), "hardware timestamps", ""),
        (
            'd',
            f.reflector.is_some(),
            "packet reflection",
            ": use nsring bridge",
        ),
    ] {
        if given {
            return Err(unsupported(name, flag, what, instead));
        }
    }
    let mut argv: Vec<OsString> = vec!["nsring".into()];
    if f.list {
        argv.push("devs".into());
        return Ok(crate::run_args(argv));
    }
    argv.push("count".into());
    argv.extend(["-i".into(), device(name, f.device)?.into()]);
    if let Some(x) = f.filter {
        argv.extend(["-f".into(), x.into()]);
    }
    if let Some(e) = f.direction {
        argv.extend(["-e".into(), direction(name, &e)?.into()]);
    }
    if let Some(c) = f.cluster {
        let id: u16 = number(name, 'c', &c)?;
        argv.extend(["-c".into(), id.to_string().into()]);
        let kind = match f.hash.as_deref().map(str::trim) {
            Some("1") => "rr",
            _ => "flow",
        };
        argv.extend(["--cluster-type".into(), kind.into()]);
    }
    if let Some(l) = f.snaplen {
        let n: u32 = number(name, 'l', &l)?;
        argv.extend(["-s".into(), n.clamp(1, 262_144).to_string().into()]);
    }
    if let Some(n) = f.num {
        let n: u64 = number(name, 'N', &n)?;
        if n > 0 {
            argv.extend(["-N".into(), n.to_string().into()]);
        }
    }
    if let Some(v) = f.verbose {
        match v.trim() {
            "1" | "2" => argv.extend(["-v".into(), v.trim().into()]),
            _ => {
                return Err(crate::usage(format!(
                    "{name} -v {v}: use 1 (verbose) or 2 (very verbose)"
                )));
            }
        }
    }
    if f.no_promisc {
        argv.push("-J".into());
    }
    argv.extend(["--app-name".into(), name.into()]);
    Ok(crate::run_args(argv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn getopt_spellings() {
        let f =
            Flags::try_parse_from(["pfcount", "-ieth1", "-e", "1", "-f", "udp", "-aJ"]).unwrap();
        assert_eq!(f.device.as_deref(), Some("eth1"));
        assert_eq!(f.direction.as_deref(), Some("1"));
        assert!(f.no_promisc && f._active);
        assert!(Flags::try_parse_from(["pfcount", "-Y"]).is_err());
    }
}
