//! Links the functions `postern serve` runs before its first answer next to
//! each other, so that start-up touches a few megabytes of the binary's code
//! in one place instead of pages all over its 14 MB (docs/PERFORMANCE.md,
//! round seven: idle memory 17.0–17.8 → 10.9–11.8 MB on SQLite).
//!
//! `startup.order` lists those functions, one symbol name per line, as
//! `scripts/startup-order` recorded them (with callgrind) from a release
//! build; the hash Rust puts at the end of a symbol is a wildcard there, so a
//! rebuild or a new dependency version still finds them. This script turns
//! the list into a linker script that puts their sections into one output
//! section, `.text.postern_startup`, inserted before `.text`; both GNU ld
//! and LLD (Rust's default linker on x86_64 Linux) read it. A name that is
//! no longer in the binary matches nothing and costs nothing.
//!
//! Release builds on Linux only: matching some two thousand patterns
//! against every section of an unoptimised build added 25 s to each debug
//! link of the binary, for memory nobody measures there.
//! `POSTERN_STARTUP_ORDER=off` builds without it (for a linker that reads
//! no linker scripts, such as mold).

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=startup.order");
    println!("cargo:rerun-if-env-changed=POSTERN_STARTUP_ORDER");
    let linux = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let off = env::var("POSTERN_STARTUP_ORDER").is_ok_and(|v| v == "off");
    if !linux || !release || off {
        return;
    }
    let order = fs::read_to_string("startup.order").expect("crates/postern/startup.order");
    let script = linker_script(&order);
    let path = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("startup.ld");
    fs::write(&path, script).expect("write startup.ld");
    println!(
        "cargo:rustc-link-arg-bin=postern=-Wl,--script={}",
        path.display()
    );
}

/// One input-section rule per listed function: LLVM names a function's
/// section `.text.NAME`, or `.text.unlikely.NAME` when it judged the
/// function cold (most start-up code, which runs once); GCC (SQLite,
/// aws-lc) also uses `.text.startup.NAME`.
fn linker_script(order: &str) -> String {
    let mut script = String::from("SECTIONS {\n  .text.postern_startup : {\n");
    for name in order
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        // Characters a linker script would read as syntax never occur in a
        // mangled name; a line with one is not a name.
        .filter(|l| {
            l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_$.*".contains(&b))
        })
    {
        script.push_str(&format!(
            "    *(.text.{name} .text.unlikely.{name} .text.startup.{name})\n"
        ));
    }
    script.push_str("  }\n} INSERT BEFORE .text;\n");
    script
}
