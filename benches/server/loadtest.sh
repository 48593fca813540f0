#!/usr/bin/env bash
# Load test of `spamlens serve` on loopback with wrk (Debian: apt-get install wrk): images/s and
# p50/p90/p99 latency at concurrency 1, 8 and 64, against offline `spamlens classify` on the same
# images in the same run (the reference: goal server/offline >= 0.90).
#
#   benches/server/loadtest.sh                 # the default server configuration
#   benches/server/loadtest.sh --compare       # also: workers × threads layouts and batch sizes
#
# Options: --duration SECONDS (per point, default 20), --images N (default 48),
# --spamlens PATH (default target/debug/spamlens; build with `cargo build --workspace`).
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=20
count=48
spamlens=target/debug/spamlens
compare=false
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --images) count=$2; shift 2 ;;
    --spamlens) spamlens=$2; shift 2 ;;
    --compare) compare=true; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -x "$spamlens" ] || { echo "$spamlens is missing: cargo build --workspace" >&2; exit 1; }
shared=${SPAMLENS_SHARED:-../shared}
cores=$(nproc)

work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The same images for both: an even stride over both shared sets' manifests.
list=$work/images.txt
for set in dredze2007 image-spam-hunter; do
  manifest=$shared/data/imagespam/$set/manifest.tsv
  rows=$(($(wc -l <"$manifest") - 1))
  step=$((rows / (count / 2)))
  awk -v step="$step" -v n=$((count / 2)) -v root="$shared/data/imagespam/$set/" \
    'NR > 1 && (NR - 2) % step == 0 && taken < n { print root $1; taken++ }' "$manifest"
done >"$list"
mapfile -t images <"$list"
echo "images: ${#images[@]} (both shared sets), $cores cores, $duration s per point"

# Offline reference: classify the list 4 times over; the CLI reports images/s of the classification
# alone (model load excluded). On every core, and on one (what one request at a time can use).
offline_rate() {
  "$spamlens" classify --jobs "$1" "${images[@]}" "${images[@]}" "${images[@]}" "${images[@]}" 2>&1 >/dev/null \
    | sed -n 's/.* \([0-9.]*\) images\/s on.*/\1/p'
}
offline=$(offline_rate "$cores")
offline1=$(offline_rate 1)
echo "offline spamlens classify: --jobs $cores $offline images/s, --jobs 1 $offline1 images/s"

start_server() {
  server_pid=""
  "$spamlens" serve --listen 127.0.0.1:0 "$@" >"$work/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 600); do
    grep -q "ready:" "$work/serve.log" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.1
  done
  url=$(sed -n 's/.*listening on \(http:[^ ]*\)\/ .*/\1/p' "$work/serve.log")
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || { echo "the server exited with $?" >&2; exit 1; }
  server_pid=""
}

point() { # label concurrency
  local threads=$(( $2 < cores ? $2 : cores ))
  # A short warm-up, then the measured run.
  wrk -t "$threads" -c "$2" -d 3s --timeout 60s -s benches/server/rotate.lua "$url/v1/classify" -- "$list" >/dev/null
  local line
  line=$(wrk -t "$threads" -c "$2" -d "${duration}s" --timeout 60s -s benches/server/rotate.lua "$url/v1/classify" -- "$list" | tail -1)
  python3 - "$1" "$2" "$offline" "$offline1" "$line" <<'PY'
import json, sys
label, c, offline, offline1, r = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), json.loads(sys.argv[5])
rate = r["requests"] / r["seconds"]
# At concurrency 1 one image is in flight at a time: also compare with offline on one core.
same = f"  vs --jobs 1 {rate / offline1:4.2f}" if c == 1 else ""
print(f"{label:<34} c={c:<3} {rate:6.2f} images/s  ratio {rate / offline:5.2f}{same}  "
      f"p50 {r['p50_ms']:7.0f} ms  p90 {r['p90_ms']:7.0f} ms  p99 {r['p99_ms']:7.0f} ms  "
      f"errors {r['non_2xx'] + r['socket_errors']}")
PY
}

run_config() { # label, then serve flags
  local label=$1; shift
  start_server "$@"
  for c in $concurrencies; do point "$label" "$c"; done
  stop_server
}

concurrencies="1 8 64"
run_config "default" 
if $compare; then
  concurrencies="8"
  for c in 8 64; do
    concurrencies=$c
    run_config "workers 1 × $cores threads" --workers 1 --intra-op-threads "$cores"
    run_config "workers $cores × $cores threads" --intra-op-threads "$cores"
    run_config "workers $cores × 1 thread, batch 4" --max-batch 4
    run_config "workers $cores × 1 thread, batch 8" --max-batch 8
    run_config "batch 4, wait 5 ms" --max-batch 4 --max-wait-ms 5
  done
  concurrencies=1
  run_config "workers 1 × $cores threads" --workers 1 --intra-op-threads "$cores"
fi
