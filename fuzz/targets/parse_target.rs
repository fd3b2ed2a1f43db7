//! The NS/IFACE target grammar (`nsring_netns::spec`) on any bytes: no panic, no hang, no
//! allocation past the limit; what parses prints in a spelling that parses back to it.
use nsring_fuzz::Bounded;

#[global_allocator]
static ALLOC: Bounded = Bounded::new();

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = nsring_netns::spec::fuzzing::fuzz_parse(data);
    });
}
