//! The fuzz targets' regression test, on the stable toolchain: every committed corpus
//! file (`fuzz/corpus/TARGET/`) and every crash reproducer
//! (`tests/fuzz_regressions/TARGET/`) goes through the very function its fuzz target
//! calls (`fuzz/src/lib.rs`, included here), which panics when a parser panics or
//! breaks a bound. Each file runs in its own `catch_unwind`, so one report names every
//! failing file.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("reading a corpus folder").path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file of its corpus and reproducer folders; returns how many
/// ran, and the failures.
fn run_target(name: &str, target: fn(&[u8])) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = files_under(&root.join("fuzz/corpus").join(name));
    files.extend(files_under(&root.join("tests/fuzz_regressions").join(name)));
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("reading a corpus file");
        if let Err(panic) = std::panic::catch_unwind(|| target(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    (files.len(), failures)
}

#[test]
fn every_corpus_file_and_reproducer_runs_without_a_panic() {
    let mut failures = Vec::new();
    for &(name, target) in targets::TARGETS {
        let (ran, mut failed) = run_target(name, target);
        assert!(ran > 0, "fuzz target {name} has no committed corpus");
        eprintln!("{name}: {ran} files");
        failures.append(&mut failed);
    }
    assert!(failures.is_empty(), "fuzz regressions:\n{}", failures.join("\n"));
}

#[test]
fn every_target_has_a_fuzz_binary_and_every_corpus_a_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names: Vec<&str> = targets::TARGETS.iter().map(|(name, _)| *name).collect();
    for name in &names {
        assert!(
            root.join("fuzz/fuzz_targets").join(format!("{name}.rs")).is_file(),
            "no fuzz/fuzz_targets/{name}.rs"
        );
    }
    for folder in ["fuzz/corpus", "tests/fuzz_regressions"] {
        for dir in std::fs::read_dir(root.join(folder)).into_iter().flatten() {
            let dir = dir.unwrap().file_name().to_string_lossy().into_owned();
            assert!(names.contains(&dir.as_str()), "{folder}/{dir} names no fuzz target");
        }
    }
}
