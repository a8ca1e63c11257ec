#!/usr/bin/env bash
# How does reelserve compare with nginx and the tutorial's Node servers? The comparison of
# DESIGN.md §5, end to end: build, make test data, run every server in turn under wrk, measure,
# and write results/summary.json, results/RESULTS.md and results/chart.svg.
#
# Usage:
#   scripts/compare.sh                      # the full comparison (~20 min on 2 cores)
#   QUICK=1 scripts/compare.sh              # 256 MiB big file, 3 s per scenario, 1 run
#   QUICK=1 RUNS=1 DURATION=2s scripts/compare.sh --servers "reelserve-sendfile nginx" --scenarios "S2 S3"
#
# Options (each also an environment variable):
#   --servers LIST     SERVERS     which servers, from: reelserve-sendfile reelserve-mmap
#                                  reelserve-chunked reelserve-read-all nginx node-readfile
#                                  node-stream node-express-range (default: all; Node ones need node)
#   --scenarios LIST   SCENARIOS   from: S1 S2 S3 S4 S5 ttfb (default: S1 S2 S3 S4 ttfb)
#   --no-memory        MEMORY=0    skip the peak-RSS-vs-concurrency runs
#   --no-iperf         IPERF=0     skip the iperf3 loopback ceiling
#   --no-build         BUILD=0     use target/release/reelserve as it is
#   --out DIR          OUT_DIR     where summary.json, RESULTS.md, chart.svg go (default: results);
#                                  raw output goes to OUT_DIR/raw/<timestamp>/ (git-ignored)
#   --work DIR         WORK_DIR    test data and server prefixes (default: target/compare; the big
#                                  file is kept there and reused)
# More environment: DURATION (10s; QUICK 3s), RUNS (3; QUICK 1), BIG_SIZE (1G; QUICK 256M),
# WORKERS (2), WRK_THREADS (2), WRK_TIMEOUT (60s), MEM_CONCURRENCY ("1 4 16 64"),
# MEM_MODES ("read-all chunked sendfile"), MEM_CAP (16G: read-all levels above it are not run),
# IPERF_TIME (5; QUICK 2).
#
# Scenarios (wrk, loopback, each server in turn, same files):
#   S1  whole big file, -c 4           scripts/wrk/whole.lua
#   S2  random 1 MiB ranges, -c 64     scripts/wrk/ranges.lua
#   S3  64 KiB file, -c 64             scripts/wrk/whole.lua
#   S4  the player page (/), -c 64     scripts/wrk/page.lua
#   S5  browser-like seeks, -c 64      scripts/wrk/seek.lua (not run unless asked for)
#   ttfb  time to first byte of the whole big file (curl), RUNS times
# Per run: throughput, requests/s, latency p50/p99, errors (wrk's done(), scripts/wrk/report.lua),
# server CPU seconds (utime+stime of the server's process tree, /proc/PID/stat) and peak RSS
# (VmHWM, reset before each run through /proc/PID/clear_refs; summed over nginx's processes).
#
# A failure of one server or scenario is recorded and reported; the others still run. Every
# process this script starts listens on 127.0.0.1 only and is killed when it exits.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd -- "$script_dir/.." && pwd)"
# shellcheck source=scripts/lib/bench-common.sh
source "$script_dir/lib/bench-common.sh"

ALL_SERVERS="reelserve-sendfile reelserve-mmap reelserve-chunked reelserve-read-all nginx node-readfile node-stream node-express-range"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------
# Settings: environment first, then flags.

QUICK="${QUICK:-0}"
[[ "$QUICK" == 0 || "$QUICK" == 1 ]] || die "QUICK must be 0 or 1, not '$QUICK'"
SERVERS="${SERVERS:-$ALL_SERVERS}"
SCENARIOS="${SCENARIOS:-S1 S2 S3 S4 ttfb}"
MEMORY="${MEMORY:-1}"
IPERF="${IPERF:-1}"
BUILD="${BUILD:-1}"
OUT_DIR="${OUT_DIR:-$root/results}"
WORK_DIR="${WORK_DIR:-$root/target/compare}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --servers) [[ $# -ge 2 ]] || usage; SERVERS="$2"; shift 2 ;;
        --scenarios) [[ $# -ge 2 ]] || usage; SCENARIOS="$2"; shift 2 ;;
        --no-memory) MEMORY=0; shift ;;
        --no-iperf) IPERF=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --out) [[ $# -ge 2 ]] || usage; OUT_DIR="$2"; shift 2 ;;
        --work) [[ $# -ge 2 ]] || usage; WORK_DIR="$2"; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done

if [[ "$QUICK" == 1 ]]; then
    DURATION="${DURATION:-3s}"
    RUNS="${RUNS:-1}"
    BIG_SIZE="${BIG_SIZE:-256M}"
    IPERF_TIME="${IPERF_TIME:-2}"
else
    DURATION="${DURATION:-10s}"
    RUNS="${RUNS:-3}"
    BIG_SIZE="${BIG_SIZE:-1G}"
    IPERF_TIME="${IPERF_TIME:-5}"
fi
WORKERS="${WORKERS:-2}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_TIMEOUT="${WRK_TIMEOUT:-60s}"
MEM_CONCURRENCY="${MEM_CONCURRENCY:-1 4 16 64}"
MEM_MODES="${MEM_MODES:-read-all chunked sendfile}"
MEM_CAP="${MEM_CAP:-16G}"
SMALL_BYTES=$((64 * 1024))
RANGE_BYTES=$((1024 * 1024))
SEEK_BYTES=$((256 * 1024))

# Sizes: a byte count or a number with K/M/G (powers of 1024).
to_bytes() {
    local s="${1^^}"
    if [[ "$s" =~ ^([0-9]+)([KMG]?)(I?B)?$ ]]; then
        case "${BASH_REMATCH[2]}" in
            "") echo "${BASH_REMATCH[1]}" ;;
            K) echo $((BASH_REMATCH[1] * 1024)) ;;
            M) echo $((BASH_REMATCH[1] * 1024 * 1024)) ;;
            G) echo $((BASH_REMATCH[1] * 1024 * 1024 * 1024)) ;;
        esac
    else
        die "not a size: '$1' (use e.g. 1G, 256M, 1073741824)"
    fi
}
BIG_BYTES="$(to_bytes "$BIG_SIZE")"
MEM_CAP_BYTES="$(to_bytes "$MEM_CAP")"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ "$DURATION" =~ ^[0-9]+[smh]?$ ]] || die "DURATION must look like 10s, not '$DURATION'"
[[ "$BIG_BYTES" -ge $((2 * RANGE_BYTES)) ]] || die "BIG_SIZE must be at least 2 MiB"

for server in $SERVERS; do
    [[ " $ALL_SERVERS " == *" $server "* ]] || die "unknown server '$server' (known: $ALL_SERVERS)"
done
for scenario in $SCENARIOS; do
    [[ " S1 S2 S3 S4 S5 ttfb " == *" $scenario "* ]] || die "unknown scenario '$scenario' (known: S1 S2 S3 S4 S5 ttfb)"
done

# ---------------------------------------------------------------------------------------------
# Tools.

tool_path() {
    command -v "$1" 2>/dev/null || { [[ -x "/usr/sbin/$1" ]] && echo "/usr/sbin/$1"; }
}

for tool in curl python3 pgrep; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required (apt-get install curl python3 procps)"
done
ensure_tool wrk wrk || die "wrk is required and could not be installed (apt-get install wrk)"
NGINX_MISSING=0
if [[ " $SERVERS " == *" nginx "* ]] && ! ensure_tool nginx nginx; then
    # Not fatal: the others still run, RESULTS.md says so and has no ratios.
    log "nginx could not be installed: running without it (no ratios against nginx)"
    SERVERS="$(tr ' ' '\n' <<<"$SERVERS" | grep -vx nginx | tr '\n' ' ')"
    NGINX_MISSING=1
fi
NGINX="$(tool_path nginx || true)"
HAVE_IPERF=0
if [[ "$IPERF" == 1 ]]; then
    if ensure_tool iperf3 iperf3; then HAVE_IPERF=1; else log "iperf3 unavailable: no loopback ceiling"; fi
fi
HAVE_NODE=0
command -v node >/dev/null 2>&1 && HAVE_NODE=1
CLK_TCK="$(getconf CLK_TCK)"

# ---------------------------------------------------------------------------------------------
# Output and process bookkeeping.

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p -- "$OUT_DIR" "$WORK_DIR"
OUT_DIR="$(cd -- "$OUT_DIR" && pwd)"
WORK_DIR="$(cd -- "$WORK_DIR" && pwd)"
RAW="$OUT_DIR/raw/$stamp"
mkdir -p -- "$RAW/runs" "$RAW/ttfb" "$RAW/memory" "$RAW/wrk" "$RAW/logs"
: >"$RAW/notes.jsonl"
: >"$RAW/failures.jsonl"
PIDS_FILE="$RAW/pids"
: >"$PIDS_FILE"

json_str() {
    local s="${1//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="${s//$'\n'/ }"
    printf '"%s"' "$s"
}

# note SERVER SCENARIO TEXT: a skip, a cap or a caveat that RESULTS.md must say.
note() {
    printf '{"server":%s,"scenario":%s,"note":%s}\n' "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")" >>"$RAW/notes.jsonl"
    log "note: $1 $2: $3"
}

failure() {
    printf '{"server":%s,"scenario":%s,"error":%s}\n' "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")" >>"$RAW/failures.jsonl"
    log "FAILED: $1 $2: $3"
}

cleanup() {
    local pid started
    if [[ -s "$PIDS_FILE" ]]; then
        while read -r pid started; do
            kill_registered "$pid" "$started"
        done <"$PIDS_FILE"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# guarded FUNCTION ARGS...: runs the function in a subshell with errexit in force and stores its
# exit status in GUARD_RC, without stopping this shell. (errexit is silently off inside anything
# called from `if`, `&&` or `||`, so failures must be caught this way.)
GUARD_RC=0
guarded() {
    set +e
    (
        set -e
        "$@"
    )
    GUARD_RC=$?
    set -e
}

# ---------------------------------------------------------------------------------------------
# /proc measurements.

mem_available_bytes() {
    awk '/^MemAvailable:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo
}

# ---------------------------------------------------------------------------------------------
# Build and test data.

ensure_release_binary "$root" "$BUILD"
DATA="$WORK_DIR/data"
make_data_dir "$DATA" "$BIG_BYTES"
if [[ ! -f "$DATA/small.bin" || "$(stat -c %s -- "$DATA/small.bin")" != "$SMALL_BYTES" ]]; then
    head -c "$SMALL_BYTES" /dev/urandom >"$DATA/small.bin"
fi
# The player page, served at / by every server (reelserve and nginx: index.html).
cp -f -- "$root/html/movie_player.html" "$DATA/index.html"
chmod 644 "$DATA/big.bin" "$DATA/small.bin" "$DATA/index.html"
PAGE_BYTES="$(stat -c %s -- "$DATA/index.html")"

warm_page_cache() {
    cat -- "$DATA/big.bin" "$DATA/small.bin" "$DATA/index.html" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# Servers. start_server sets SERVER_PID and SERVER_URL (no trailing slash).

SERVER_PID=""
SERVER_URL=""
SERVER_FILE=""
SERVER_STATE="$RAW/server.state"

# spawned PID: a server process now exists. Its PID is registered for the final cleanup and
# written to SERVER_STATE, because servers are started inside guarded subshells and the caller
# must be able to stop them (or reuse them) afterwards.
spawned() {
    SERVER_PID="$1"
    register_pid "$SERVER_PID"
    save_server_state
}

save_server_state() {
    printf '%s %s %s\n' "$SERVER_PID" "${SERVER_URL:--}" "${SERVER_FILE:--}" >"$SERVER_STATE"
}

load_server_state() {
    SERVER_PID="" SERVER_URL="" SERVER_FILE=""
    [[ -s "$SERVER_STATE" ]] && read -r SERVER_PID SERVER_URL SERVER_FILE <"$SERVER_STATE"
    rm -f -- "$SERVER_STATE"
    return 0
}

# wait_for_line FILE PATTERN PID: waits up to 20 s for a line matching PATTERN in FILE.
wait_for_line() {
    local file="$1" pattern="$2" pid="$3" i
    for ((i = 0; i < 200; i++)); do
        grep -q -- "$pattern" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

wait_for_http() {
    local url="$1" pid="$2" i
    for ((i = 0; i < 200; i++)); do
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

start_reelserve() {
    local mode="$1" log="$RAW/logs/reelserve-$1"
    # read-all holds each whole response in memory; the memory levels above are already capped
    # at MEM_CAP, so let the server's read-all budget (default 512 MiB) go that far too.
    "$BIN" --root "$DATA" --addr 127.0.0.1:0 --mode "$mode" --workers "$WORKERS" \
        --read-all-budget "$MEM_CAP_BYTES" \
        --log-level warn --access-log off --shutdown-timeout 2 >"$log.out" 2>"$log.err" &
    spawned $!
    if ! wait_for_line "$log.out" "listening on http://" "$SERVER_PID"; then
        tail -n 20 "$log.err" >&2 || true
        echo "reelserve --mode $mode did not start (log: $log.err)" >&2
        return 1
    fi
    SERVER_URL="$(sed -n 's#.*listening on \(http://[^/ ]*\)/.*#\1#p' "$log.out" | head -n 1)"
    [[ -n "$SERVER_URL" ]] || { echo "no address in $log.out" >&2; return 1; }
}

start_nginx() {
    local prefix="$WORK_DIR/nginx" port user_line=""
    port="$(free_port)"
    mkdir -p -- "$prefix/logs"
    # As root, workers would run as nobody; keep them as the invoking user so they can read DATA.
    [[ $(id -u) -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
    cat >"$prefix/nginx.conf" <<EOF
# Written by scripts/compare.sh: nginx as a file server tuned the usual way.
$user_line
daemon off;
worker_processes $WORKERS;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
    types { text/html html; video/mp4 mp4; application/octet-stream bin; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    access_log off;
    # reelserve closes no keep-alive connection after N requests; nginx's default is 1000.
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    server {
        listen 127.0.0.1:$port;
        root $DATA;
        index index.html;
    }
}
EOF
    "$NGINX" -t -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" >"$RAW/logs/nginx-test.txt" 2>&1 || {
        cat "$RAW/logs/nginx-test.txt" >&2
        echo "nginx rejected $prefix/nginx.conf" >&2
        return 1
    }
    "$NGINX" -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" >"$RAW/logs/nginx.out" 2>&1 &
    spawned $!
    SERVER_URL="http://127.0.0.1:$port"
    wait_for_http "$SERVER_URL/small.bin" "$SERVER_PID" || {
        tail -n 20 "$prefix/logs/error.log" >&2 || true
        echo "nginx did not start" >&2
        return 1
    }
}

# start_node NAME FILE: scripts/node/NAME.js serving FILE.
start_node() {
    local name="$1" file="$2" port log="$RAW/logs/node-$1"
    port="$(free_port)"
    node "$script_dir/node/$name.js" "$port" "$file" >"$log.out" 2>"$log.err" &
    spawned $!
    if ! wait_for_line "$log.out" "listening on http://" "$SERVER_PID"; then
        tail -n 20 "$log.err" >&2 || true
        echo "node $name.js did not start (log: $log.err)" >&2
        return 1
    fi
    SERVER_URL="http://127.0.0.1:$port"
}

# start_server SERVER FILE (FILE matters only to the Node servers, which serve one file).
start_server() {
    local server="$1" file="$2"
    case "$server" in
        reelserve-*) start_reelserve "${server#reelserve-}" ;;
        nginx) start_nginx ;;
        node-*) start_node "${server#node-}" "$file" ;;
    esac
    SERVER_FILE="$file"
    save_server_state
}

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    kill_registered "$SERVER_PID" "$(start_time "$SERVER_PID")"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# ---------------------------------------------------------------------------------------------
# Scenario plans. plan SERVER SCENARIO sets PLAN_* or, for a scenario that makes no sense for the
# server, sets PLAN_SKIP to the reason. PLAN_NOTE is a caveat the report must carry.

plan() {
    local server="$1" scenario="$2"
    PLAN_SKIP=""
    PLAN_NOTE=""
    PLAN_FILE="$DATA/big.bin"
    PLAN_PATH="/big.bin"
    PLAN_ARGS=()
    PLAN_CONNS=64
    PLAN_RANGE=""
    PLAN_EXPECT_STATUS=200
    PLAN_EXPECT_BYTES="$BIG_BYTES"
    PLAN_EXPECT_OFFSET=0
    case "$scenario" in
        S1)
            PLAN_SCRIPT=whole.lua
            PLAN_CONNS=4
            ;;
        S2)
            PLAN_SCRIPT=ranges.lua
            PLAN_ARGS=("$BIG_BYTES" "$RANGE_BYTES" closed)
            PLAN_RANGE="bytes=1000-$((1000 + RANGE_BYTES - 1))"
            PLAN_EXPECT_STATUS=206
            PLAN_EXPECT_BYTES="$RANGE_BYTES"
            PLAN_EXPECT_OFFSET=1000
            ;;
        S3)
            PLAN_SCRIPT=whole.lua
            PLAN_FILE="$DATA/small.bin"
            PLAN_PATH="/small.bin"
            PLAN_EXPECT_BYTES="$SMALL_BYTES"
            ;;
        S4)
            PLAN_SCRIPT=page.lua
            PLAN_FILE="$DATA/index.html"
            PLAN_PATH="/"
            PLAN_EXPECT_BYTES="$PAGE_BYTES"
            ;;
        S5)
            PLAN_SCRIPT=seek.lua
            PLAN_ARGS=("$BIG_BYTES" "$SEEK_BYTES")
            PLAN_RANGE="bytes=1000-$((1000 + SEEK_BYTES - 1))"
            PLAN_EXPECT_STATUS=206
            PLAN_EXPECT_BYTES="$SEEK_BYTES"
            PLAN_EXPECT_OFFSET=1000
            ;;
        ttfb)
            PLAN_SCRIPT=""
            ;;
    esac
    case "$server:$scenario" in
        node-readfile:S2 | node-stream:S2 | node-readfile:S5 | node-stream:S5)
            PLAN_SKIP="ignores Range: every request would get the whole big file, which is S1 at -c 64"
            ;;
        node-express-range:S2)
            # The tutorial's handler cannot parse "bytes=a-b" (it glues the digits): drive it the
            # way a <video> element does, with "bytes=N-"; it answers 1,000,001 bytes.
            PLAN_PATH="/video"
            PLAN_ARGS=("$BIG_BYTES" "$RANGE_BYTES" open)
            PLAN_RANGE="bytes=1000-"
            PLAN_EXPECT_BYTES=1000001
            PLAN_NOTE="driven with open ranges (bytes=N-), the only form its parsing handles; it answers 1,000,001 bytes per request instead of 1 MiB"
            ;;
        node-express-range:*)
            PLAN_SKIP="the tutorial's Express handler only answers Range requests on /video (206, 1 MB): S2-style only"
            ;;
    esac
}

# probe SERVER SCENARIO: one request shaped like the scenario's, checked (status, length, and for
# ranges the bytes themselves) before anything is measured. Doubles as a warm-up.
probe() {
    local server="$1" scenario="$2" out=/dev/null result status bytes
    # Range bodies are kept and compared with the file; whole files are only counted.
    [[ -n "$PLAN_RANGE" ]] && out="$RAW/logs/probe.bin"
    local args=(-s -o "$out" -w '%{http_code} %{size_download}' --max-time 120)
    [[ -n "$PLAN_RANGE" ]] && args+=(-H "Range: $PLAN_RANGE")
    result="$(curl "${args[@]}" "$SERVER_URL$PLAN_PATH")" || { echo "probe of $SERVER_URL$PLAN_PATH failed" >&2; return 1; }
    read -r status bytes <<<"$result"
    if [[ "$status" != "$PLAN_EXPECT_STATUS" || "$bytes" != "$PLAN_EXPECT_BYTES" ]]; then
        echo "$server $scenario: expected $PLAN_EXPECT_STATUS with $PLAN_EXPECT_BYTES bytes, got $status with $bytes" >&2
        return 1
    fi
    if [[ -n "$PLAN_RANGE" ]]; then
        cmp -s "$out" <(tail -c +"$((PLAN_EXPECT_OFFSET + 1))" -- "$PLAN_FILE" | head -c "$PLAN_EXPECT_BYTES") ||
            { echo "$server $scenario: the range's bytes differ from the file's" >&2; return 1; }
        rm -f -- "$out"
    fi
}

# wrk_run SERVER SCENARIO RUN: one measured wrk run; writes runs/SERVER__SCENARIO__RUN.json.
wrk_run() {
    local server="$1" scenario="$2" run="$3" tag="$1__$2__$3" pids reset cpu0 cpu1 rss json
    local txt="$RAW/wrk/$tag.txt"
    pids="$(proc_tree "$SERVER_PID")"
    reset="$(reset_peak_rss "$pids")"
    cpu0="$(cpu_ticks "$pids")"
    wrk -t "$WRK_THREADS" -c "$PLAN_CONNS" -d "$DURATION" --timeout "$WRK_TIMEOUT" \
        -s "$script_dir/wrk/$PLAN_SCRIPT" "$SERVER_URL$PLAN_PATH" -- "${PLAN_ARGS[@]}" >"$txt" 2>&1 || {
        tail -n 5 "$txt" >&2
        echo "wrk failed for $server $scenario (output: $txt)" >&2
        return 1
    }
    pids="$(proc_tree "$SERVER_PID")"
    cpu1="$(cpu_ticks "$pids")"
    rss="$(peak_rss_kib "$pids")"
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "$server died during $scenario" >&2; return 1; }
    json="$(sed -n 's/^WRK_JSON //p' "$txt" | tail -n 1)"
    [[ -n "$json" ]] || { echo "no WRK_JSON line in $txt" >&2; return 1; }
    printf '{"server":"%s","scenario":"%s","run":%d,"threads":%d,"connections":%d,"cpu_seconds":%s,"peak_rss_kib":%d,"peak_rss_reset":%s,"server_processes":%d,"wrk":%s}\n' \
        "$server" "$scenario" "$run" "$WRK_THREADS" "$PLAN_CONNS" \
        "$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / t }')" \
        "$rss" "$reset" "$(wc -w <<<"$pids")" "$json" >"$RAW/runs/$tag.json"
    log "  $server $scenario run $run: $(python3 -c 'import json,sys; w=json.loads(sys.argv[1]); d=w["duration_us"]/1e6; print("%.0f MiB/s, %.0f req/s, p99 %.1f ms" % (w["bytes"]/d/2**20, w["requests"]/d, w["latency_p99_us"]/1e3))' "$json")"
}

# ttfb_runs SERVER: time to first byte (and total) of GET of the whole big file, RUNS times.
ttfb_runs() {
    local server="$1" run result
    for ((run = 1; run <= RUNS; run++)); do
        result="$(curl -s -o /dev/null --max-time 300 \
            -w '{"time_starttransfer":%{time_starttransfer},"time_total":%{time_total},"size_download":%{size_download},"http_code":%{http_code}}' \
            "$SERVER_URL$PLAN_PATH")"
        printf '{"server":"%s","run":%d,"curl":%s}\n' "$server" "$run" "$result" >"$RAW/ttfb/${server}__$run.json"
        [[ "$result" == *"\"size_download\":$BIG_BYTES,"* ]] || { echo "$server: TTFB download was short: $result" >&2; return 1; }
    done
}

# scenario_runs SERVER SCENARIO: probe, then RUNS measured runs (or the TTFB runs), against the
# server already running.
scenario_runs() {
    local server="$1" scenario="$2" run mem
    if [[ "$scenario" == ttfb ]]; then
        ttfb_runs "$server"
        return
    fi
    # Servers that hold a whole response in memory per connection: never ask for more than
    # there is (read-all and readfile read it first; stream.js buffers without backpressure).
    if [[ "$scenario" == S1 && " reelserve-read-all node-readfile node-stream " == *" $server "* ]]; then
        mem="$(mem_available_bytes)"
        while [[ "$PLAN_CONNS" -gt 1 && $((PLAN_CONNS * BIG_BYTES)) -gt $((mem * 6 / 10)) ]]; do
            PLAN_CONNS=$((PLAN_CONNS / 2))
        done
        note "$server" "$scenario" "holds up to a whole $((BIG_BYTES >> 20)) MiB response in memory per connection, so S1 is capped at -c $PLAN_CONNS (up to $((PLAN_CONNS * BIG_BYTES >> 20)) MiB); whole big files at -c 64 would need 64 copies"
    fi
    probe "$server" "$scenario"
    for ((run = 1; run <= RUNS; run++)); do
        wrk_run "$server" "$scenario" "$run"
    done
}

# bench_server SERVER: every planned scenario against one server, started once (the Node servers
# serve one file each, so they are restarted when the scenario's file changes).
bench_server() {
    local server="$1" scenario
    trap stop_server EXIT
    log "== $server"
    warm_page_cache
    for scenario in $SCENARIOS; do
        plan "$server" "$scenario"
        if [[ -n "$PLAN_SKIP" ]]; then
            note "$server" "$scenario" "not run: $PLAN_SKIP"
            continue
        fi
        [[ -z "$PLAN_NOTE" ]] || note "$server" "$scenario" "$PLAN_NOTE"
        if [[ -z "$SERVER_PID" || ("$server" == node-* && "$SERVER_FILE" != "$PLAN_FILE") ]]; then
            stop_server
            guarded start_server "$server" "$PLAN_FILE"
            load_server_state
            if [[ "$GUARD_RC" -ne 0 ]]; then
                failure "$server" "$scenario" "the server did not start (exit status $GUARD_RC; logs in $RAW/logs)"
                stop_server
                continue
            fi
        fi
        guarded scenario_runs "$server" "$scenario"
        if [[ "$GUARD_RC" -ne 0 ]]; then
            failure "$server" "$scenario" "exit status $GUARD_RC (see the log above and $RAW/logs)"
            # The server may be wedged: start afresh for the next scenario.
            stop_server
        fi
    done
    stop_server
}

# ---------------------------------------------------------------------------------------------
# Peak RSS vs concurrent whole-file downloads, one fresh server per level.

memory_level() {
    local mode="$1" conns="$2" i pids start end rss ok=0 bytes=0 line got downloads=()
    trap stop_server EXIT
    start_reelserve "$mode"
    warm_page_cache
    curl -s -o /dev/null "$SERVER_URL/small.bin"
    pids="$(proc_tree "$SERVER_PID")"
    start="$(date +%s.%N)"
    for ((i = 0; i < conns; i++)); do
        curl -s -o /dev/null --max-time 600 -w '%{http_code} %{size_download}\n' \
            "$SERVER_URL/big.bin" >"$RAW/memory/curl.$i" 2>/dev/null &
        downloads+=($!)
        register_pid $!
    done
    wait "${downloads[@]}" || true
    end="$(date +%s.%N)"
    rss="$(peak_rss_kib "$pids")"
    for ((i = 0; i < conns; i++)); do
        read -r line <"$RAW/memory/curl.$i" || line=""
        if [[ "$line" == "200 $BIG_BYTES" ]]; then ok=$((ok + 1)); fi
        got="${line#* }"
        [[ "$got" =~ ^[0-9]+$ ]] || got=0
        bytes=$((bytes + got))
    done
    rm -f -- "$RAW/memory/curl."*
    stop_server
    printf '{"mode":"%s","concurrency":%d,"peak_rss_kib":%d,"complete":%d,"bytes":%d,"seconds":%s}\n' \
        "$mode" "$conns" "$rss" "$ok" "$bytes" "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')" \
        >"$RAW/memory/$mode-$conns.json"
    log "  $mode x$conns: peak RSS $((rss / 1024)) MiB, $ok/$conns complete"
    [[ "$ok" -eq "$conns" ]] || { echo "$mode x$conns: only $ok of $conns downloads completed" >&2; return 1; }
}

memory_curve() {
    local mode conns mem
    log "== peak RSS vs concurrency ($MEM_MODES at $MEM_CONCURRENCY downloads of $((BIG_BYTES >> 20)) MiB)"
    for mode in $MEM_MODES; do
        for conns in $MEM_CONCURRENCY; do
            mem="$(mem_available_bytes)"
            if [[ "$mode" == read-all ]] &&
                [[ $((conns * BIG_BYTES)) -gt "$MEM_CAP_BYTES" || $((conns * BIG_BYTES)) -gt $((mem * 6 / 10)) ]]; then
                note "reelserve-$mode" "memory x$conns" "not run: $conns concurrent read-all downloads need $((conns * BIG_BYTES >> 20)) MiB of RAM (cap: $((MEM_CAP_BYTES >> 20)) MiB and 60% of the $((mem >> 20)) MiB available)"
                continue
            fi
            guarded memory_level "$mode" "$conns"
            [[ "$GUARD_RC" -eq 0 ]] || failure "reelserve-$mode" "memory x$conns" "exit status $GUARD_RC"
        done
    done
}

# ---------------------------------------------------------------------------------------------
# The loopback ceiling.

# iperf3_run STREAMS OUT: one iperf3 client run against a one-shot server.
iperf3_run() {
    local streams="$1" out="$2" port pid
    port="$(free_port)"
    iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$RAW/logs/iperf3-server-$streams.txt" 2>&1 &
    pid=$!
    register_pid "$pid"
    sleep 0.5
    iperf3 -c 127.0.0.1 -p "$port" -P "$streams" -t "$IPERF_TIME" -J >"$out" || {
        kill "$pid" 2>/dev/null || true
        rm -f -- "$out"
        echo "iperf3 -c -P $streams failed" >&2
        return 1
    }
    wait "$pid" 2>/dev/null || true
    log "loopback (iperf3, $streams stream(s)): $(python3 -c 'import json,sys; print("%.2f GiB/s" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 8 / 2**30))' "$out")"
}

# One stream (what a single download can reach) and four (S1's connection count).
loopback_ceiling() {
    iperf3_run 1 "$RAW/iperf3.json"
    iperf3_run 4 "$RAW/iperf3-P4.json"
}

# ---------------------------------------------------------------------------------------------
# Machine and settings, then the runs.

python3 - "$RAW/machine.json" <<EOF
import json, os, platform, subprocess, sys

def cmd(*args):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return None

def version(*args):
    """The first line of a --version, without licence text and library lists."""
    line = cmd(*args)
    return line.split(" Copyright")[0].split(" (")[0].strip() if line else None

cpu = None
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
mem_kib = None
for line in open("/proc/meminfo"):
    if line.startswith("MemTotal:"):
        mem_kib = int(line.split()[1])
commit = cmd("git", "-C", "$root", "rev-parse", "--short", "HEAD")
dirty = cmd("git", "-C", "$root", "status", "--porcelain")
machine = {
    "timestamp": "$stamp",
    "nproc": os.cpu_count(),
    "kernel": platform.release(),
    "cpu_model": cpu or platform.processor() or "unknown",
    "mem_total_gib": round(mem_kib / 2**20, 1) if mem_kib else None,
    "load_average_at_start": list(os.getloadavg()),
    "reelserve_commit": (commit or "unknown") + ("-dirty" if dirty else ""),
    "versions": {
        "wrk": version("wrk", "--version"),
        "nginx": version("$NGINX", "-v") if "$NGINX" else None,
        "node": version("node", "--version") if $HAVE_NODE else None,
        "curl": version("curl", "--version"),
        "iperf3": version("iperf3", "--version") if $HAVE_IPERF else None,
    },
}
settings = {
    "quick": $QUICK == 1,
    "duration": "$DURATION",
    "runs": $RUNS,
    "big_bytes": $BIG_BYTES,
    "small_bytes": $SMALL_BYTES,
    "page_bytes": $PAGE_BYTES,
    "range_bytes": $RANGE_BYTES,
    "workers": $WORKERS,
    "wrk_threads": $WRK_THREADS,
    "servers": "$SERVERS".split(),
    "scenarios": "$SCENARIOS".split(),
    "mem_concurrency": [int(c) for c in "$MEM_CONCURRENCY".split()],
    "mem_modes": "$MEM_MODES".split(),
}
json.dump({"machine": machine, "settings": settings}, open(sys.argv[1], "w"), indent=2)
EOF

[[ "$NGINX_MISSING" == 0 ]] || note "nginx" "*" "not run: nginx is not installed and apt-get could not install it"
log "raw output: $RAW"
log "settings: DURATION=$DURATION RUNS=$RUNS BIG=$BIG_BYTES bytes, servers: $SERVERS; scenarios: $SCENARIOS"

if [[ "$HAVE_IPERF" == 1 ]]; then
    guarded loopback_ceiling
    [[ "$GUARD_RC" -eq 0 ]] || failure "iperf3" "loopback" "exit status $GUARD_RC"
fi

node_ready=1
if [[ " $SERVERS " == *" node-"* ]]; then
    if [[ "$HAVE_NODE" != 1 ]]; then
        node_ready=0
        note "node" "*" "not run: node is not installed"
    elif [[ " $SERVERS " == *" node-express-range "* && ! -d "$script_dir/node/node_modules/express" ]]; then
        log "npm ci --prefix scripts/node (express for express-range.js)"
        npm ci --prefix "$script_dir/node" --no-audit --no-fund >&2 || note "node-express-range" "*" "npm ci failed: express-range.js will fail to start"
    fi
fi

for server in $SERVERS; do
    if [[ "$server" == node-* && "$node_ready" != 1 ]]; then
        continue
    fi
    guarded bench_server "$server"
    [[ "$GUARD_RC" -eq 0 ]] || failure "$server" "*" "exit status $GUARD_RC"
done

if [[ "$MEMORY" == 1 ]]; then
    guarded memory_curve
    [[ "$GUARD_RC" -eq 0 ]] || failure "memory" "*" "exit status $GUARD_RC"
fi

# ---------------------------------------------------------------------------------------------
# Summary, report, chart.

log "summarising into $OUT_DIR"
python3 "$script_dir/summarize.py" "$RAW" "$OUT_DIR" || die "summarize.py failed (raw output kept in $RAW)"
python3 "$script_dir/chart.py" "$OUT_DIR/summary.json" "$OUT_DIR/chart.svg" || die "chart.py failed (summary in $OUT_DIR/summary.json)"
if [[ -s "$RAW/failures.jsonl" ]]; then
    log "done, with failures (listed in $OUT_DIR/RESULTS.md): $(wc -l <"$RAW/failures.jsonl")"
    exit 3
fi
log "done: $OUT_DIR/RESULTS.md, $OUT_DIR/summary.json, $OUT_DIR/chart.svg"
