//! The capture session of `count` and `dump`: their options turned into an
//! `nsring_multi::Session` (targets, ring budget, deadline, Ctrl-C).

use std::time::Instant;

use anyhow::Context;
use nsring_capture::{CaptureConfig, RingGeometry};
use nsring_multi::{Options, RingPolicy, Session, TargetInfo};
use nsring_netns::PROC_NET_INIT_INO;

use crate::cmd::count::{CaptureArgs, Defaults};

/// A session, opened, with what the banner says about it.
#[derive(Debug)]
pub struct Started {
    pub session: Session,
    /// Exactly one target, named exactly: the command keeps its one-capture output.
    pub single: bool,
    pub config: CaptureConfig,
    /// The ring each capture asks for.
    pub ring: RingGeometry,
    /// The targets as given.
    pub texts: Vec<String>,
}

/// Parses the targets, opens every capture they match now (an exact target that is not
/// there is an error, exit 2; so is a pattern that matches nothing, unless --follow), sets
/// the deadline and makes Ctrl-C (and SIGTERM) stop the session cleanly.
pub fn start(c: &CaptureArgs, defaults: Defaults, command: &str) -> anyhow::Result<Started> {
    let targets = c.targets()?;
    let config = c.config(defaults, command)?;
    let explicit = c.blocks.is_some() || c.block_kib.is_some();
    let patterns = targets.iter().any(|t| !t.is_exact());
    let exact = targets.iter().filter(|t| t.is_exact()).count();
    let budget = match c.many.ring_budget {
        Some(mib) => mib
            .checked_mul(1 << 20)
            .ok_or_else(|| crate::usage("--ring-budget is too large"))?,
        None => nsring_multi::budget::DEFAULT_BUDGET,
    };
    let ring = RingPolicy::usual(
        budget,
        c.geometry(defaults.blocks)?,
        explicit,
        patterns,
        exact,
    );
    ring.preferred.validate()?;
    let single = targets.len() == 1 && !patterns;
    let texts = targets.iter().map(|t| t.text.clone()).collect();
    let exact_targets = targets.clone();
    let mut session = Session::new(Options {
        targets,
        config: config.clone(),
        ring,
        rescan: nsring_multi::DEFAULT_RESCAN,
    })?;
    if !session.unmatched().is_empty() && !c.many.follow {
        let list = session
            .unmatched()
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(crate::usage(format!(
            "nothing matches {list}; check the names (nsring netns list --all, nsring devs), or give --follow to wait for it"
        )));
    }
    // the namespaces are open and nothing is captured yet: the runtimes may be asked
    crate::identity::learn(&exact_targets);
    if let Some(d) = c.duration {
        session.stop_at(Instant::now() + d);
    }
    let stopper = session.stopper();
    ctrlc::set_handler(move || {
        let _ = stopper.stop();
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(Started {
        session,
        single,
        config,
        ring: ring.preferred,
        texts,
    })
}

/// `netns NAME (inode N)`, and `, container podman:web1 (3f2a9c1b2c3d)` when it belongs to
/// one: as a pcapng interface description and a banner say it.
pub fn ns_description(t: &TargetInfo) -> String {
    let name = if !t.netns.is_empty() {
        t.netns.as_str()
    } else if t.netns_inode == PROC_NET_INIT_INO {
        "initial"
    } else {
        "current"
    };
    format!(
        "netns {name} (inode {}){}",
        t.netns_inode,
        crate::identity::suffix(&crate::identity::of(t))
    )
}

/// The banner's list of targets: each with its namespace's inode, or the targets as given
/// when there are many.
pub fn describe_targets(s: &Started) -> String {
    let open: Vec<&TargetInfo> = s.session.open_targets().collect();
    if s.single
        && let [t] = open.as_slice()
    {
        let container = crate::identity::suffix(&crate::identity::of(t));
        return format!("{} (netns inode {}{container})", t.label(), t.netns_inode);
    }
    format!(
        "{} ({} interface{} in {} namespace{} now)",
        s.texts.join(", "),
        open.len(),
        if open.len() == 1 { "" } else { "s" },
        s.session.namespace_count(),
        if s.session.namespace_count() == 1 {
            ""
        } else {
            "s"
        },
    )
}
