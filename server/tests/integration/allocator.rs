//! The server's allocator as built (`.cargo/config.toml`, docs/BENCHMARKS.md "Memory per idle
//! WebSocket"): the options that keep an idle member small are in the binary itself, not only
//! in the environment a benchmark happened to run in.

use std::process::Command;

/// jemalloc prints its options when the process ends if its environment asks it to, beside
/// the ones it was built with; the server is asked only for its help, so it ends at once.
#[test]
fn the_server_is_built_with_its_allocator_options() {
    let output = Command::new(env!("CARGO_BIN_EXE_burner"))
        .arg("--help")
        .env("MALLOC_CONF", "stats_print:true")
        .output()
        .expect("burner runs");
    assert!(output.status.success(), "burner --help failed");
    let printed = String::from_utf8_lossy(&output.stderr);
    let options: Vec<&str> = printed.lines().map(str::trim).filter(|line| line.starts_with("opt.")).collect();
    for option in [
        // Freed pages go back within a second, at once, and a thread's return of them
        // happens while the server idles.
        "opt.dirty_decay_ms: 1000",
        "opt.muzzy_decay_ms: 0",
        "opt.background_thread: true",
        // Blocks over 4 KiB are not cached per thread, and at most 32 of each smaller size.
        "opt.tcache_max: 4096",
        "opt.tcache_nslots_small_max: 32",
    ] {
        assert!(
            // The value whole ("1000", not the start of "10000"), then perhaps its arena's.
            options
                .iter()
                .any(|line| line.strip_prefix(option).is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))),
            "{option} is not among jemalloc's options: {options:#?}"
        );
    }
}
