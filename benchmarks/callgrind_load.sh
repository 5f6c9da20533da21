#!/usr/bin/env bash
# Instructions per request of llmgate serving under load: llmgate runs under callgrind (instrumentation off
# until the load is on), wrk puts c=32 on it for SECONDS, and the count of that window / its requests is the
# figure. Under valgrind the server is always saturated, as at c=32 on a busy core, so this counts what a
# request costs in that regime (batching and all) without the machine's noise. ~1 min a run; compare variants
# several times each (they move ~±1%).
#
#   benchmarks/callgrind_load.sh [master|token|token-budget|usage-log] [wrk script] [seconds]
#   (token: an unlimited virtual token; token-budget: one with a token budget, so its answers are metered)
#   e.g. benchmarks/callgrind_load.sh token ../shared/bench/stream.lua 20
#
# Needs valgrind, wrk and an upstream on $UPSTREAM (default: the Node double, http://127.0.0.1:18080).
# Extra environment for the gateway: GATEWAY_ENV="LLMGATE_X=1 ...".
set -euo pipefail
MODE=${1:-master}; SCRIPT=${2:-../shared/bench/chat.lua}; SECONDS_=${3:-20}
UPSTREAM=${UPSTREAM:-http://127.0.0.1:18080}; PORT=${PORT:-8390}
ROOT=$(cd "$(dirname "$0")/.." && pwd); OUT=$(mktemp -d)
MT=mt-callgrind-load-0123456789
extra=(); [[ $MODE == usage-log ]] && extra+=(LLMGATE_USAGE_LOG=1)
env "${extra[@]}" ${GATEWAY_ENV:-} LLMGATE_DATA_DIR="$OUT" LLMGATE_MANAGEMENT_TOKEN=$MT OPENAI_API_KEY=sk-up \
    OPENAI_BASE_URL="$UPSTREAM/v1" LLMGATE_MASTER_KEY=sk-test \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/cg.out" \
    "$ROOT/.venv/bin/python" -m llmgate serve --port "$PORT" > "$OUT/gateway.log" 2>&1 &
VG=$!
trap 'kill $VG 2>/dev/null; wait $VG 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.5; done
KEY=sk-test
if [[ $MODE == token* ]]; then
  limits=""; [[ $MODE == token-budget ]] && limits=',"budget_tokens":1000000000000000'
  manage() { curl -s -X POST -H "authorization: Bearer $MT" -H 'content-type: application/json' -d "$2" "http://127.0.0.1:$PORT/manage/$1"; }
  project=$(manage projects '{"name":"callgrind"}' | python3 -c 'import sys, json; print(json.load(sys.stdin)["id"])')
  KEY=$(manage tokens "{\"project_id\":\"$project\"$limits}" | python3 -c 'import sys, json; print(json.load(sys.stdin)["secret"])')
fi
load() { WRK_KEY=$KEY taskset -c 1 wrk -t1 -c32 -d"$1"s -s "$SCRIPT" "http://127.0.0.1:$PORT/v1/chat/completions"; }
load 10 > /dev/null  # warm-up, not counted
callgrind_control -z $VG > /dev/null 2>&1; callgrind_control -i on $VG > /dev/null 2>&1
requests=$(load "$SECONDS_" | awk '/requests in/{print $1}')
callgrind_control -i off $VG > /dev/null 2>&1; callgrind_control -d $VG > /dev/null 2>&1
sleep 2
instructions=$(callgrind_annotate "$(ls -S "$OUT"/cg.out* | head -1)" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}')
echo "$MODE $(basename "$SCRIPT"): $requests requests, $((instructions / requests)) instructions a request (profile: $OUT)"
