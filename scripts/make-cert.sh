#!/usr/bin/env bash
# Makes a self-signed certificate and key for local HTTPS: DIR/cert.pem and DIR/key.pem
# (ECDSA P-256, valid 365 days, for localhost and 127.0.0.1).
#
#   scripts/make-cert.sh [DIR]      # DIR defaults to ./tls
#   reelserve --tls-cert DIR/cert.pem --tls-key DIR/key.pem
#
# Browsers and curl will not trust it (curl -k, chromium --ignore-certificate-errors);
# for a public name use a real certificate (e.g. Let's Encrypt), which reelserve reads the same way.
set -euo pipefail
dir="${1:-tls}"
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem"
chmod 600 "$dir/key.pem"
echo "wrote $dir/cert.pem and $dir/key.pem"
