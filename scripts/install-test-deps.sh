#!/usr/bin/env bash
# Install what the integration tests drive: real clients (curl, wget, ffprobe, headless
# Chromium), nginx for the caching-proxy test, strace and wrk, a font for screenshots, openssl
# for the HTTPS tests' certificates, promtool (Debian's prometheus package) to check the metrics
# output, and playwright-core for tests/browser (from
# tests/browser/package-lock.json).
#
# Idempotent and quiet: it installs only what is missing (and runs apt-get update only then),
# and prints one line per thing it installed. Works as root on a fresh Debian 12 (as CI runs
# it from .ci/run); as another user it uses sudo for apt-get.
#
# Usage:
#   scripts/install-test-deps.sh
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd -- "$script_dir/.." && pwd)"

# Debian package -> how to tell it is already there (a command, or a file).
declare -A present=(
    [curl]="command curl"
    [wget]="command wget"
    [ffmpeg]="command ffprobe"
    [chromium]="file /usr/bin/chromium"
    [nginx-light]="file /usr/sbin/nginx"
    [strace]="command strace"
    [wrk]="command wrk"
    [fonts-dejavu-core]="file /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    [openssl]="command openssl"
    [prometheus]="command promtool"
    [util-linux]="command fincore"
)
order=(curl wget ffmpeg chromium nginx-light strace wrk fonts-dejavu-core openssl prometheus util-linux)

is_present() {
    local kind="${1%% *}" what="${1#* }"
    case "$kind" in
        command) command -v "$what" >/dev/null 2>&1 ;;
        file) [[ -e "$what" ]] ;;
    esac
}

missing=()
for package in "${order[@]}"; do
    is_present "${present[$package]}" || missing+=("$package")
done
# Node.js runs playwright-core; the machine image normally has it. Debian's own is older
# than playwright-core asks for (see tests/browser/package.json "engines"), but better than none.
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

log="$(mktemp "${TMPDIR:-/tmp}/install-test-deps.XXXXXX")"
sudo=()
remove_policy=0
cleanup() {
    rm -f -- "$log"
    if [[ $remove_policy -eq 1 ]]; then "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

fail() {
    echo "install-test-deps: $1 (output follows)" >&2
    cat -- "$log" >&2
    exit 1
}

if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "install-test-deps: need root (or sudo) to install: ${missing[*]}" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Installing nginx must not start a system nginx on port 80 (nor chromium any service):
    # policy-rc.d answering 101 tells invoke-rc.d "not now". Only if there is none already.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${sudo[@]}" chmod 0755 /usr/sbin/policy-rc.d
        remove_policy=1
    fi
    "${sudo[@]}" apt-get update -qq >"$log" 2>&1 || fail "apt-get update failed"
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 \
        || fail "apt-get install ${missing[*]} failed"
    for package in "${missing[@]}"; do
        echo "installed $package (apt)"
    done
fi

if [[ ! -d "$root/tests/browser/node_modules" ]]; then
    npm ci --prefix "$root/tests/browser" --no-audit --no-fund --loglevel=error >"$log" 2>&1 \
        || fail "npm ci in tests/browser failed"
    version="$(node -p 'require(process.argv[1]).version' \
        "$root/tests/browser/node_modules/playwright-core/package.json")"
    echo "installed playwright-core $version (npm ci in tests/browser)"
fi

# httplint (the checker behind REDbot), pinned, for the HTTP-linter test in tests/clients.rs.
if ! python3 -c 'import httplint' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        'httplint==2026.10.4' >"$log" 2>&1 || fail "pip install httplint failed"
    echo "installed httplint 2026.10.4 (pip)"
fi
