//! Fuzz the target grammar (`nsring_netns::spec`): any bytes must parse or fail with a
//! message, never panic, and whatever parses must print in a spelling that parses back to
//! it. The same harness runs on stable in `crates/netns/tests/spec_fuzz.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nsring_netns::spec::fuzzing::fuzz_parse(data);
});
