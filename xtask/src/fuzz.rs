//! `cargo xtask fuzz`: coverage-guided fuzzing of every parser of outside bytes with
//! AFL++ (through `cargo afl`, which instruments on stable Rust), a counted number of
//! executions per target, findings kept as regression inputs.
//!
//! Each target in `fuzz/targets` runs under an allocator that aborts past 64 MiB live
//! (unbounded allocation becomes a crash); AFL++ counts an input that runs longer than
//! the timeout as a hang. A target passes when it ran at least the asked executions
//! with no crash and no hang. Inputs that crashed or hung are copied to
//! `fuzz/regressions/<target>/`, which the crates' tests replay.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::sh::{Sh, fail};
use crate::{cargo, root};

const USAGE: &str = "\
usage: cargo xtask fuzz [--execs N] [--target NAME]... [--json FILE]

Runs each fuzz target under AFL++ for N executions (default 10000000) and prints a table:
target, executions, time, executions/s, corpus, coverage, crashes, hangs. Installs
cargo-afl (a crates.io package) when it is missing.

targets: pcap_read (pcap/pcapng reader), packet_diag (packet_diag codec),
         registry_record (registry record parser), parse_target (NS/IFACE grammar)
";

/// The targets, with what each one fuzzes.
pub const TARGETS: &[(&str, &str)] = &[
    ("pcap_read", "pcap/pcapng reader"),
    ("packet_diag", "packet_diag codec"),
    ("registry_record", "registry record parser"),
    ("parse_target", "NS/IFACE target grammar"),
];

/// The cargo-afl release the targets' `afl` dependency matches.
const CARGO_AFL: &str = "0.18.2";

/// Milliseconds after which AFL++ counts an input as a hang.
const HANG_MS: &str = "1000";

/// One target's run.
#[derive(Debug, Clone)]
pub struct FuzzRun {
    pub target: &'static str,
    pub what: &'static str,
    pub execs: u64,
    pub secs: f64,
    pub corpus: u64,
    pub coverage: String,
    pub crashes: u64,
    pub hangs: u64,
}

impl FuzzRun {
    pub fn passed(&self, wanted: u64) -> bool {
        self.crashes == 0 && self.hangs == 0 && self.execs >= wanted
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target,
            "parser": self.what,
            "executions": self.execs,
            "seconds": self.secs,
            "corpus": self.corpus,
            "coverage": self.coverage,
            "crashes": self.crashes,
            "hangs": self.hangs,
        })
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut execs = 10_000_000u64;
    let mut targets: Vec<&'static str> = Vec::new();
    let mut json = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--execs" => {
                execs = val("--execs")?
                    .parse()
                    .map_err(|e| format!("--execs: {e}"))?;
            }
            "--target" => {
                let t = val("--target")?;
                let known = TARGETS.iter().find(|(n, _)| *n == t).ok_or_else(|| {
                    format!(
                        "unknown fuzz target '{t}': use pcap_read, packet_diag, registry_record or parse_target"
                    )
                })?;
                targets.push(known.0);
            }
            "--json" => json = Some(val("--json")?),
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => return fail(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|(n, _)| *n).collect();
    }
    let runs = fuzz(&targets, execs)?;
    println!("{}", table(&runs));
    if let Some(path) = json {
        let v: Vec<_> = runs.iter().map(FuzzRun::json).collect();
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap_or_default())
            .map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    let bad: Vec<&FuzzRun> = runs.iter().filter(|r| !r.passed(execs)).collect();
    if bad.is_empty() {
        Ok(())
    } else {
        fail(format!(
            "fuzzing found problems in {} (inputs copied to fuzz/regressions/)",
            bad.iter().map(|r| r.target).collect::<Vec<_>>().join(", ")
        ))
    }
}

/// Build the targets and run each for `execs` executions.
pub fn fuzz(targets: &[&'static str], execs: u64) -> Result<Vec<FuzzRun>, String> {
    ensure_cargo_afl()?;
    let dir = root().join("fuzz");
    let sh = Sh::new().dir(&dir);
    sh.run(&cargo(), &["afl", "build", "--release", "--quiet"])?;
    let mut runs = Vec::new();
    for &t in targets {
        runs.push(fuzz_one(&dir, t, execs)?);
    }
    Ok(runs)
}

fn ensure_cargo_afl() -> Result<(), String> {
    let sh = Sh::new();
    if sh.output(&cargo(), &["afl", "--version"]).is_ok() {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-afl {CARGO_AFL} (AFL++ for stable Rust)");
    sh.run(
        &cargo(),
        &[
            "install",
            "--locked",
            "--quiet",
            "cargo-afl",
            "--version",
            CARGO_AFL,
        ],
    )
}

fn fuzz_one(dir: &Path, target: &'static str, execs: u64) -> Result<FuzzRun, String> {
    let what = TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map_or("", |(_, w)| w);
    let out = dir.join("target/afl").join(target);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let log = std::fs::File::create(out.join("afl.log")).map_err(|e| e.to_string())?;
    let seeds = dir.join("seeds").join(target);
    let dict = dir.join("dict").join(format!("{target}.dict"));
    let bin = dir.join("target/release").join(target);
    let execs_s = execs.to_string();
    let args: Vec<&str> = vec![
        "afl",
        "fuzz",
        "-i",
        path_str(&seeds)?,
        "-o",
        path_str(&out)?,
        "-x",
        path_str(&dict)?,
        "-E",
        &execs_s,
        "-t",
        HANG_MS,
        "--",
        path_str(&bin)?,
    ];
    eprintln!("xtask: fuzzing {target} ({what}) for {execs} executions");
    let started = Instant::now();
    let status = Sh::new()
        .dir(dir)
        .env("AFL_NO_UI", "1")
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_NO_AFFINITY", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .cmd(&cargo(), &args)
        .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
        .stderr(Stdio::from(log))
        .status()
        .map_err(|e| format!("cannot run cargo afl fuzz: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    let stats_path = out.join("default/fuzzer_stats");
    let stats = std::fs::read_to_string(&stats_path).map_err(|_| {
        format!(
            "cargo afl fuzz {target} ended ({status}) without statistics; see {}",
            out.join("afl.log").display()
        )
    })?;
    let field = |k: &str| {
        stats
            .lines()
            .find_map(|l| {
                let (key, v) = l.split_once(':')?;
                (key.trim() == k).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let num = |k: &str| field(k).parse::<u64>().unwrap_or(0);
    let run = FuzzRun {
        target,
        what,
        execs: num("execs_done"),
        secs,
        corpus: num("corpus_count"),
        coverage: field("bitmap_cvg"),
        crashes: num("saved_crashes"),
        hangs: num("saved_hangs"),
    };
    keep_findings(dir, &out, target)?;
    Ok(run)
}

/// Copy crashing and hanging inputs to `fuzz/regressions/<target>/`.
fn keep_findings(dir: &Path, out: &Path, target: &str) -> Result<(), String> {
    let keep = dir.join("regressions").join(target);
    for kind in ["crashes", "hangs"] {
        let Ok(entries) = std::fs::read_dir(out.join("default").join(kind)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("id:") {
                continue;
            }
            std::fs::create_dir_all(&keep).map_err(|e| e.to_string())?;
            let id = name.split(',').next().unwrap_or("id").replace(':', "-");
            let to: PathBuf = keep.join(format!("{kind}-{id}-{}.bin", std::process::id()));
            std::fs::copy(e.path(), &to).map_err(|e| e.to_string())?;
            eprintln!("xtask: {target}: {kind} input kept as {}", to.display());
        }
    }
    Ok(())
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

/// The runs as a text table.
pub fn table(runs: &[FuzzRun]) -> String {
    let mut s = format!(
        "{:<16} {:<24} {:>12} {:>8} {:>9} {:>7} {:>8} {:>7} {:>5}\n",
        "target",
        "parser",
        "executions",
        "time",
        "execs/s",
        "corpus",
        "coverage",
        "crashes",
        "hangs"
    );
    for r in runs {
        s.push_str(&format!(
            "{:<16} {:<24} {:>12} {:>7.0}s {:>9.0} {:>7} {:>8} {:>7} {:>5}\n",
            r.target,
            r.what,
            r.execs,
            r.secs,
            r.execs as f64 / r.secs.max(0.001),
            r.corpus,
            r.coverage,
            r.crashes,
            r.hangs
        ));
    }
    s.trim_end().to_owned()
}
