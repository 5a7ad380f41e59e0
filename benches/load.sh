#!/usr/bin/env bash
# Load benchmark: in one run on this machine, throughput and latency of
#   (a) a bare hyper server answering 200 (examples/bare_hyper.rs),
#   (b) intake POST /v1/track with a valid key and the log sink (fsync per group),
#   (c) intake POST /v1/track with the Redis stream sink,
#   (d) intake POST /v1/batch of 100 events (log sink),
#   (e) intake POST /v1/track with the NATS JetStream sink (one nats-server -js, file
#       storage, stream created by intake with 1 replica),
#   (f) intake POST /v1/batch of 100 events with the NATS sink,
# each also as a ratio to (a), so that runs on noisy machines stay comparable, and the
# NATS cases as a ratio to the same case on the log sink (the durable baseline).
# Installs wrk, redis-server and nats-server from Debian's packages when missing. Per-key rate
# limits are turned off for the run. Usage: benches/load.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
CONNECTIONS=${2:-32}
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

cargo build --release --quiet --bin intake --example bare_hyper
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened"; exit 1; }

API_KEY=api_LoadBenchKey00000000000000000000000000000
API_KEY=${API_KEY:0:44}

# run_wrk NAME URL BODY_FILE AUTH → prints "NAME rps p50 p99" (ms)
run_wrk() {
  local name=$1 url=$2 body=$3 auth=$4
  cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$body", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "$auth"
LUA
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s "$WORK/post.lua" "$url")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  echo "$name|$rps|$(to_ms "$p50")|$(to_ms "$p99")|${non2xx:-0}"
}
to_ms() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.2f", n }'; }

start_intake() { # DATA_DIR SINK REDIS_URL [NATS_URL] → sets INGEST ADMIN
  local dir=$1 sink=$2 url=$3 nats=${4:-nats://127.0.0.1:1}
  INGEST=$(free_port); ADMIN=$(free_port)
  INTAKE_INGEST__LISTEN=127.0.0.1:$INGEST INTAKE_ADMIN__LISTEN=127.0.0.1:$ADMIN \
  INTAKE_STORE__DATA_DIR=$dir INTAKE_SINK__BACKEND=$sink INTAKE_STORE__REDIS_URL=$url \
  INTAKE_SINK__NATS_URL=$nats \
  INTAKE_ADMIN__BOOTSTRAP_API_KEY=$API_KEY INTAKE_RATE_LIMIT__PER_KEY_PER_SECOND=0 \
  RUST_LOG=warn ./target/release/intake >"$dir.log" 2>&1 &
  PIDS+=($!)
  wait_port "$INGEST"; wait_port "$ADMIN"
}
write_key() { # → prints a new sdk key on the intake at $ADMIN
  local ws conn
  ws=$(curl -s -X POST "127.0.0.1:$ADMIN/v1/workspaces" -H "Authorization: Bearer $API_KEY" -d '{"name":"load"}' | sed 's/.*"id":\([0-9]*\).*/\1/')
  conn=$(curl -s -X POST "127.0.0.1:$ADMIN/v1/connections" -H "Authorization: Bearer $API_KEY" -H "Intake-Workspace: $ws" -d '{"name":"load","type":"sdk"}' | sed 's/.*"id":\([0-9]*\).*/\1/')
  curl -s "127.0.0.1:$ADMIN/v1/connections/$conn/event-write-keys" -H "Authorization: Bearer $API_KEY" -H "Intake-Workspace: $ws" | sed 's/.*\["\([^"]*\)".*/\1/'
}

echo '{"userId":"user-42","event":"Order Completed","properties":{"orderId":"o-1","total":99.5,"currency":"EUR"},"context":{"library":{"name":"analytics-node","version":"2.1.0"}}}' > "$WORK/track.json"
python3 - "$WORK/track.json" "$WORK/batch.json" <<'PY'
import json, sys
event = json.load(open(sys.argv[1])); event["type"] = "track"
json.dump({"batch": [event] * 100}, open(sys.argv[2], "w"))
PY

RESULTS=()
BARE=$(free_port)
./target/release/examples/bare_hyper "127.0.0.1:$BARE" 2>/dev/null & PIDS+=($!)
wait_port "$BARE"
RESULTS+=("$(run_wrk "(a) bare hyper" "http://127.0.0.1:$BARE/v1/track" "$WORK/track.json" "Basic eDo=")")

start_intake "$WORK/log" log redis://127.0.0.1:1
KEY=$(write_key); AUTH="Basic $(printf '%s:' "$KEY" | base64 -w0)"
RESULTS+=("$(run_wrk "(b) intake track, log sink" "http://127.0.0.1:$INGEST/v1/track" "$WORK/track.json" "$AUTH")")
RESULTS+=("$(run_wrk "(d) intake batch of 100, log sink" "http://127.0.0.1:$INGEST/v1/batch" "$WORK/batch.json" "$AUTH")")

REDIS=$(free_port)
redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always --dir "$WORK" >/dev/null & PIDS+=($!)
wait_port "$REDIS"
start_intake "$WORK/redis" redis "redis://127.0.0.1:$REDIS"
KEY=$(write_key); AUTH="Basic $(printf '%s:' "$KEY" | base64 -w0)"
RESULTS+=("$(run_wrk "(c) intake track, Redis stream sink (AOF fsync always)" "http://127.0.0.1:$INGEST/v1/track" "$WORK/track.json" "$AUTH")")

NATS=$(free_port)
nats-server -js -a 127.0.0.1 -p "$NATS" -sd "$WORK/nats-store" >/dev/null 2>&1 & PIDS+=($!)
wait_port "$NATS"
start_intake "$WORK/nats" nats redis://127.0.0.1:1 "nats://127.0.0.1:$NATS"
KEY=$(write_key); AUTH="Basic $(printf '%s:' "$KEY" | base64 -w0)"
RESULTS+=("$(run_wrk "(e) intake track, NATS JetStream sink (file storage)" "http://127.0.0.1:$INGEST/v1/track" "$WORK/track.json" "$AUTH")")
RESULTS+=("$(run_wrk "(f) intake batch of 100, NATS JetStream sink" "http://127.0.0.1:$INGEST/v1/batch" "$WORK/batch.json" "$AUTH")")

BASE_RPS=$(cut -d'|' -f2 <<<"${RESULTS[0]}")
BASE_P99=$(cut -d'|' -f4 <<<"${RESULTS[0]}")
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${SECONDS_EACH}s on $(nproc) cores, load generator on the same machine"
printf '| %-55s | %10s | %8s | %8s | %10s | %10s | %6s |\n' case "requests/s" "p50 ms" "p99 ms" "rps vs (a)" "p99 vs (a)" "non-2xx"
printf '| %-55s | %10s | %8s | %8s | %10s | %10s | %6s |\n' --- --- --- --- --- --- ---
for row in "${RESULTS[@]}"; do
  IFS='|' read -r name rps p50 p99 bad <<<"$row"
  ratio=$(awk -v a="$rps" -v b="$BASE_RPS" 'BEGIN { printf "%.0f %%", 100*a/b }')
  lat=$(awk -v a="$p99" -v b="$BASE_P99" 'BEGIN { printf "%.1f x", a/b }')
  printf '| %-55s | %10s | %8s | %8s | %10s | %10s | %6s |\n' "$name" "$rps" "$p50" "$p99" "$ratio" "$lat" "$bad"
done
rps_of() { for row in "${RESULTS[@]}"; do [[ $row == "$1"* ]] && cut -d'|' -f2 <<<"$row"; done; }
echo
awk -v e="$(rps_of '(e)')" -v b="$(rps_of '(b)')" 'BEGIN { printf "(e) NATS track vs (b) log sink track: %.0f %%\n", 100*e/b }'
awk -v f="$(rps_of '(f)')" -v d="$(rps_of '(d)')" 'BEGIN { printf "(f) NATS batch vs (d) log sink batch: %.0f %%; NATS events/s in batches of 100: %.0f\n", 100*f/d, 100*f }'
