//! What every benchmark prints about the conditions it ran in, beside its figures: the
//! filesystem its data folder lives on (type, device, mount and filesystem options, from
//! `/proc/self/mountinfo`), since sync costs differ by orders of magnitude between a
//! tmpfs, an overlay on an SSD and a spinning disk; and the work it leaves out.

use std::path::{Path, PathBuf};

/// Prints where `data_dir` lives, then what the figures leave out, one line each.
pub fn print_conditions(data_dir: &Path, excluded: &[&str]) {
    println!("data folder:   {}", filesystem(data_dir));
    println!("not measured:");
    for line in excluded {
        println!("  - {line}");
    }
}

/// `PATH on MOUNT (type T, source S, mount options M, filesystem options F)` for the
/// mount that holds `path` (the deepest, and the last one mounted there).
pub fn filesystem(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return format!("{} (filesystem unknown: no /proc/self/mountinfo)", path.display());
    };
    let mut best: Option<(usize, String)> = None;
    for line in table.lines() {
        // ID PARENT MAJ:MIN ROOT MOUNT_POINT MOUNT_OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 6 || right.len() < 3 {
            continue;
        }
        let mount = PathBuf::from(unescape(left[4]));
        if !path.starts_with(&mount) {
            continue;
        }
        let depth = mount.components().count();
        if best.as_ref().is_some_and(|(d, _)| *d > depth) {
            continue;
        }
        let described = format!(
            "{} on {} (type {}, source {}, mount options {}, filesystem options {})",
            path.display(),
            mount.display(),
            right[0],
            unescape(right[1]),
            left[5],
            right[2]
        );
        best = Some((depth, described));
    }
    best.map(|(_, d)| d)
        .unwrap_or_else(|| format!("{} (no mount found for it)", path.display()))
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}
