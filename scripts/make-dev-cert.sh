#!/bin/sh
# Makes a self-signed TLS certificate for SIP over TLS in development: DIR/agent.pem (private key + certificate,
# as sofia-sip's TLS transport wants it) and DIR/cafile.pem (the certificate, for peers to trust).
# Usage: scripts/make-dev-cert.sh [DIR] [HOST]   (defaults: certs, localhost). Never commit the output.
set -eu
dir=${1:-certs}
host=${2:-localhost}
mkdir -p "$dir"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=$host" -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/key.pem" "$tmp/cert.pem" > "$dir/agent.pem"
cp "$tmp/cert.pem" "$dir/cafile.pem"
chmod 600 "$dir/agent.pem"
chmod 644 "$dir/cafile.pem"
echo "wrote $dir/agent.pem (key + certificate) and $dir/cafile.pem for $host"
