#!/usr/bin/env bash
# Load benchmark: one run on this machine, every case against the same baselines.
# The body is the realistic ~900-byte Segment Python track event of
# benches/track_event.json, each event with its own messageId (as every SDK sends),
# so that deduplication does its real work. For 32 and 256 connections:
#   (a) bare hyper server answering 200 (examples/bare_hyper.rs): the CPU limit;
#   (b) durable baseline (examples/durable_hyper.rs): the same server appending each
#       body to a file and answering after a group-committed fdatasync: the disk's limit
#       for "200 means durable";
#   (c) intake POST /v1/track, log sink on disk, default configuration (dedup on);
#   (d) the same with dedup off (dedup.window_secs = 0);
#   (e) intake POST /v1/track with its data dir on tmpfs (fsync free), run before (b);
#   (f) intake POST /v1/batch of 100 such events on tmpfs;
# then, at 32 connections, the remote sinks (dedup on):
#   (g) Redis stream sink (redis-server with AOF appendfsync always);
#   (h) NATS JetStream sink (one nats-server -js, file storage), and (i) its batch of 100.
# Ratios printed per concurrency: cpu = (e)/(a), durable = (c)/(b), p99 = (c)/(b),
# dedup = (c)/(d); (f) in events/s; remote sinks against the durable baseline: (g)/(b)
# and (h)/(b) at 32 connections, and (i) in events/s.
# The disk's speed drifts from one case to the next (the baseline alone moved by 30 %
# between runs), so (b) and (c) run as REPEAT adjacent pairs, b c b c …, and the
# durable and p99 ratios are the median of the pairs' ratios, with their range.
# Installs wrk, redis-server and nats-server from Debian's packages when missing.
# Per-key request and event budgets are off for the run.
# Usage: benches/load.sh [seconds per case, 8] [durable pairs, 3]; WARM_GB (6): the
# memory written and freed on tmpfs before the batch case (see warm_memory).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-8}
REPEAT=${2:-3}
THREADS=1

need() {
  command -v "$1" >/dev/null 2>&1 && return
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2"
}
need wrk wrk
need redis-server redis-server
[ -x /usr/sbin/nats-server ] && PATH=$PATH:/usr/sbin
need nats-server nats-server

cargo build --release --quiet --bin intake --example bare_hyper --example durable_hyper
# Disk cases under target/ (the repository's disk), tmpfs cases under /dev/shm.
DISK=$(mktemp -d "$PWD/target/load.XXXXXX")
SHM=$(mktemp -d /dev/shm/intake-load.XXXXXX)
PIDS=()
# Stops the servers and frees what they wrote (GBs on tmpfs would slow later cases).
stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
  PIDS=()
  rm -rf "$SHM"/* "$DISK"/log-* "$DISK"/nodedup-* "$DISK"/durable-* "$DISK"/redis* "$DISK"/nats*
}
cleanup() { stop_all; rm -rf "$DISK" "$SHM"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened"; exit 1; }

# Memory the guest has not touched lately costs a hypervisor fault per page on first
# write: tmpfs (and page-cache) writes to it ran at ~0.5 GB/s on our VM against
# ~4 GB/s once touched. This VM's balloon reports freed memory back to the host
# (virtio-balloon free page reporting), so whatever a case frees is soon untouched
# again: a warm-up at the start of the script had faded by the time the later tmpfs
# cases ran. So the batch case, which writes ~5 GB, is preceded by writing and
# deleting WARM_GB on tmpfs (a few seconds), and the tmpfs cases of a concurrency
# run right after its bare server, before the disk cases fill the page cache. The
# track case writes under 1 GB and runs without it: the host taking back 8 GB of
# freed pages during the case cost it more than cold pages did.
warm_memory() {
  local free_mb want_mb
  free_mb=$(df -m --output=avail "$SHM" | tail -1)
  want_mb=$(awk -v shm="$free_mb" -v gb="${WARM_GB:-6}" '/MemAvailable/ { m = int($2 / 1024 * 3 / 4); if (m > gb * 1024) m = gb * 1024; if (m > shm - 1024) m = shm - 1024; print (m > 0 ? m : 0) }' /proc/meminfo)
  dd if=/dev/zero of="$SHM/warm" bs=1M count="$want_mb" status=none
  rm -f "$SHM/warm"
}

API_KEY=api_LoadBenchKey00000000000000000000000000000
API_KEY=${API_KEY:0:44}

# Bodies: every "__ID__" becomes a new messageId per request (wrk's Lua, below).
python3 - benches/track_event.json "$DISK/track.json" "$DISK/batch.json" <<'PY'
import json, sys
event = json.load(open(sys.argv[1])); event["messageId"] = "__ID__"
json.dump(event, open(sys.argv[2], "w"), separators=(",", ":"))
json.dump({"batch": [event] * 100}, open(sys.argv[3], "w"), separators=(",", ":"))
PY

# run_wrk NAME CONNECTIONS URL BODY_FILE AUTH → "NAME|rps|p50|p99|non2xx" (ms)
run_wrk() {
  local name=$1 connections=$2 url=$3 body=$4 auth=$5
  cat > "$DISK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "$auth"
local f = io.open("$body", "rb"); local template = f:read("*a"); f:close()
-- The body split at its "__ID__"s once; each request joins the parts with new ids.
local parts, from = {}, 1
while true do
  local at = template:find("__ID__", from, true)
  if not at then break end
  parts[#parts + 1] = template:sub(from, at - 1); parts[#parts + 1] = ""
  from = at + 6
end
parts[#parts + 1] = template:sub(from)
local run, n = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000)) .. "-", 0
request = function()
  for i = 2, #parts, 2 do n = n + 1; parts[i] = run .. n end
  return wrk.format(nil, nil, nil, table.concat(parts))
end
LUA
  local out
  out=$(wrk -t"$THREADS" -c"$connections" -d"${SECONDS_EACH}s" --latency -s "$DISK/post.lua" "$url")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$name|$rps|$(to_ms "$p50")|$(to_ms "$p99")|${non2xx:-0}"
}
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }

start_intake() { # DATA_DIR SINK [REDIS_URL] [NATS_URL] [extra env...] → sets INGEST ADMIN
  local dir=$1 sink=$2 url=${3:-redis://127.0.0.1:1} nats=${4:-nats://127.0.0.1:1}
  shift 4 || shift $#
  INGEST=$(free_port); ADMIN=$(free_port)
  env "$@" INTAKE_INGEST__LISTEN=127.0.0.1:$INGEST INTAKE_ADMIN__LISTEN=127.0.0.1:$ADMIN \
  INTAKE_STORE__DATA_DIR=$dir INTAKE_SINK__BACKEND=$sink INTAKE_STORE__REDIS_URL=$url \
  INTAKE_SINK__NATS_URL=$nats INTAKE_SINK__SPOOL_DIR=$dir/spool \
  INTAKE_ADMIN__BOOTSTRAP_API_KEY=$API_KEY INTAKE_RATE_LIMIT__PER_KEY_PER_SECOND=0 INTAKE_RATE_LIMIT__PER_KEY_EVENTS_PER_SECOND=0 \
  RUST_LOG=warn ./target/release/intake >"$dir.log" 2>&1 &
  PIDS+=($!)
  wait_port "$INGEST"; wait_port "$ADMIN"
  local ws conn key
  ws=$(curl -s -X POST "127.0.0.1:$ADMIN/v1/workspaces" -H "Authorization: Bearer $API_KEY" -d '{"name":"load"}' | sed 's/.*"id":\([0-9]*\).*/\1/')
  conn=$(curl -s -X POST "127.0.0.1:$ADMIN/v1/connections" -H "Authorization: Bearer $API_KEY" -H "Intake-Workspace: $ws" -d '{"name":"load","type":"sdk"}' | sed 's/.*"id":\([0-9]*\).*/\1/')
  key=$(curl -s "127.0.0.1:$ADMIN/v1/connections/$conn/event-write-keys" -H "Authorization: Bearer $API_KEY" -H "Intake-Workspace: $ws" | sed 's/.*\["\([^"]*\)".*/\1/')
  AUTH="Basic $(printf '%s:' "$key" | base64 -w0)"
}

declare -A ROW
RESULTS=()
record() { ROW[$1]=$2; RESULTS+=("$2"); }

for C in 32 256; do
  PORT=$(free_port)
  ./target/release/examples/bare_hyper "127.0.0.1:$PORT" 2>/dev/null & PIDS+=($!)
  wait_port "$PORT"
  record "a$C" "$(run_wrk "(a) bare hyper, -c$C" "$C" "http://127.0.0.1:$PORT/v1/track" "$DISK/track.json" "Basic eDo=")"
  stop_all

  start_intake "$SHM/log-$C" log
  record "e$C" "$(run_wrk "(e) intake track on tmpfs, -c$C" "$C" "http://127.0.0.1:$INGEST/v1/track" "$DISK/track.json" "$AUTH")"
  stop_all

  warm_memory
  start_intake "$SHM/batch-$C" log
  record "f$C" "$(run_wrk "(f) intake batch of 100 on tmpfs, -c$C" "$C" "http://127.0.0.1:$INGEST/v1/batch" "$DISK/batch.json" "$AUTH")"
  stop_all

  for R in $(seq 1 "$REPEAT"); do
    PORT=$(free_port)
    ./target/release/examples/durable_hyper "127.0.0.1:$PORT" "$DISK/durable-$C.ndjson" 2>/dev/null & PIDS+=($!)
    wait_port "$PORT"
    record "b$C.$R" "$(run_wrk "(b) durable baseline (fdatasync), -c$C #$R" "$C" "http://127.0.0.1:$PORT/v1/track" "$DISK/track.json" "Basic eDo=")"
    stop_all

    start_intake "$DISK/log-$C" log
    record "c$C.$R" "$(run_wrk "(c) intake track, log sink on disk, -c$C #$R" "$C" "http://127.0.0.1:$INGEST/v1/track" "$DISK/track.json" "$AUTH")"
    stop_all
  done

  start_intake "$DISK/nodedup-$C" log "" "" INTAKE_DEDUP__WINDOW_SECS=0
  record "d$C" "$(run_wrk "(d) the same, dedup off, -c$C" "$C" "http://127.0.0.1:$INGEST/v1/track" "$DISK/track.json" "$AUTH")"
  stop_all

done

REDIS=$(free_port)
redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always --dir "$DISK" >/dev/null & REDIS_PID=$!
wait_port "$REDIS"
start_intake "$DISK/redis" redis "redis://127.0.0.1:$REDIS"
record g "$(run_wrk "(g) intake track, Redis stream sink (AOF always), -c32" 32 "http://127.0.0.1:$INGEST/v1/track" "$DISK/track.json" "$AUTH")"
stop_all; kill "$REDIS_PID"

NATS=$(free_port)
nats-server -js -a 127.0.0.1 -p "$NATS" -sd "$DISK/nats-store" >/dev/null 2>&1 & NATS_PID=$!
wait_port "$NATS"
start_intake "$DISK/nats" nats "" "nats://127.0.0.1:$NATS"
record h "$(run_wrk "(h) intake track, NATS JetStream sink, -c32" 32 "http://127.0.0.1:$INGEST/v1/track" "$DISK/track.json" "$AUTH")"
record i "$(run_wrk "(i) intake batch of 100, NATS sink, -c32" 32 "http://127.0.0.1:$INGEST/v1/batch" "$DISK/batch.json" "$AUTH")"
stop_all; kill "$NATS_PID"

field() { cut -d'|' -f"$2" <<<"${ROW[$1]}"; }
echo
echo "wrk -t$THREADS -d${SECONDS_EACH}s on $(nproc) cores, load generator on the same machine, $(date -u +%F)"
printf '| %-46s | %10s | %8s | %8s | %7s |\n' case "requests/s" "p50 ms" "p99 ms" "non-2xx"
printf '| %-46s | %10s | %8s | %8s | %7s |\n' --- --- --- --- ---
for row in "${RESULTS[@]}"; do
  IFS='|' read -r name rps p50 p99 bad <<<"$row"
  printf '| %-46s | %10s | %8s | %8s | %7s |\n' "$name" "$rps" "$p50" "$p99" "$bad"
done
echo
# pairs C COLUMN → one "baseline intake" line per durable pair
pairs() { for R in $(seq 1 "$REPEAT"); do echo "$(field "b$1.$R" "$2") $(field "c$1.$R" "$2")"; done; }
# median_ratio: reads "baseline intake" lines → "median (pairs min–max)" of intake/baseline
median_ratio() { awk '{ printf "%.6f\n", $2 / $1 }' | sort -g | awk '{ r[NR] = $1 } END {
  m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2; printf "%.2f (pairs %.2f–%.2f)", m, r[1], r[NR] }'; }
median_col() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for C in 32 256; do
  echo "-c$C: cpu = (e)/(a) = $(awk -v a="$(field "a$C" 2)" -v e="$(field "e$C" 2)" 'BEGIN { printf "%.2f", e/a }');" \
    "durable = (c)/(b) = $(pairs "$C" 2 | median_ratio);" \
    "p99 (c)/(b) = $(pairs "$C" 4 | median_ratio);" \
    "dedup on/off = (c)/(d) = $(awk -v c="$(pairs "$C" 2 | awk '{print $2}' | median_col)" -v d="$(field "d$C" 2)" 'BEGIN { printf "%.2f", c/d }');" \
    "batch = $(awk -v f="$(field "f$C" 2)" 'BEGIN { printf "%.0f", 100*f }') events/s"
done
awk -v g="$(field g 2)" -v h="$(field h 2)" -v i="$(field i 2)" -v b="$(pairs 32 2 | awk '{print $1}' | median_col)" 'BEGIN {
  printf "-c32 remote sinks: Redis stream (g)/(b) = %.2f; NATS (h)/(b) = %.2f; NATS batch of 100 = %.0f events/s\n", g/b, h/b, 100*i }'
