#!/usr/bin/env bash
# Make a small, real sample movie for reelserve: 20 s, 640x360, 25 fps,
# H.264 (libx264, yuv420p, high profile) + AAC stereo in MP4.
# Everything comes from ffmpeg's lavfi sources, so nothing is downloaded.
#
# Usage:
#   scripts/make-sample-movie.sh                     # -> movie/sample.mp4 (faststart)
#   scripts/make-sample-movie.sh OUT.mp4             # -> OUT.mp4 (faststart)
#   scripts/make-sample-movie.sh --no-faststart OUT  # -> OUT, moov atom at the end
#
# The output is as deterministic as ffmpeg allows (bitexact flags, no
# metadata, single-threaded x264), so re-running it gives the same bytes
# with the same ffmpeg build.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd -- "$script_dir/.." && pwd)"

usage() {
    echo "usage: $0 [--no-faststart] [OUT.mp4]" >&2
    exit 2
}

faststart=1
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-faststart) faststart=0; shift ;;
        --faststart) faststart=1; shift ;;
        -h|--help) usage ;;
        --) shift; [[ $# -gt 0 ]] && { out="$1"; shift; } ;;
        -*) echo "unknown option: $1" >&2; usage ;;
        *) [[ -z "$out" ]] || usage; out="$1"; shift ;;
    esac
done
[[ $# -eq 0 ]] || usage
if [[ -z "$out" ]]; then
    if [[ $faststart -eq 0 ]]; then
        echo "--no-faststart needs an explicit output path" >&2
        usage
    fi
    out="$root/movie/sample.mp4"
fi

ensure_ffmpeg() {
    command -v ffmpeg >/dev/null 2>&1 && return 0
    echo "ffmpeg not found; installing it with apt-get" >&2
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install ffmpeg" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y ffmpeg || { $sudo apt-get update && $sudo apt-get install -y ffmpeg; }
}
ensure_ffmpeg

duration=20
fps=25
size=640x360

# Video: the testsrc2 pattern (it has its own moving elements, clock and
# frame counter in the top-left corner), plus a large running timestamp if a DejaVu font is available.
video="testsrc2=size=${size}:rate=${fps}:duration=${duration}"
font=""
for f in /usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf \
         /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf \
         /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf; do
    if [[ -r "$f" ]]; then font="$f"; break; fi
done
# (No "ffmpeg | grep -q" here: with pipefail, grep's early exit would SIGPIPE ffmpeg.)
filters="$(ffmpeg -hide_banner -filters 2>/dev/null || true)"
if [[ -n "$font" && "$filters" == *" drawtext "* ]]; then
    box="box=1:boxcolor=black@0.6:boxborderw=10:fontcolor=white"
    video+=",drawtext=fontfile=${font}:text='reelserve sample':fontsize=22:x=w-tw-16:y=16:${box}"
    video+=",drawtext=fontfile=${font}:text='%{pts\\:hms}':fontsize=40:x=(w-tw)/2:y=h-th-28:${box}"
fi

# Audio: a 440 Hz tone with a short beep every second (handy for A/V sync).
audio="sine=frequency=440:beep_factor=2:sample_rate=48000:duration=${duration}"

mkdir -p -- "$(dirname -- "$out")"
tmp="$(dirname -- "$out")/.$(basename -- "$out").tmp.$$.mp4"
trap 'rm -f -- "$tmp"' EXIT

movflags=()
[[ $faststart -eq 1 ]] && movflags=(-movflags +faststart)

ffmpeg -hide_banner -loglevel error -nostdin -y \
    -f lavfi -i "$video" \
    -f lavfi -i "$audio" \
    -map 0:v:0 -map 1:a:0 \
    -c:v libx264 -preset medium -profile:v high -pix_fmt yuv420p \
    -crf 26 -maxrate 450k -bufsize 900k \
    -g $((fps * 2)) -keyint_min $((fps * 2)) -sc_threshold 0 -threads 1 \
    -c:a aac -b:a 96k -ac 2 -ar 48000 \
    -t "$duration" \
    -fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 \
    "${movflags[@]}" \
    "$tmp"

mv -f -- "$tmp" "$out"
trap - EXIT

bytes=$(stat -c %s -- "$out")
echo "wrote $out ($bytes bytes, faststart=$faststart)"
