//! The house plan, checked on the code itself (docs/architecture.md): the storage
//! engine is named only in `src/store/`, and the crate's error type knows nothing of
//! the HTTP edge. A change that breaks either fails here, with the places named.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (doc comments included).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let code = match line.find("//") {
                Some(at) => &line[..at],
                None => line,
            };
            (!code.trim().is_empty()).then(|| (i + 1, code.to_string()))
        })
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn only_the_store_names_the_storage_engine() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let store = src().join("store");
    let engine_words = [
        "sled",
        "IVec",
        "Tree::",
        "TransactionalTree",
        "ConflictableTransactionError",
    ];
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&store)) {
        for (number, code) in code_lines(file) {
            for word in engine_words {
                let named = code.match_indices(word).any(|(at, _)| {
                    let before = code[..at].chars().next_back();
                    !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if named {
                    found.push(format!("{}:{number}: {}", file.display(), code.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the storage engine is named outside src/store/:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > 800).then(|| format!("{}: {lines} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by concern:\n{}", long.join("\n"));
}

#[test]
fn the_error_type_knows_nothing_of_http() {
    let text = std::fs::read_to_string(src().join("error.rs")).unwrap();
    for word in ["warp", "StatusCode", "http::"] {
        assert!(
            !code_lines(&src().join("error.rs"))
                .iter()
                .any(|(_, code)| code.contains(word)),
            "error.rs names {word}: the HTTP mapping lives in web/ (HttpStatus)"
        );
    }
    assert!(text.contains("source"), "internal errors keep their source");
}
