//! The packet_diag codec (`nsring_registry::diag`) on any bytes: no panic, no hang, no allocation past the limit.
use nsring_fuzz::Bounded;

#[global_allocator]
static ALLOC: Bounded = Bounded::new();

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = nsring_registry::fuzzing::fuzz_diag(data);
    });
}
