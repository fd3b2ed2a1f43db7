//! The target grammar's fuzz harness on stable: deterministic mutations of valid targets.
//! (AFL++ runs the same harness: `fuzz/targets/parse_target.rs`, `cargo xtask fuzz`; the
//! inputs it kept in `fuzz/regressions/parse_target/` are replayed below.)

use std::time::{Duration, Instant};

use nsring_netns::spec::fuzzing::fuzz_parse;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    "eth0",
    "ns0/eth1",
    "pid:42/any",
    "/run/netns/x/veth0",
    "./ns/eth0",
    "podman:web1/eth0",
    "docker:3f2a9c/eth0,containerd:k8s-1/any",
    "name:a\\:b/eth0",
    "nsrt-*/veth[0-9]",
    "podman:web[!a-c]?/e*",
    "we\\,ird\\*/eth\\*",
    "foo:bar/eth0",
    "a,b,c",
    "\\any",
];

/// Characters the grammar cares about, and a few it does not.
const ALPHABET: &[char] = &[
    '\\', '/', ',', ':', '*', '?', '[', ']', '!', '^', '-', 'a', '0', ' ', '.', 'é', '\0',
];

const WORDS: &[&str] = &[
    "pid:",
    "name:",
    "podman:",
    "docker:",
    "containerd:",
    "any",
    "/",
    ",",
];

fn mutate(rng: &mut Rng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    for _ in 0..=rng.below(3) {
        let i = rng.below(c.len() + 1);
        match rng.below(5) {
            0 => c.insert(i, ALPHABET[rng.below(ALPHABET.len())]),
            1 if i < c.len() => {
                c.remove(i);
            }
            2 if i < c.len() => c[i] = ALPHABET[rng.below(ALPHABET.len())],
            3 => {
                let w = WORDS[rng.below(WORDS.len())];
                c.splice(i..i, w.chars());
            }
            _ => c.truncate(i),
        }
    }
    c.into_iter().collect()
}

#[test]
fn fuzz_harness_survives_mutations() {
    for s in SEEDS {
        let out = fuzz_parse(s.as_bytes());
        assert!(out.targets > 0, "seed {s:?} does not parse");
    }
    let start = Instant::now();
    let mut rng = Rng(0x5eed_1234_5678_9abc);
    let (mut ok, mut patterns, mut specs) = (0u32, 0u32, 0u32);
    let iterations = 200_000;
    for _ in 0..iterations {
        let seed = SEEDS[rng.below(SEEDS.len())];
        let s = mutate(&mut rng, seed);
        let out = fuzz_parse(s.as_bytes());
        ok += u32::from(out.targets > 0);
        patterns += u32::from(out.pattern);
        specs += u32::from(out.spec);
    }
    // Raw bytes, invalid UTF-8 included.
    for n in 0..20_000u32 {
        let bytes: Vec<u8> = (0..(n % 17)).map(|_| rng.below(256) as u8).collect();
        fuzz_parse(&bytes);
    }
    let took = start.elapsed();
    eprintln!(
        "{iterations} mutations in {took:?}: {ok} parsed, {patterns} patterns, {specs} specs"
    );
    // The mutator reaches both sides of the grammar.
    assert!(
        ok > iterations / 5 && ok < iterations * 19 / 20,
        "{ok} parsed"
    );
    assert!(
        patterns > 1000 && specs > 1000,
        "{patterns} patterns, {specs} specs"
    );
    assert!(took < Duration::from_secs(30), "fuzz run took {took:?}");
}

/// The AFL++ seeds and every input `cargo xtask fuzz` found a problem with (kept in
/// `fuzz/regressions/parse_target/`) run through the harness.
#[test]
fn fuzz_inputs_replay() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("parse_target")) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let _ = fuzz_parse(&std::fs::read(e.path()).unwrap());
            n += 1;
        }
    }
    assert!(n >= 10, "seeds missing: {n}");
}
