//! README.md shows the usage example that `examples/readme.rs` compiles, word for word.

#[test]
fn the_readme_example_is_the_compiled_one() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let example = std::fs::read_to_string(format!("{root}/examples/readme.rs")).expect("examples/readme.rs");
    let shown = readme
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md has a ```rust block");
    let compiled: String = example.lines().filter(|l| !l.starts_with("//!")).map(|l| format!("{l}\n")).collect();
    assert_eq!(shown, compiled, "README.md's example differs from examples/readme.rs");
    assert!(compiled.lines().count() <= 22, "the example stays short");
}
