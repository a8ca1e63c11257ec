# shellcheck shell=bash
# Helpers shared by compare.sh and compare-https.sh: logging, installing tools, tracking the
# processes a run starts (so the EXIT trap kills exactly those), and /proc measurements.
# Sourced, not run. Callers set PIDS_FILE before they register a process.

die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

apt_install() {
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install $*" >&2; return 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y "$@" >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y "$@" >&2; }
}

# ensure_tool COMMAND PACKAGE: installs PACKAGE with apt when COMMAND is missing.
ensure_tool() {
    command -v "$1" >/dev/null 2>&1 && return 0
    [[ -x "/usr/sbin/$1" ]] && return 0
    log "$1 not found; installing $2 with apt-get"
    apt_install "$2" && { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }
}

# Field 22 of /proc/PID/stat (start time): with the PID it names one process for good, so the
# cleanup never kills an unrelated process that reused a PID. Empty once the process is gone (or
# a zombie).
start_time() {
    awk '{ sub(/^.*\) /, ""); if ($1 != "Z") print $20 }' "/proc/$1/stat" 2>/dev/null || true
}

register_pid() {
    printf '%s %s\n' "$1" "$(start_time "$1")" >>"$PIDS_FILE"
}

# kill_registered PID: TERM, then KILL after 5 s, if PID is still the process we started.
kill_registered() {
    local pid="$1" started="$2" i
    [[ -n "$started" && "$(start_time "$pid")" == "$started" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        [[ "$(start_time "$pid")" == "$started" ]] || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# The process and all its descendants (nginx's workers).
proc_tree() {
    local queue=("$1") found=() pid kid
    while [[ ${#queue[@]} -gt 0 ]]; do
        pid="${queue[0]}"
        queue=("${queue[@]:1}")
        [[ -d "/proc/$pid" ]] || continue
        found+=("$pid")
        for kid in $(pgrep -P "$pid" || true); do queue+=("$kid"); done
    done
    echo "${found[*]}"
}

# Clock ticks of user+system time of the given processes (all their threads).
cpu_ticks() {
    local pid
    for pid in $1; do cat "/proc/$pid/stat" 2>/dev/null || true; done |
        awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { printf "%.0f\n", t }'
}

# Sum of VmHWM (peak resident set, KiB) of the given processes.
peak_rss_kib() {
    local pid
    for pid in $1; do awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true; done |
        awk '{ s += $1 } END { printf "%.0f\n", s }'
}

# Resets VmHWM to the current RSS (Linux >= 4.0); prints true if it worked for every process.
reset_peak_rss() {
    local pid ok=true
    for pid in $1; do
        { echo 5 >"/proc/$pid/clear_refs"; } 2>/dev/null || ok=false
    done
    echo "$ok"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ensure_release_binary ROOT BUILD: runs cargo build --release when BUILD is 1; dies if the
# release binary is missing. Sets BIN.
ensure_release_binary() {
    BIN="$1/target/release/reelserve"
    if [[ "$2" == 1 ]]; then
        log "cargo build --release"
        (cd -- "$1" && cargo build --release --bin reelserve) >&2 || die "cargo build --release failed"
    fi
    [[ -x "$BIN" ]] || die "$BIN is missing: run cargo build --release (or let the script build)"
}

# make_data_dir DIR BYTES: DIR (world-readable, for nginx's workers) with big.bin of BYTES random
# bytes, kept between runs while its size matches.
make_data_dir() {
    mkdir -p -- "$1"
    chmod 755 "$(dirname -- "$1")" "$1"
    if [[ ! -f "$1/big.bin" || "$(stat -c %s -- "$1/big.bin")" != "$2" ]]; then
        log "making $1/big.bin ($2 bytes from /dev/urandom)"
        head -c "$2" /dev/urandom >"$1/big.bin.tmp"
        mv -f -- "$1/big.bin.tmp" "$1/big.bin"
    fi
}
