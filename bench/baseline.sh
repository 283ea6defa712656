# bench/baseline.sh - sourced by bench/run.sh and bench/ladder.sh: a
# trustgate binary built from an earlier revision, to be measured beside
# this tree's in the same run.
#
# baseline_build ROOT REV CACHE: export revision REV of the git checkout at
# ROOT with `git archive` (no worktree, nothing in ROOT changes) into
# CACHE/<commit>/src, build its trustgate as a plain Release build without
# tests in CACHE/<commit>/build, and set BASELINE_BIN to the binary and
# BASELINE_COMMIT to the short commit.  A binary already built there is
# reused (a commit's sources never change).  Returns 1, with a message on
# stderr and the build's last lines, when REV is unknown or does not build.
# shellcheck shell=bash
baseline_build() {
    local root=$1 rev=$2 cache=$3 full dir log
    if ! full=$(git -C "$root" rev-parse --verify --quiet "$rev^{commit}"); then
        echo "bench: baseline revision '$rev' is not a commit of $root" >&2
        return 1
    fi
    BASELINE_COMMIT=$(git -C "$root" rev-parse --short "$full")
    dir=$cache/$full
    BASELINE_BIN=$dir/build/trustgate
    if [ -x "$BASELINE_BIN" ] && [ -f "$dir/built" ]; then
        return 0
    fi
    echo "bench: building trustgate at $BASELINE_COMMIT in $dir (once; reused by later runs)" >&2
    rm -rf "$dir"
    mkdir -p "$dir/src"
    if ! git -C "$root" archive --format=tar "$full" | tar -x -C "$dir/src"; then
        echo "bench: cannot export $BASELINE_COMMIT with git archive" >&2
        return 1
    fi
    if ! log=$(cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DTG_TESTS=OFF 2>&1 &&
        cmake --build "$dir/build" -j "${BENCH_JOBS:-2}" --target trustgate 2>&1); then
        tail -n 30 <<<"$log" >&2
        echo "bench: trustgate at $BASELINE_COMMIT does not build" >&2
        return 1
    fi
    : >"$dir/built"
}
