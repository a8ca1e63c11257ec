#!/usr/bin/env bash
# How close does reelserve come to nginx over HTTPS? Scenarios S1 (whole big file, -c 4) and S2
# (1 MiB ranges, -c 64) over TLS, for reelserve and nginx on the same certificate and key, each
# over HTTP/1.1 (wrk) and HTTP/2 (h2load); medians of RUNS runs with server CPU seconds and peak
# RSS; writes results/https.json and results/HTTPS.md (raw output in results/raw/https-<time>/).
#
# Usage:
#   scripts/compare-https.sh                 # 1 GiB file, 3 runs of 10 s per row (~5 min)
#   QUICK=1 scripts/compare-https.sh         # 256 MiB file, 2 s per run, 1 run (a smoke test)
#
# Environment: SERVERS (reelserve-h1 reelserve-h2 nginx-h1 nginx-h2), SCENARIOS (S1 S2),
# DURATION (10s; QUICK 2s), RUNS (3; QUICK 1), BIG_SIZE (1G; QUICK 256M), WORKERS (2, both
# servers), CLIENT_THREADS (2), MODE (reelserve --mode, default sendfile: over TLS that means
# 128 KiB pread chunks), NGINX_TUNING (directives added to nginx's http block, e.g.
# 'output_buffers 2 256k;'; default none: nginx's own defaults), BUILD (1; 0 uses
# target/release/reelserve as it is), OUT_DIR (results), WORK_DIR (target/compare: the big file
# is shared with scripts/compare.sh).
#
# What runs:
#   S1  GET the whole big file, one request after another, 4 connections
#       h1: wrk -s scripts/wrk/whole.lua      h2: h2load -c 4 -m 1
#   S2  1 MiB ranges, 64 connections
#       h1: wrk -s scripts/wrk/ranges.lua (random offsets, the same sequence for both servers)
#       h2: h2load -c 64 -m 1 with one fixed Range (bytes=1000-1049575): h2load cannot vary
#           headers per request; the file is in the page cache, so the offset matters little.
# nginx: `ssl_protocols TLSv1.3`, `sendfile on` (which TLS makes a copy, as for reelserve: no
# kernel TLS on either side), `http2` on the same listener; both servers negotiate the protocol
# by ALPN (wrk offers none, so it gets HTTP/1.1). The TLS version and cipher each server chose
# are recorded (openssl s_client). Everything listens on 127.0.0.1 and is killed on exit.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd -- "$script_dir/.." && pwd)"
# shellcheck source=scripts/lib/bench-common.sh
source "$script_dir/lib/bench-common.sh"

ALL_SERVERS="reelserve-h1 reelserve-h2 nginx-h1 nginx-h2"

QUICK="${QUICK:-0}"
[[ "$QUICK" == 0 || "$QUICK" == 1 ]] || die "QUICK must be 0 or 1, not '$QUICK'"
if [[ "$QUICK" == 1 ]]; then
    DURATION="${DURATION:-2s}" RUNS="${RUNS:-1}" BIG_SIZE="${BIG_SIZE:-256M}"
else
    DURATION="${DURATION:-10s}" RUNS="${RUNS:-3}" BIG_SIZE="${BIG_SIZE:-1G}"
fi
SERVERS="${SERVERS:-$ALL_SERVERS}"
SCENARIOS="${SCENARIOS:-S1 S2}"
WORKERS="${WORKERS:-2}"
CLIENT_THREADS="${CLIENT_THREADS:-2}"
MODE="${MODE:-sendfile}"
NGINX_TUNING="${NGINX_TUNING:-}"
BUILD="${BUILD:-1}"
OUT_DIR="${OUT_DIR:-$root/results}"
WORK_DIR="${WORK_DIR:-$root/target/compare}"
RANGE_BYTES=$((1024 * 1024))
FIXED_RANGE="bytes=1000-$((1000 + RANGE_BYTES - 1))"

[[ "$DURATION" =~ ^([0-9]+)s?$ ]] || die "DURATION must be whole seconds like 10s, not '$DURATION'"
SECONDS_PER_RUN="${BASH_REMATCH[1]}"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
case "${BIG_SIZE^^}" in
    *G) BIG_BYTES=$((${BIG_SIZE%[gG]} * 1024 * 1024 * 1024)) ;;
    *M) BIG_BYTES=$((${BIG_SIZE%[mM]} * 1024 * 1024)) ;;
    *[0-9]) BIG_BYTES="$BIG_SIZE" ;;
    *) die "BIG_SIZE must look like 1G, 256M or a byte count, not '$BIG_SIZE'" ;;
esac
[[ "$BIG_BYTES" -ge $((2 * RANGE_BYTES)) ]] || die "BIG_SIZE must be at least 2 MiB"
for server in $SERVERS; do
    [[ " $ALL_SERVERS " == *" $server "* ]] || die "unknown server '$server' (known: $ALL_SERVERS)"
done
for scenario in $SCENARIOS; do
    [[ " S1 S2 " == *" $scenario "* ]] || die "unknown scenario '$scenario' (known: S1 S2)"
done

# ---------------------------------------------------------------------------------------------
# Tools: wrk (TLS-capable in Debian), h2load (nghttp2-client), nginx, openssl, curl.

for tool in curl python3 pgrep openssl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
ensure_tool wrk wrk || die "wrk is required (apt-get install wrk)"
ensure_tool h2load nghttp2-client || die "h2load is required (apt-get install nghttp2-client)"
if [[ " $SERVERS " == *" nginx-"* ]]; then
    ensure_tool nginx nginx-light || die "nginx is required for the nginx rows (apt-get install nginx-light)"
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
CLK_TCK="$(getconf CLK_TCK)"

# ---------------------------------------------------------------------------------------------
# Processes: every one this script starts is registered with its start time and killed on exit
# (the start time makes sure a recycled PID is never signalled).

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p -- "$OUT_DIR" "$WORK_DIR"
OUT_DIR="$(cd -- "$OUT_DIR" && pwd)"
WORK_DIR="$(cd -- "$WORK_DIR" && pwd)"
RAW="$OUT_DIR/raw/https-$stamp"
mkdir -p -- "$RAW/runs" "$RAW/client" "$RAW/logs"
PIDS_FILE="$RAW/pids"
: >"$PIDS_FILE"
: >"$RAW/failures.jsonl"

cleanup() {
    local pid started
    while read -r pid started; do kill_registered "$pid" "$started"; done <"$PIDS_FILE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failure() {
    printf '{"server":"%s","scenario":"%s","error":"%s"}\n' "$1" "$2" "${3//\"/\'}" >>"$RAW/failures.jsonl"
    log "FAILED: $1 $2: $3"
}

# ---------------------------------------------------------------------------------------------
# Build, data, certificate.

ensure_release_binary "$root" "$BUILD"
DATA="$WORK_DIR/data"
make_data_dir "$DATA" "$BIG_BYTES"
chmod 644 "$DATA/big.bin"
TLS_DIR="$WORK_DIR/tls"
[[ -s "$TLS_DIR/cert.pem" && -s "$TLS_DIR/key.pem" ]] || "$script_dir/make-cert.sh" "$TLS_DIR" >&2

# ---------------------------------------------------------------------------------------------
# Servers. start_* set SERVER_PID and SERVER_URL (https://127.0.0.1:PORT).

SERVER_PID=""
SERVER_URL=""

wait_for_https() {
    local i
    for ((i = 0; i < 200; i++)); do
        curl -ks -o /dev/null --max-time 1 "$SERVER_URL/big.bin" -r 0-0 && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

start_reelserve() {
    local log="$RAW/logs/reelserve"
    "$BIN" --root "$DATA" --addr 127.0.0.1:0 --mode "$MODE" --workers "$WORKERS" \
        --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem" \
        --log-level warn,reelserve::server=info --access-log off --shutdown-timeout 2 \
        >"$log.out" 2>"$log.err" &
    SERVER_PID=$!
    register_pid "$SERVER_PID"
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q "listening on https://" "$log.out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log.err" >&2; return 1; }
        sleep 0.1
    done
    SERVER_URL="$(sed -n 's#.*listening on \(https://[^/ ]*\)/.*#\1#p' "$log.out" | head -n 1)"
    [[ -n "$SERVER_URL" ]] || { echo "reelserve did not start (log: $log.err)" >&2; return 1; }
    wait_for_https
}

start_nginx() {
    local prefix="$WORK_DIR/nginx-https" port user_line=""
    port="$(free_port)"
    mkdir -p -- "$prefix/logs"
    [[ $(id -u) -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
    cat >"$prefix/nginx.conf" <<EOF
# Written by scripts/compare-https.sh: nginx as an HTTPS file server, tuned the usual way.
$user_line
daemon off;
worker_processes $WORKERS;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
    types { application/octet-stream bin; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    ssl_protocols TLSv1.3;
    ssl_certificate $TLS_DIR/cert.pem;
    ssl_certificate_key $TLS_DIR/key.pem;
    $NGINX_TUNING
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    server {
        listen 127.0.0.1:$port ssl http2;
        root $DATA;
    }
}
EOF
    "$NGINX" -t -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" >"$RAW/logs/nginx-test.txt" 2>&1 ||
        { cat "$RAW/logs/nginx-test.txt" >&2; return 1; }
    "$NGINX" -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/nginx.conf" >"$RAW/logs/nginx.out" 2>&1 &
    SERVER_PID=$!
    register_pid "$SERVER_PID"
    SERVER_URL="https://127.0.0.1:$port"
    wait_for_https || { tail -n 20 "$prefix/logs/error.log" >&2; return 1; }
}

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    kill_registered "$SERVER_PID" "$(start_time "$SERVER_PID")"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# probe NAME: the bytes of a range and the length of the whole file, over both protocols, and
# the TLS version and cipher the server picks; before anything is measured.
probe() {
    local name="$1" proto got
    for proto in --http1.1 --http2; do
        curl -ks "$proto" -r 1000-$((1000 + RANGE_BYTES - 1)) -o "$RAW/logs/probe.bin" "$SERVER_URL/big.bin" ||
            { echo "$name: range probe failed ($proto)" >&2; return 1; }
        cmp -s "$RAW/logs/probe.bin" <(tail -c +1001 -- "$DATA/big.bin" | head -c "$RANGE_BYTES") ||
            { echo "$name: range bytes differ from the file ($proto)" >&2; return 1; }
        got="$(curl -ks "$proto" -o /dev/null -w '%{http_code} %{size_download} %{http_version}' "$SERVER_URL/big.bin")"
        [[ "$got" == "200 $BIG_BYTES "* ]] || { echo "$name: whole file: $got ($proto)" >&2; return 1; }
    done
    rm -f -- "$RAW/logs/probe.bin"
    openssl s_client -connect "${SERVER_URL#https://}" -servername localhost -alpn h2,http/1.1 \
        </dev/null 2>/dev/null | grep -aE '^(New, |ALPN protocol|Server Temp Key)' \
        >"$RAW/logs/$name-tls.txt" || true
}

# ---------------------------------------------------------------------------------------------
# One measured run: the client, with the server's CPU time and peak RSS around it. The client's
# output is normalised to one JSON line by summarize-https.py.

measure() {
    local server="$1" scenario="$2" run="$3" tag="$1__$2__$3" conns pids cpu0 cpu1 rss
    local out="$RAW/client/$tag.txt" url="$SERVER_URL/big.bin" client
    [[ "$scenario" == S1 ]] && conns=4 || conns=64
    pids="$(proc_tree "$SERVER_PID")"
    reset_peak_rss "$pids" >/dev/null
    cpu0="$(cpu_ticks "$pids")"
    case "$server:$scenario" in
        *-h1:S1)
            client=wrk
            wrk -t "$CLIENT_THREADS" -c "$conns" -d "${SECONDS_PER_RUN}s" --timeout 60s \
                -s "$script_dir/wrk/whole.lua" "$url" >"$out" 2>&1
            ;;
        *-h1:S2)
            client=wrk
            wrk -t "$CLIENT_THREADS" -c "$conns" -d "${SECONDS_PER_RUN}s" --timeout 60s \
                -s "$script_dir/wrk/ranges.lua" "$url" -- "$BIG_BYTES" "$RANGE_BYTES" closed >"$out" 2>&1
            ;;
        *-h2:S1)
            client=h2load
            h2load -c "$conns" -m 1 -t "$CLIENT_THREADS" -D "$SECONDS_PER_RUN" "$url" >"$out" 2>&1
            ;;
        *-h2:S2)
            client=h2load
            h2load -c "$conns" -m 1 -t "$CLIENT_THREADS" -D "$SECONDS_PER_RUN" \
                -H "range: $FIXED_RANGE" "$url" >"$out" 2>&1
            ;;
    esac || { tail -n 5 "$out" >&2; echo "$client failed for $server $scenario" >&2; return 1; }
    pids="$(proc_tree "$SERVER_PID")"
    cpu1="$(cpu_ticks "$pids")"
    rss="$(peak_rss_kib "$pids")"
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "$server died during $scenario" >&2; return 1; }
    printf '{"server":"%s","scenario":"%s","run":%d,"client":"%s","connections":%d,"cpu_seconds":%s,"peak_rss_kib":%d,"output":"%s"}\n' \
        "$server" "$scenario" "$run" "$client" "$conns" \
        "$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" 'BEGIN { printf "%.3f", (b - a) / t }')" \
        "$rss" "client/$tag.txt" >"$RAW/runs/$tag.json"
    python3 "$script_dir/summarize-https.py" --line "$RAW/runs/$tag.json" >&2
}

# bench SERVER_NAME: both protocols' rows for one server process.
bench() {
    local name="$1" proto scenario run row
    log "== $name"
    cat -- "$DATA/big.bin" >/dev/null # page cache
    "start_$name" || { failure "$name" "*" "did not start"; stop_server; return 0; }
    probe "$name" || { failure "$name" "*" "probe failed"; stop_server; return 0; }
    for scenario in $SCENARIOS; do
        for proto in h1 h2; do
            row="$name-$proto"
            [[ " $SERVERS " == *" $row "* ]] || continue
            for ((run = 1; run <= RUNS; run++)); do
                measure "$row" "$scenario" "$run" || { failure "$row" "$scenario" "run $run failed"; break; }
            done
        done
    done
    stop_server
}

python3 - "$RAW/settings.json" <<EOF
import json, os, platform, subprocess, sys
def first_line(*args):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return None
ulp = open("/proc/sys/net/ipv4/tcp_available_ulp").read().split() if os.path.exists("/proc/sys/net/ipv4/tcp_available_ulp") else []
json.dump({
    "timestamp": "$stamp", "quick": $QUICK == 1, "duration_s": $SECONDS_PER_RUN, "runs": $RUNS,
    "big_bytes": $BIG_BYTES, "range_bytes": $RANGE_BYTES, "h2load_range": "$FIXED_RANGE",
    "workers": $WORKERS, "client_threads": $CLIENT_THREADS, "reelserve_mode": "$MODE",
    "nginx_tuning": """$NGINX_TUNING""".strip() or None,
    "servers": "$SERVERS".split(), "scenarios": "$SCENARIOS".split(),
    "nproc": os.cpu_count(), "kernel": platform.release(), "kernel_tls_ulp": "tls" in ulp,
    "load_average_at_start": list(os.getloadavg()),
    "reelserve_commit": first_line("git", "-C", "$root", "describe", "--always", "--dirty"),
    "versions": {"wrk": first_line("wrk", "-v"), "h2load": first_line("h2load", "--version"),
                 "nginx": first_line("$NGINX", "-v"), "openssl": first_line("openssl", "version")},
}, open(sys.argv[1], "w"), indent=2)
EOF

log "raw output: $RAW; DURATION=$DURATION RUNS=$RUNS BIG=$BIG_BYTES bytes; rows: $SERVERS; scenarios: $SCENARIOS"
for name in reelserve nginx; do
    [[ " $SERVERS " == *" $name-"* ]] && bench "$name"
done

python3 "$script_dir/summarize-https.py" "$RAW" "$OUT_DIR" || die "summarize-https.py failed (raw output in $RAW)"
if [[ -s "$RAW/failures.jsonl" ]]; then
    log "done, with failures (listed in $OUT_DIR/HTTPS.md)"
    exit 3
fi
log "done: $OUT_DIR/HTTPS.md, $OUT_DIR/https.json"
