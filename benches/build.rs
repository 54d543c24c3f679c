//! Writes the hand-written-style Rust baseline for the shaped rule sets
//! (`src/shaped.rs`) to `$OUT_DIR/baseline.rs`, from the same rule list the
//! benchmarks compile as Warden text.

#[allow(dead_code)] // the build script uses only the generator and the Rust writer
#[path = "src/shaped.rs"]
mod shaped;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=src/shaped.rs");
    println!("cargo::rerun-if-changed=build.rs");
    let mut out = String::new();
    for n in shaped::SIZES {
        out.push_str(&shaped::ShapedSet::generate(n, shaped::SEED).rust_source(&n.to_string()));
    }
    let dir = std::env::var("OUT_DIR")?;
    std::fs::write(std::path::Path::new(&dir).join("baseline.rs"), out)?;
    Ok(())
}
