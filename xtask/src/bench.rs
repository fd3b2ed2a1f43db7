//! `cargo xtask bench`: filled in with the capture engine (issue 3).

pub fn run(_args: &[String]) -> Result<(), String> {
    Err("the benchmark is not built yet".into())
}
