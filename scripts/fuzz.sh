#!/bin/sh
# Runs lifeboat's coverage-guided fuzz targets (fuzz/, README "Fuzzing").
#
#   scripts/fuzz.sh [TARGET|all] [RUNS]
#
# TARGET is one of the names below (default: all, one after another); RUNS is the
# number of executions per target (default 10000000). Each run starts from the
# committed corpus (fuzz/corpus/TARGET/) and the seeds made from tests/reference/ and
# tests/fixtures/ (scripts/fuzz-seeds.py) and what earlier runs found (fuzz/work/,
# not committed), then rewrites the committed corpus as the fewest inputs that reach
# every edge any of them reach (`cargo fuzz cmin`, set cover) plus the seeds. A crash
# ends that target's run (the next one starts; the script fails at the end) and leaves
# its input in fuzz/artifacts/TARGET/: fix the parser, copy the input to
# tests/fuzz_regressions/TARGET/, and `cargo test --test fuzz_corpus` keeps it fixed.
# Runs at nice 19. Needs a nightly toolchain and cargo-fuzz (installed when missing).
set -eu
cd "$(dirname "$0")/.."

ALL="webfinger nodeinfo lfbk_open form push entity magic_envelope private_envelope hcard archive"
TARGET=${1:-all}
RUNS=${2:-10000000}
[ "$TARGET" = all ] && TARGETS=$ALL || TARGETS=$TARGET
for t in $TARGETS; do
    case " $ALL " in *" $t "*) ;; *) echo "unknown fuzz target $t; one of: $ALL" >&2; exit 2 ;; esac
done

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

rm -rf fuzz/seeds
python3 scripts/fuzz-seeds.py fuzz/seeds

# No AddressSanitizer by default: the code is safe Rust, and without it a run is 10 to
# 30 times faster; FUZZ_SANITIZER=address brings it back (for the C and assembly in
# dependencies). Debug assertions (overflow checks) stay on either way.
SANITIZER=${FUZZ_SANITIZER:-none}
mkdir -p fuzz/logs
failed=""
for t in $TARGETS; do
    case $t in
        archive) max_len=16384 ;;
        hcard) max_len=8192 ;;
        *) max_len=4096 ;;
    esac
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/work/$t"
    echo "== $t: $RUNS runs (log: fuzz/logs/$t.log)" >&2
    # New inputs go to fuzz/work/ (not committed); the committed corpus and the seeds
    # are read. -timeout: an input taking 5 s is a hang; -rss_limit_mb: a parser
    # needing 1 GiB for a 16 KiB input is a finding.
    if ! nice -n 19 cargo +nightly fuzz run --fuzz-dir fuzz -s "$SANITIZER" "$t" \
        "fuzz/work/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -runs="$RUNS" -max_len="$max_len" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
        >"fuzz/logs/$t.log" 2>&1; then
        failed="$failed $t"
        grep -E -A3 "panicked at|ERROR: libFuzzer|Test unit written" "fuzz/logs/$t.log" >&2 || true
    fi
    grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec" \
        "fuzz/logs/$t.log" >&2 || true
    # The committed corpus: the fewest inputs that reach every edge reached (set cover,
    # hit counts ignored), then the seeds; fuzz/work/ keeps everything for the next run.
    cp "fuzz/work/$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
    nice -n 19 cargo +nightly fuzz cmin --fuzz-dir fuzz -s "$SANITIZER" "$t" "fuzz/corpus/$t" -- \
        -max_len="$max_len" -set_cover_merge=1 -use_counters=0 >>"fuzz/logs/$t.log" 2>&1
    cp "fuzz/seeds/$t"/* "fuzz/corpus/$t/"
    echo "   committed corpus: $(ls "fuzz/corpus/$t" | wc -l) files" >&2
done
if [ -n "$failed" ]; then
    echo "crashed:$failed (inputs in fuzz/artifacts/TARGET/)" >&2
    exit 1
fi
