#!/usr/bin/env bash
# Makes a throwaway test PKI in DIR (created if missing): a CA and a server
# certificate it signs, valid for the given names. Nothing here is secret or
# committed: tests call this at run time.
#
# Usage: make_test_pki.sh DIR [NAME...]
#   NAME: a DNS name or an IP address for the server certificate's
#         subjectAltName (default: localhost 127.0.0.1 ::1).
# Writes: DIR/ca.pem (the CA certificate, for --ca-file),
#         DIR/server.pem (server certificate followed by the CA: a full chain),
#         DIR/server.key, and DIR/server.spki (base64 SHA-256 of the server key's
#         SubjectPublicKeyInfo, for Chromium's
#         --ignore-certificate-errors-spki-list).
set -euo pipefail
dir=${1:?usage: make_test_pki.sh DIR [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost 127.0.0.1 ::1)

mkdir -p "$dir"
cd "$dir"
san=""
for n in "${names[@]}"; do
  if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
done
san=${san%,}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout ca.key -out ca.pem -days 2 -subj "/CN=p2pmesh test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout server.key -out server.csr -subj "/CN=${names[0]}" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.crt 2>/dev/null
cat server.crt ca.pem > server.pem
openssl pkey -in server.key -pubout -outform der 2>/dev/null | openssl dgst -sha256 -binary | base64 > server.spki
rm -f server.csr server.ext ca.srl
chmod 600 server.key ca.key
