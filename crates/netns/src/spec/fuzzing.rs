//! The fuzz harness of the target grammar, shared by the AFL++ target
//! (`fuzz/targets/parse_target.rs`, run by `cargo xtask fuzz`) and the deterministic
//! mutation test that runs on stable (`crates/netns/tests/spec_fuzz.rs`).

use super::{IfPart, NsPart, NsSpec, Target};

/// What one harness run saw.
#[derive(Debug, Default)]
pub struct FuzzOutcome {
    /// Targets in the list, if it parsed.
    pub targets: usize,
    /// True if the input was one namespace ([`NsSpec`]).
    pub spec: bool,
    /// True if a part was a glob.
    pub pattern: bool,
}

/// A bare name prints as itself and parses back as [`NsSpec::Plain`]: the same namespace.
fn same_spec(a: &NsSpec, b: &NsSpec) -> bool {
    match (a, b) {
        (NsSpec::Name(x), NsSpec::Plain(y)) => x == y,
        _ => a == b,
    }
}

fn same_part(a: &NsPart, b: &NsPart) -> bool {
    match (a, b) {
        (NsPart::Spec(x), NsPart::Spec(y)) => same_spec(x, y),
        _ => a == b,
    }
}

/// Parses `data` (if it is UTF-8) as a list of targets and as one namespace, and checks the
/// grammar's invariants: every parsed value prints in a spelling that parses back to it, a
/// literal glob matches its own text, nothing panics. Panics only if an invariant is broken.
pub fn fuzz_parse(data: &[u8]) -> FuzzOutcome {
    let mut out = FuzzOutcome::default();
    let Ok(s) = std::str::from_utf8(data) else {
        return out;
    };
    match super::parse_list(s) {
        Ok(targets) => {
            assert!(!targets.is_empty(), "{s:?} parsed to no target");
            out.targets = targets.len();
            for t in &targets {
                check_target(t);
                out.pattern |= t.is_pattern();
            }
            let joined: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
            let again = super::parse_list(&joined.join(","))
                .unwrap_or_else(|e| panic!("{s:?} printed as {joined:?} fails: {e}"));
            assert_eq!(again.len(), targets.len(), "{s:?} -> {joined:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match s.parse::<NsSpec>() {
        Ok(spec) => {
            out.spec = true;
            let printed = spec.to_string();
            let back: NsSpec = printed
                .parse()
                .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?} fails: {e}"));
            assert!(same_spec(&spec, &back), "{s:?} -> {printed:?} -> {back:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    out
}

fn check_target(t: &Target) {
    let printed = t.to_string();
    let back =
        Target::parse(&printed).unwrap_or_else(|e| panic!("{t:?} printed as {printed:?}: {e}"));
    assert_eq!(back.iface, t.iface, "{t:?} -> {printed:?}");
    match (&t.ns, &back.ns) {
        (Some(a), Some(b)) => assert!(same_part(a, b), "{t:?} -> {printed:?} -> {back:?}"),
        (a, b) => assert_eq!(a, b, "{printed:?}"),
    }
    if let IfPart::Glob(g) = &t.iface {
        let text = g.to_string();
        let _ = g.is_match(&text);
        if let Some(lit) = g.as_literal() {
            assert!(g.is_match(&lit), "{g:?} does not match its literal {lit:?}");
        }
    }
    if let Some(NsPart::Glob { glob, .. }) = &t.ns
        && let Some(lit) = glob.as_literal()
    {
        assert!(
            glob.is_match(&lit),
            "{glob:?} does not match its literal {lit:?}"
        );
    }
}
