#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: installs the real clients the tests drive
# (curl, wget, ffprobe, chromium, nginx, strace; playwright-core from npm), then runs every
# unit, property, integration and browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --locked "$@"
