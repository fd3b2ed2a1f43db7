//! Ring memory: one budget shared by all the captures of a session.
//!
//! A capture's ring is sized once, when it opens, and keeps its size for its whole life:
//! the preferred size if the budget has that much left, else what is left (whole blocks) if
//! that is at least the minimum, else the capture is refused. A closed capture gives its
//! memory back.

use nsring_capture::RingGeometry;

/// The default budget: 1 GiB.
pub const DEFAULT_BUDGET: u64 = 1 << 30;
/// The ring of each capture a pattern finds, unless set: 8 blocks of 128 KiB, half of
/// tcpdump's default buffer. A hundred namespaces then take 100 MiB.
pub const PATTERN_RING: RingGeometry = RingGeometry {
    block_size: 128 << 10,
    block_count: 8,
    frame_size: 2048,
    block_timeout_ms: 100,
};
/// The smallest ring a capture gets from what is left of the budget: two blocks.
pub const MIN_BLOCKS: u32 = 2;

/// How rings are sized: the budget and the preferred ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingPolicy {
    /// Bytes all rings together may take.
    pub budget: u64,
    /// The ring each capture asks for.
    pub preferred: RingGeometry,
}

impl RingPolicy {
    /// The usual policy for `targets_at_start` captures: with only exact targets, the
    /// command's ring (`command`) shared among them (at least [`PATTERN_RING`]'s size,
    /// whole blocks of the command's size or 128 KiB); with any pattern, [`PATTERN_RING`];
    /// `explicit` (the user set the ring) is taken as it is.
    pub fn usual(
        budget: u64,
        command: RingGeometry,
        explicit: bool,
        patterns: bool,
        exact_targets: usize,
    ) -> RingPolicy {
        let preferred = if explicit {
            command
        } else if patterns {
            RingGeometry {
                block_timeout_ms: command.block_timeout_ms,
                ..PATTERN_RING
            }
        } else {
            let share = command.total_bytes() / exact_targets.max(1) as u64;
            if share >= command.total_bytes() {
                command
            } else if share <= PATTERN_RING.total_bytes() {
                RingGeometry {
                    block_timeout_ms: command.block_timeout_ms,
                    ..PATTERN_RING
                }
            } else {
                let bs = u64::from(command.block_size);
                let (block_size, blocks) = if share / bs >= 4 {
                    (command.block_size, share / bs)
                } else {
                    (
                        PATTERN_RING.block_size,
                        share / u64::from(PATTERN_RING.block_size),
                    )
                };
                RingGeometry {
                    block_size,
                    block_count: blocks as u32,
                    ..command
                }
            }
        };
        RingPolicy { budget, preferred }
    }
}

/// The budget's bookkeeping.
#[derive(Debug)]
pub struct Budget {
    policy: RingPolicy,
    used: u64,
}

impl Budget {
    /// A budget with nothing taken yet.
    pub fn new(policy: RingPolicy) -> Budget {
        Budget { policy, used: 0 }
    }

    /// The budget's bytes.
    pub fn total(&self) -> u64 {
        self.policy.budget
    }

    /// Bytes the open rings take.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Bytes not taken.
    pub fn left(&self) -> u64 {
        self.policy.budget.saturating_sub(self.used)
    }

    /// The preferred ring's size.
    pub fn preferred_bytes(&self) -> u64 {
        self.policy.preferred.total_bytes()
    }

    /// The ring for the next capture, taken from the budget; `None` if even the minimum
    /// does not fit.
    pub fn take(&mut self) -> Option<RingGeometry> {
        let want = self.policy.preferred;
        let ring = if want.total_bytes() <= self.left() {
            want
        } else {
            let blocks = (self.left() / u64::from(want.block_size)) as u32;
            if blocks < MIN_BLOCKS.min(want.block_count) {
                return None;
            }
            RingGeometry {
                block_count: blocks,
                ..want
            }
        };
        self.used += ring.total_bytes();
        Some(ring)
    }

    /// Gives a closed capture's ring back.
    pub fn give_back(&mut self, ring: &RingGeometry) {
        self.used = self.used.saturating_sub(ring.total_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn dump_ring() -> RingGeometry {
        RingGeometry {
            block_count: 64,
            ..RingGeometry::default()
        }
    }

    #[test]
    fn the_command_ring_is_shared_among_exact_targets() {
        let p = |n| RingPolicy::usual(DEFAULT_BUDGET, dump_ring(), false, false, n).preferred;
        assert_eq!(p(1), dump_ring());
        assert_eq!(p(2).total_bytes(), 32 * MIB);
        assert_eq!(p(2).block_size, 1 << 20);
        assert_eq!(p(32).total_bytes(), 2 * MIB);
        assert_eq!(p(32).block_size, 128 << 10);
        assert_eq!(p(100).total_bytes(), MIB);
        assert_eq!(p(1000).total_bytes(), MIB);
        for n in 1..200 {
            p(n).validate().unwrap();
        }
    }

    #[test]
    fn patterns_take_the_small_ring_unless_set() {
        let p = RingPolicy::usual(DEFAULT_BUDGET, dump_ring(), false, true, 1);
        assert_eq!(p.preferred.total_bytes(), MIB);
        let p = RingPolicy::usual(DEFAULT_BUDGET, dump_ring(), true, true, 1);
        assert_eq!(p.preferred, dump_ring());
    }

    #[test]
    fn the_budget_shrinks_the_last_ring_then_refuses() {
        let mut b = Budget::new(RingPolicy {
            budget: 2 * MIB + 256 * 1024 + 5,
            preferred: PATTERN_RING,
        });
        assert_eq!(b.take().unwrap().total_bytes(), MIB);
        assert_eq!(b.take().unwrap().total_bytes(), MIB);
        let last = b.take().unwrap();
        assert_eq!(last.block_count, 2);
        assert!(b.take().is_none());
        b.give_back(&last);
        assert_eq!(b.take().unwrap().block_count, 2);
        assert_eq!(b.left(), 5);
    }
}
