//! Embeds the experiments: every `experiments/NAME.toml`, sorted by name, becomes an entry
//! `BuiltinExperiment { name: "NAME", text: include_str!("/abs/.../NAME.toml") }` of the table
//! that `src/experiment/mod.rs` includes from `$OUT_DIR/experiments.rs`. Adding an experiment
//! is dropping its file in experiments/ and rebuilding.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=experiments");
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let dir = Path::new(&manifest).join("experiments");
    let table = experiment_table(&experiment_files(&dir));
    let dest = Path::new(&out).join("experiments.rs");
    if let Err(e) = std::fs::write(&dest, table) {
        panic!("cannot write {}: {e}", dest.display());
    }
}

/// The `*.toml` files of `dir` as (name, absolute path), sorted by name.
fn experiment_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the experiments in {}: {e}", dir.display()));
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot read the experiments in {}: {e}", dir.display()))
            .path();
        if path.extension().is_none_or(|x| x != "toml") || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            panic!(
                "{}: an experiment's file name must be UTF-8",
                path.display()
            );
        };
        files.push((name.to_string(), path.clone()));
    }
    files.sort();
    files
}

/// Rust source of a slice expression of `BuiltinExperiment`s, one per file.
fn experiment_table(files: &[(String, PathBuf)]) -> String {
    let mut table = String::from("&[\n");
    for (name, path) in files {
        let Some(path) = path.to_str() else {
            panic!(
                "{}: the path of an experiment must be UTF-8",
                path.display()
            );
        };
        // `{:?}` of a str is a Rust string literal, quotes and escapes included.
        table.push_str(&format!(
            "    BuiltinExperiment {{ name: {name:?}, text: include_str!({path:?}) }},\n"
        ));
    }
    table.push(']');
    table
}
