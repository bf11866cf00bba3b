#!/usr/bin/env bash
# AFL++ fuzz targets of the fuzz/ crate (its own workspace, so the normal build needs
# no AFL). `scripts/fuzz.sh` lists the targets; `scripts/fuzz.sh TARGET SECONDS` builds
# TARGET with `cargo afl`, fuzzes it from its committed seeds for SECONDS and ends with
# the line `N execs, M crashes` (AFL's execs_done and saved_crashes). Exits 1 when a
# crash was saved; its input is under the printed output directory.
# FUZZ_RESUME=1 continues the target's previous run in place (AFL's `-i -`): its queue,
# crashes and counts carry over, so the last line totals every run since the first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGETS=(policy_decision plan_render cluster_name)

if [[ $# -eq 0 ]]; then
  printf '%s\n' "${TARGETS[@]}"
  exit 0
fi
if [[ $# -ne 2 || ! " ${TARGETS[*]} " =~ " $1 " || ! $2 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [TARGET SECONDS]; targets: ${TARGETS[*]}" >&2
  exit 2
fi
target="$1" seconds="$2"

# cargo-afl from crates.io and AFL++ built by it, once; quick when already there.
if ! cargo afl --version >/dev/null 2>&1; then
  cargo install --locked cargo-afl >&2
fi
if ! cargo afl config --version >/dev/null 2>&1 && [[ -z "$(find "${XDG_DATA_HOME:-$HOME/.local/share}/afl.rs" -name afl-fuzz -type f 2>/dev/null)" ]]; then
  cargo afl config --build >&2
fi

# Everything it writes stays under the target directory.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz"
cd "$ROOT/fuzz"
cargo afl build --release --locked -q --bin "$target" >&2

out="$CARGO_TARGET_DIR/afl/$target"
inputs="seeds/$target"
if [[ "${FUZZ_RESUME:-}" == 1 && -f "$out/default/fuzzer_stats" ]]; then
  inputs=-
else
  rm -rf "$out"
  mkdir -p "$out"
fi
# FUZZ_INSTANCES=N runs N afl-fuzz processes on one output directory: "default" leads
# (-M) and s1..s(N-1) follow (-S), sharing finds; counts are summed over all of them.
instances="${FUZZ_INSTANCES:-1}"
if [[ ! $instances =~ ^[1-9][0-9]*$ ]]; then
  echo "FUZZ_INSTANCES must be a positive count, got '$instances'" >&2
  exit 2
fi
names=(default)
for ((i = 1; i < instances; i++)); do names+=("s$i"); done

# Headless, on a shared machine: no UI, no CPU frequency or core-pattern demands, no
# core binding, and a fixed run time.
run_instance() {
  local name="$1" role=() instance_inputs="$inputs"
  if [[ $instances -gt 1 ]]; then
    if [[ $name == default ]]; then role=(-M default); else role=(-S "$name"); fi
  fi
  # A follower new to a resumed run starts from the seeds; it syncs the queue anyway.
  if [[ $instance_inputs == - && ! -f "$out/$name/fuzzer_stats" ]]; then
    instance_inputs="seeds/$target"
  fi
  AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
    AFL_QUIET=1 \
    cargo afl fuzz "${role[@]}" -V "$seconds" -i "$instance_inputs" -o "$out" \
    -- "$CARGO_TARGET_DIR/release/$target" >"$out.$name.log" 2>&1 || {
    tail -20 "$out.$name.log" >&2
    echo "afl-fuzz $name failed; log: $out.$name.log" >&2
    return 1
  }
}
pids=()
for name in "${names[@]}"; do
  run_instance "$name" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[[ $failed == 0 ]] || exit 1

stat() { awk -F' *: *' -v key="$2" '$1 == key { print $2 }' "$out/$1/fuzzer_stats"; }
execs=0 crashes=0
for name in "${names[@]}"; do
  echo "$target/$name: $(stat "$name" execs_per_sec) execs/s over $(stat "$name" run_time) s" >&2
  execs=$((execs + $(stat "$name" execs_done)))
  crashes=$((crashes + $(stat "$name" saved_crashes)))
  if [[ "$(stat "$name" saved_crashes)" != 0 ]]; then
    echo "crashing inputs: $out/$name/crashes" >&2
  fi
done
echo "output $out" >&2
echo "$execs execs, $crashes crashes"
[[ "$crashes" == 0 ]]
