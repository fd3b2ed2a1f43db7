//! The nsring-pcap test binary: fixtures, round trips, bad input, interop with tcpdump and
//! tshark, and the deterministic fuzz run.

mod bad_input;
mod common;
mod corpus;
mod fixtures;
mod fuzz_stable;
mod interop;
mod libpcap_rules;
mod reference;
mod roundtrip;
