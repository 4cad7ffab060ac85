#!/usr/bin/env bash
# The seed article's CA, run with cardca on a local SoftHSM2 token in
# ./demo: initialise the card, generate the root and one sub CA key per
# functional area on it, and list what is there. Private keys never leave
# the token. Run by `make demo`; starts from scratch each time.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/target/release
demo=$top/demo
export PATH=$bin:$PATH

rm -rf "$demo"
mkdir -p "$demo/tokens"
cd "$demo"
cat > softhsm2.conf <<CONF
directories.tokendir = $demo/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF=$demo/softhsm2.conf
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
    [ -e "$m" ] && export CARDCA_MODULE=$m && break
done

# Demo PINs only: a real CA types them at the prompt or keeps them on a
# protected file system. The seed used user PIN 0000 and PUK 123456.
umask 077
printf '0000\n' > user.pin
printf '123456\n' > so.pin
token='pkcs11:token=ewak.net%20PKI'
pins=(--pin-source file:user.pin)

step() { printf '\n== %s\n' "$*"; }

step "initialise the card (pkcs15-init --erase-card --create-pkcs15)"
card-init --slot free --label 'ewak.net PKI' --so-pin-source file:so.pin --pin-source file:user.pin

step "generate the CA keys on the card (pkcs15-init --generate-key)"
card-keygen --token "$token" --type ec:p384 --label 'ewak.net Root CA' "${pins[@]}" > root.pub.pem
for area in servers clients users; do
    card-keygen --token "$token" --type ec:p256 --label "ewak.net Sub CA $area" "${pins[@]}" > "subca-$area.pub.pem"
done

step "what is on the card"
card-ls --token "$token" --objects --login "${pins[@]}"
