//! The registry record parser (`nsring_registry::record::format`) on any bytes: no panic, no hang, no allocation past the limit.
use nsring_fuzz::Bounded;

#[global_allocator]
static ALLOC: Bounded = Bounded::new();

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = nsring_registry::fuzzing::fuzz_record(data);
    });
}
