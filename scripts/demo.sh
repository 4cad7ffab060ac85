#!/usr/bin/env bash
# The seed article's CA, run with cardca on a local SoftHSM2 token in
# ./demo, the way an operator runs it: initialise the card, generate the
# root and one sub CA key per functional area on it, self-sign the root,
# then one issuing directory per CA (examples/ca, in demo/ca/<CA>): drop
# requests into requests/, run make. The root's directory issues the sub
# CAs (servers, clients, users); each sub CA's issues its leaves, in one
# card-sign stream per run, into its own database (one per CA, as openssl
# ca assumes), and keeps a CRL and pre-signed OCSP responses fresh (the
# servers sub CA's signed by a delegated responder key on the card).
# Then a second make that has nothing to do, renewal, revocation, a
# signed-but-unrecorded certificate reconciled, the CRLs and OCSP
# responses re-signed, make status; every chain verified against the
# CRLs, and an OCSP response stapled in a TLS handshake (good, and
# revoked). Private keys never leave the token. Every key and record
# event lands in one hash-chained audit log, demo/audit.log, verified at
# the end. Run by `make demo`; starts from scratch each time.
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

# One audit log for every tool of the demo (without this, cert-store
# would keep one per database, db/*/audit.log, and the token tools none).
export CARDCA_AUDIT=$demo/audit.log

step "initialise the card (pkcs15-init --erase-card --create-pkcs15)"
card-init --slot free --label 'ewak.net PKI' --so-pin-source file:so.pin --pin-source file:user.pin

step "generate the CA keys on the card (pkcs15-init --generate-key)"
card-keygen --token "$token" --type ec:p384 --label 'ewak.net Root CA' "${pins[@]}" > root.pub.pem
for area in servers clients users; do
    card-keygen --token "$token" --type ec:p256 --label "ewak.net Sub CA $area" "${pins[@]}" > "subca-$area.pub.pem"
done

step "PIN management: change the user PIN, then set it back with the SO PIN (unblock)"
printf '4711\n' > new.pin
card-init --token "$token" --change-pin --pin-source file:user.pin --new-pin-source file:new.pin
card-init --token "$token" --unblock --so-pin-source file:so.pin --new-pin-source file:user.pin

step "a wrong PIN is refused, not retried, and logged"
printf '9999\n' > wrong.pin
if card-ls --token "$token" --objects --login --pin-source file:wrong.pin > /dev/null; then
    echo "demo: a wrong PIN logged in" >&2
    exit 1
fi

key() { printf '%s;object=%s' "$token" "$(printf '%s' "$1" | sed 's/ /%20/g')"; }
url=http://pki.ewak.net

step "the root CA, self-signed on the card"
root_key=$(key 'ewak.net Root CA')
csr-make --key "$root_key" --subject '/C=NL/O=ewak.net/CN=ewak.net Root CA' "${pins[@]}" \
    | tbs-build --self-signed --profile root \
    | card-sign --key "$root_key" "${pins[@]}" \
    | cert-store --db db/root --token "$token" "${pins[@]}" > root.pem
openssl x509 -in root.pem -noout -subject -dates

# issuing_dir CA CERT URL-NAME: the issuing directory demo/ca/CA for the
# CA certificate CERT, whose CRL and certificate are published under
# $url/URL-NAME.crl and .crt.
issuing_dir() {
    cp -r "$top/examples/ca" "ca/$1"
    cp "$2" "ca/$1/ca.pem"
    cat >> "ca/$1/ca.conf" <<CONF

# The demo's settings (a real CA keeps its PIN file on a protected file
# system, or leaves PIN_SOURCE empty to be asked once per run).
PIN_SOURCE = file:$demo/user.pin
MODULE = $CARDCA_MODULE
MODULE_ENV = SOFTHSM2_CONF=$SOFTHSM2_CONF
AUDIT = $demo/audit.log
ISSUE_ARGS = --crl-url $url/$3.crl --ca-issuers-url $url/$3.crt
CONF
}
# request CA NAME [TBS-BUILD FLAGS]: NAME's CSR (and its flags) into the
# directory's requests/ (the CSR from $demo/NAME.csr).
request() {
    cp "$2.csr" "ca/$1/requests/$2.csr"
    [ $# -gt 2 ] && printf '%s\n' "${*:3}" > "ca/$1/requests/$2.args"
    true
}
mkdir -p ca

step "the root's issuing directory (demo/ca/root): the sub CA requests, made on the card"
issuing_dir root root.pem root
# The root's own certificate is already in its database (above).
rm -rf ca/root/db && mv db/root ca/root/db
mkdir -p ca/root/requests
for area in servers clients users; do
    csr-make --key "$(key "ewak.net Sub CA $area")" --subject "/C=NL/O=ewak.net/CN=ewak.net Sub CA $area" "${pins[@]}" \
        > "subca-$area.csr"
done
request root subca-servers --profile subca --eku serverAuth --path-len 0 --policy 2.23.140.1.2.1
request root subca-clients --profile subca --eku clientAuth --path-len 0
request root subca-users --profile subca --eku emailProtection,clientAuth --path-len 0
ls ca/root/requests | sed 's/^/  requests\//'
echo "\$ make -C ca/root"
make -s -C ca/root
for area in servers clients users; do
    cp "ca/root/issued/subca-$area.pem" "subca-$area.pem"
    openssl x509 -in "subca-$area.pem" -noout -subject -ext extendedKeyUsage | paste -sd' '
done
echo "and onto the card, beside their keys (pkcs15-init --store-certificate):"
cat subca-servers.pem subca-clients.pem subca-users.pem | cert-store --token "$token" --ca root.pem "${pins[@]}" > /dev/null

step "a directory per sub CA; the owners' requests (their keys stay with them)"
issuing_dir servers subca-servers.pem servers
issuing_dir clients subca-clients.pem clients
issuing_dir users subca-users.pem users
for who in www old vpn-client-01 vpn-client-02 vpn-client-03 jan; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$who.key" \
        -subj "/CN=$who" -out "$who.csr" 2>/dev/null
done
mkdir -p ca/servers/requests ca/clients/requests ca/users/requests
request servers www --profile server --subject /C=NL/O=ewak.net/CN=www.ewak.net --san dns:www.ewak.net --policy 2.23.140.1.2.1
request servers old --profile server --san dns:old.ewak.net --policy 2.23.140.1.2.1
for n in 01 02 03; do request clients "vpn-client-$n" --profile client --subject "/C=NL/O=ewak.net/CN=vpn-client-$n"; done
request users jan --profile user --subject "'/C=NL/O=ewak.net/CN=Jan Jansen'" --san email:jan@ewak.net
for ca in servers clients users; do
    (cd "ca/$ca" && ls requests | sed "s|^|  ca/$ca/requests/|")
done

step "make in each: every request issued in one card-sign stream, then a CRL and the OCSP responses"
for ca in servers clients users; do
    echo "\$ make -C ca/$ca"
    make -s -C "ca/$ca"
done
for who in www old; do cp "ca/servers/issued/$who.pem" "$who.pem"; done
for who in vpn-client-01 vpn-client-02 vpn-client-03; do cp "ca/clients/issued/$who.pem" "$who.pem"; done
cp ca/users/issued/jan.pem jan.pem

step "make again: nothing to issue and nothing due, so nothing is signed (what cron runs nightly)"
for ca in root servers clients users; do
    make -s -C "ca/$ca"
done
echo "(silent)"

step "the servers sub CA refuses a client certificate (the seed's reason for one sub CA per area)"
cp vpn-client-01.csr ca/servers/requests/stray.csr
echo "--profile client --csr-subject" > ca/servers/requests/stray.args
if make -s -C ca/servers issue; then
    echo "demo: the servers sub CA issued a client certificate" >&2
    exit 1
fi
rm ca/servers/requests/stray.* ca/servers/rejected/stray.why

step "renewal: make renew re-issues what ends within RENEW_DAYS from the kept request (RENEW_DAYS=400 here, as if their time had come)"
make -s -C ca/clients expiring RENEW_DAYS=400 | cut -f1,2,4,6 || true
make -s -C ca/clients renew RENEW_DAYS=400
echo "the old ones stay valid until they end:"
cut -f1,4,6 ca/clients/db/index.txt | sed 's/^/  /'
for who in vpn-client-01 vpn-client-02 vpn-client-03; do cp "ca/clients/issued/$who.pem" "$who.pem"; done

step "revocation: vpn-client-02's key was lost; old.ewak.net is superseded by www"
make -s -C ca/clients revoke NAME=vpn-client-02 REASON=keyCompromise
make -s -C ca/servers revoke NAME=old REASON=superseded

step "a certificate signed but never recorded (the pipe to cert-store was cut): its reservation names it, --reconcile revokes it"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout vpn-client-04.key \
    -subj /CN=vpn-client-04 -out vpn-client-04.csr 2>/dev/null
tbs-build --ca subca-clients.pem --profile client --subject '/C=NL/O=ewak.net/CN=vpn-client-04' < vpn-client-04.csr \
    | card-sign --ca subca-clients.pem --db ca/clients/db "${pins[@]}" > vpn-client-04.pem
cert-store --db ca/clients/db --reserved
cert-store --db ca/clients/db --reconcile --min-age 0 --reason cessationOfOperation

step "an OCSP responder for the servers sub CA: a delegated key on the card (OCSPSigning, nocheck, 30 days), issued through its directory"
card-keygen --token "$token" --type ec:p256 --label 'ewak.net Sub CA servers OCSP' "${pins[@]}" > ocsp-servers.pub.pem
csr-make --key "$(key 'ewak.net Sub CA servers OCSP')" --subject '/C=NL/O=ewak.net/CN=ewak.net Sub CA servers OCSP' "${pins[@]}" \
    > ocsp-servers.csr
request servers ocsp-servers --profile ocsp --csr-subject
make -s -C ca/servers issue
cp ca/servers/issued/ocsp-servers.pem ocsp-servers.pem
# The responder's certificate lives 30 days: renewed (make renew) with
# 10 left; RESPONDER names the current one.
printf 'RESPONDER = issued/ocsp-servers.pem\nRENEW_DAYS = 10\n' >> ca/servers/ca.conf
openssl x509 -in ocsp-servers.pem -noout -subject -ext extendedKeyUsage,noCheck | sed 's/^ *//;/^$/d' | paste -sd' '

step "make: each CA's CRL and OCSP responses re-signed (the database changed)"
for ca in root servers clients users; do
    echo "\$ make -C ca/$ca"
    make -s -C "ca/$ca"
    printf '%s: ' "ca/$ca/crl.pem"
    openssl crl -in "ca/$ca/crl.pem" -CAfile "ca/$ca/ca.pem" -noout -verify 2>&1
done
for ca in servers clients users; do
    for f in "ca/$ca/ocsp"/*.der; do
        printf '%s: ' "$f"
        openssl ocsp -respin "$f" -issuer "ca/$ca/ca.pem" -CAfile root.pem -resp_text 2>&1 \
            | grep -E 'Response verify|Cert Status|Revocation Reason' | sed 's/^ *//' | paste -sd' '
    done
done

step "make status: the CA certificates, CRLs, OCSP responses and certificates within their margins"
for ca in root servers clients users; do
    printf 'ca/%s: ' "$ca"
    make -s -C "ca/$ca" status
done
echo "and a week on, without cron (CARDCA_NOW), it says what lapses:"
CARDCA_NOW=$(date -u -d '+6 days' +%Y-%m-%dT%H:%M:%SZ) make -s -C ca/servers status || true

step "every chain, checked by OpenSSL against the CRLs"
cat ca/*/crl.pem > crls.pem
check() {
    openssl verify -x509_strict -crl_check_all -CRLfile crls.pem -CAfile root.pem "$@"
}
check root.pem
check -purpose sslserver -untrusted subca-servers.pem www.pem
check -purpose sslclient -untrusted subca-clients.pem vpn-client-01.pem
check -purpose smimesign -untrusted subca-users.pem jan.pem
for who in vpn-client-02:revoked vpn-client-04:reconciled old:revoked; do
    ca=subca-clients
    [ "${who%%:*}" = old ] && ca=subca-servers
    if check -untrusted "$ca.pem" "${who%%:*}.pem" 2>/dev/null; then
        echo "demo: ${who%%:*}.pem verified" >&2
        exit 1
    fi
    echo "${who%%:*}.pem: ${who#*:}, refused as it should be"
done

step "an OCSP response stapled in a TLS handshake (openssl s_server -status_file), checked by the clients"
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; true' EXIT
staple() { # NAME EXPECTED-STATUS
    local name=$1 want=$2 port out
    # A free loopback port, then the server, serving two handshakes.
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    openssl s_server -www -accept "127.0.0.1:$port" -cert "$name.pem" -key "$name.key" -cert_chain subca-servers.pem \
        -status_file "ca/servers/ocsp/$(serial "$name.pem").der" -naccept 2 < /dev/null > "$name.server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do grep -q ACCEPT "$name.server.log" 2>/dev/null && break; sleep 0.1; done
    echo "-- $name.ewak.net: openssl s_client -status"
    out=$(openssl s_client -connect "127.0.0.1:$port" -servername "$name.ewak.net" -status -CAfile root.pem \
        -verify_hostname "$name.ewak.net" -verify_return_error < /dev/null 2>&1 \
        | grep -E 'OCSP Response Status|Cert Status|Revocation Reason|Verify return code' | sed 's/^ *//;s/ *$//' \
        | awk '!seen[$0]++')
    echo "$out" | sed 's/^/   /'
    echo "-- $name.ewak.net: gnutls-cli --ocsp (verifies the stapled response)"
    gnutls-cli --x509cafile root.pem --ocsp --port "$port" 127.0.0.1 --verify-hostname "$name.ewak.net" \
        < /dev/null 2>&1 | grep -E '^- Status|revoked via OCSP' | sed 's/^/   /;s/ *$//' || true
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    if ! grep -q "Cert Status: $want" <<< "$out"; then
        echo "demo: the stapled response for $name.ewak.net does not say $want" >&2
        exit 1
    fi
}
staple www good
staple old revoked

step "the databases, one per CA (openssl ca's index.txt)"
for ca in root servers clients users; do
    echo "ca/$ca/db:"
    cut -f1,4,6 "ca/$ca/db/index.txt" | sed 's/^/  /'
done

step "what is on the card"
card-ls --token "$token" --objects --login "${pins[@]}" | grep -E '^  [a-z]'

step "what was issued"
cn() { openssl x509 -in "$1" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p'; }
echo "$(cn root.pem)"
echo "├── $(cn subca-servers.pem)"
echo "│   ├── www.ewak.net (dns:www.ewak.net)"
echo "│   ├── old.ewak.net (revoked: superseded)"
echo "│   └── $(cn ocsp-servers.pem) (OCSP responder)"
echo "├── $(cn subca-clients.pem)"
echo "│   ├── $(cn vpn-client-01.pem) (renewed)"
echo "│   ├── $(cn vpn-client-02.pem) (revoked: keyCompromise, both certificates)"
echo "│   ├── $(cn vpn-client-03.pem) (renewed)"
echo "│   └── $(cn vpn-client-04.pem) (signed, never recorded: revoked by --reconcile)"
echo "└── $(cn subca-users.pem)"
echo "    └── $(cn jan.pem) (email:jan@ewak.net)"

step "a checkpoint: the root key signs the audit log's chain head on the card"
card-sign --ca root.pem "${pins[@]}" --audit-checkpoint > audit-checkpoint.line
cut -c1-120 audit-checkpoint.line | sed 's/$/.../'

step "the audit log: every event above, hash-chained, the checkpoint signed (cert-store --audit-verify)"
cert-store --audit-verify audit.log --audit-ca root.pem
echo "by event, kind and result:"
summary=$(jq -r '[.event, .kind, (if .result == "ok" then "ok" else "failed" end)]
    | map(select(. != null)) | join(" ")' audit.log | sort | uniq -c)
sed 's/^ */  /' <<< "$summary"
# Every kind of event issue 12 lists must be in the log (key-import has
# its own golden case: the demo generates every key).
for want in 'token-init ok' 'pin-change ok' 'pin-unblock ok' 'login failed' 'key-generate ok' \
    'sign certificate ok' 'sign crl ok' 'sign ocsp-response ok' 'store ok' 'revoke ok' 'crl-number ok' \
    'ocsp-publish ok' 'checkpoint ok'; do
    if ! grep -q " $want\$" <<< "$summary"; then
        echo "demo: no \"$want\" event in audit.log" >&2
        exit 1
    fi
done
echo "the last three lines:"
tail -n 3 audit.log | cut -c1-160 | sed 's/$/.../'
