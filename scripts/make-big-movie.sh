#!/usr/bin/env bash
# Make a large, real, playable movie, movie/big.mp4 (git-ignored), by looping
# movie/sample.mp4 with ffmpeg's concat demuxer and stream copy (no
# re-encoding, so it is fast and bounded by disk speed).
#
# Every copy starts on a keyframe and the timestamps run on continuously, so
# the result plays and seeks like one long movie (the on-screen clock restarts
# every 20 s). At each 20 s seam the AAC encoder-delay packet of the next copy
# overlaps the previous copy's last audio packet by a few ms; ffmpeg nudges
# its timestamp (warnings hidden by -loglevel error), there is no A/V drift.
#
# Usage:
#   scripts/make-big-movie.sh [SIZE] [OUT.mp4]
#
# SIZE is the minimum size of the result (default 800M). Accepted forms:
# a byte count (838860800), or a number with a K/M/G/T suffix, optionally
# followed by B or iB (256M, 1G, 1.5G, 800MiB); suffixes are powers of 1024.
# The result is a whole number of copies of sample.mp4, so it is slightly
# larger than SIZE. OUT defaults to movie/big.mp4.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd -- "$script_dir/.." && pwd)"

usage() {
    echo "usage: $0 [SIZE (default 800M; e.g. 256M, 1G, 838860800)] [OUT.mp4]" >&2
    exit 2
}

case "${1:-}" in -h|--help) usage ;; esac
[[ $# -le 2 ]] || usage
size_arg="${1:-800M}"
out="${2:-$root/movie/big.mp4}"
sample="$root/movie/sample.mp4"

# Parse SIZE into bytes.
parse_size() {
    local s="${1^^}" num unit mult
    s="${s// /}"
    if [[ "$s" =~ ^([0-9]+(\.[0-9]+)?)([KMGT]?)(I?B)?$ ]]; then
        num="${BASH_REMATCH[1]}"
        unit="${BASH_REMATCH[3]}"
    else
        return 1
    fi
    case "$unit" in
        "") mult=1 ;;
        K) mult=1024 ;;
        M) mult=$((1024 ** 2)) ;;
        G) mult=$((1024 ** 3)) ;;
        T) mult=$((1024 ** 4)) ;;
    esac
    awk -v n="$num" -v m="$mult" 'BEGIN { printf "%.0f\n", n * m }'
}
target="$(parse_size "$size_arg")" || { echo "bad SIZE: $size_arg" >&2; usage; }
[[ "$target" -gt 0 ]] || { echo "SIZE must be > 0" >&2; exit 2; }

# make-sample-movie.sh also installs ffmpeg when it is missing.
if [[ ! -s "$sample" ]] || ! command -v ffmpeg >/dev/null 2>&1; then
    echo "making $sample with make-sample-movie.sh" >&2
    "$script_dir/make-sample-movie.sh" "$sample"
fi

sample_bytes=$(stat -c %s -- "$sample")
copies=$(( (target + sample_bytes - 1) / sample_bytes ))
[[ $copies -ge 1 ]] || copies=1

mkdir -p -- "$(dirname -- "$out")"
out_dir="$(cd -- "$(dirname -- "$out")" && pwd)"
tmp="$out_dir/.$(basename -- "$out").tmp.$$.mp4"
list="$(mktemp "${TMPDIR:-/tmp}/reelserve-concat.XXXXXX")"
trap 'rm -f -- "$tmp" "$list"' EXIT

# The concat list: the same file, $copies times. Quote for the concat
# demuxer's syntax ('\'' closes, escapes and reopens a single quote).
quoted="${sample//\'/\'\\\'\'}"
for ((i = 0; i < copies; i++)); do
    printf "file '%s'\n" "$quoted"
done >"$list"

echo "looping $(basename -- "$sample") ($sample_bytes bytes) x$copies to reach >= $target bytes" >&2
start=$(date +%s.%N)
ffmpeg -hide_banner -loglevel error -nostdin -y \
    -f concat -safe 0 -i "$list" \
    -map 0:v:0 -map 0:a:0 -c copy \
    -fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 \
    -movflags +faststart \
    "$tmp"
mv -f -- "$tmp" "$out"
trap 'rm -f -- "$list"' EXIT
end=$(date +%s.%N)

bytes=$(stat -c %s -- "$out")
duration="unknown"
if command -v ffprobe >/dev/null 2>&1; then
    duration="$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 -- "$out")"
fi
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "wrote $out: $bytes bytes ($mib MiB), duration ${duration} s, in ${secs} s"
