#!/usr/bin/env bash
# Development TLS material for the compose stack's Mosquitto: a throwaway CA and a server
# certificate for the given host names (default: mosquitto localhost). Production brokers get
# their certificates from provisioning/'s CA or the cloud provider, never from this script.
# Usage: infra/mosquitto/make-dev-certs.sh OUT_DIR [HOST...]
set -euo pipefail
out="${1:?usage: make-dev-certs.sh OUT_DIR [HOST...]}"
shift || true
[ "$#" -gt 0 ] || set -- mosquitto localhost
hosts=("$@")
mkdir -p "$out"
san="IP:127.0.0.1"
for h in "${hosts[@]}"; do san="$san,DNS:$h"; done
openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=Receipt Manager dev CA" \
  -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=${hosts[0]}" \
  -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -days 825 -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") \
  -out "$out/server.crt" 2>/dev/null
rm -f "$out/server.csr" "$out/ca.srl"
chmod 600 "$out"/*.key
echo "$out: ca.crt server.crt server.key ($san)"
