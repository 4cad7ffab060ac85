#!/usr/bin/env bash
# The seed article's CA, run with cardca on a local SoftHSM2 token in
# ./demo: initialise the card, generate the root and one sub CA key per
# functional area on it, issue the root and the sub CAs (servers, clients,
# users) into the root's database and onto the card, one certificate under
# each sub CA into that sub CA's database (one database per CA, as openssl
# ca assumes: demo/db/<CA>), revoke one, sign a CRL per CA, and verify every chain
# against the CRLs; then pre-sign an OCSP response for every sub CA's
# certificates (RFC 5019 style, filed by serial for a web server), and
# staple one in a TLS handshake (good, and revoked). Private keys never
# leave the token. Every key and record event lands in one hash-chained
# audit log, demo/audit.log, which is verified at the end. Run by `make
# demo`; starts from scratch each time.
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

step "one sub CA per functional area, signed by the root"
declare -A ekus=([servers]=serverAuth [clients]=clientAuth [users]=emailProtection,clientAuth)
for area in servers clients users; do
    policy=()
    [ "$area" = servers ] && policy=(--policy 2.23.140.1.2.1)
    csr-make --key "$(key "ewak.net Sub CA $area")" --subject "/C=NL/O=ewak.net/CN=ewak.net Sub CA $area" "${pins[@]}" \
        | tbs-build --ca root.pem --profile subca --eku "${ekus[$area]}" --path-len 0 \
            --crl-url "$url/root.crl" --ca-issuers-url "$url/root.crt" "${policy[@]}" \
        | card-sign --ca root.pem --db db/root "${pins[@]}" \
        | cert-store --db db/root --ca root.pem --token "$token" "${pins[@]}" > "subca-$area.pem"
    openssl x509 -in "subca-$area.pem" -noout -subject -ext extendedKeyUsage | paste -sd' '
done

step "a server, a client and a user certificate (their keys stay with their owners)"
for who in www vpn-client-01 jan; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$who.key" \
        -subj "/CN=$who" -out "$who.csr" 2>/dev/null
done
tbs-build --ca subca-servers.pem --profile server --subject /C=NL/O=ewak.net/CN=www.ewak.net --san dns:www.ewak.net \
    --policy 2.23.140.1.2.1 --crl-url "$url/servers.crl" --ca-issuers-url "$url/servers.crt" < www.csr \
    | card-sign --ca subca-servers.pem --db db/subca-servers "${pins[@]}" | cert-store --db db/subca-servers --ca subca-servers.pem > www.pem
tbs-build --ca subca-clients.pem --profile client --subject '/C=NL/O=ewak.net/CN=vpn-client-01' < vpn-client-01.csr \
    | card-sign --ca subca-clients.pem --db db/subca-clients "${pins[@]}" | cert-store --db db/subca-clients --ca subca-clients.pem > vpn-client-01.pem
tbs-build --ca subca-users.pem --profile user --subject '/C=NL/O=ewak.net/CN=Jan Jansen' \
    --san email:jan@ewak.net < jan.csr \
    | card-sign --ca subca-users.pem --db db/subca-users "${pins[@]}" | cert-store --db db/subca-users --ca subca-users.pem > jan.pem

step "the servers sub CA refuses a client certificate (the seed's reason for one sub CA per area)"
if tbs-build --ca subca-servers.pem --profile client --csr-subject < vpn-client-01.csr > /dev/null; then
    echo "demo: the servers sub CA issued a client certificate" >&2
    exit 1
fi

step "a second client certificate, then revoked: its key was lost"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout vpn-client-02.key \
    -subj /CN=vpn-client-02 -out vpn-client-02.csr 2>/dev/null
tbs-build --ca subca-clients.pem --profile client --subject '/C=NL/O=ewak.net/CN=vpn-client-02' < vpn-client-02.csr \
    | card-sign --ca subca-clients.pem --db db/subca-clients "${pins[@]}" | cert-store --db db/subca-clients --ca subca-clients.pem > vpn-client-02.pem
cert-store --db db/subca-clients --revoke - --reason keyCompromise < vpn-client-02.pem

step "a third client certificate, signed but never recorded (the pipe to cert-store was cut): its reservation names it, --reconcile revokes it"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout vpn-client-03.key \
    -subj /CN=vpn-client-03 -out vpn-client-03.csr 2>/dev/null
tbs-build --ca subca-clients.pem --profile client --subject '/C=NL/O=ewak.net/CN=vpn-client-03' < vpn-client-03.csr \
    | card-sign --ca subca-clients.pem --db db/subca-clients "${pins[@]}" > vpn-client-03.pem
cert-store --db db/subca-clients --reserved
cert-store --db db/subca-clients --reconcile --min-age 0 --reason cessationOfOperation

step "a CRL per CA, signed on the card"
for ca in root subca-servers subca-clients subca-users; do
    tbs-build --crl --ca "$ca.pem" --db "db/$ca" --days 7 | card-sign --ca "$ca.pem" --db "db/$ca" "${pins[@]}" > "$ca.crl"
    printf '%s: ' "$ca.crl"
    openssl crl -in "$ca.crl" -CAfile "$ca.pem" -noout -verify 2>&1
done
cat root.crl subca-*.crl > crls.pem

step "every chain, checked by OpenSSL against the CRLs"
check() {
    openssl verify -x509_strict -crl_check_all -CRLfile crls.pem -CAfile root.pem "$@"
}
check root.pem
check -purpose sslserver -untrusted subca-servers.pem www.pem
check -purpose sslclient -untrusted subca-clients.pem vpn-client-01.pem
check -purpose smimesign -untrusted subca-users.pem jan.pem
if check -purpose sslclient -untrusted subca-clients.pem vpn-client-02.pem 2>/dev/null; then
    echo "demo: the revoked certificate verified" >&2
    exit 1
fi
echo "vpn-client-02.pem: revoked, refused as it should be"
if check -purpose sslclient -untrusted subca-clients.pem vpn-client-03.pem 2>/dev/null; then
    echo "demo: the reconciled certificate verified" >&2
    exit 1
fi
echo "vpn-client-03.pem: revoked by --reconcile, refused as it should be"

step "a second server certificate, then revoked: superseded by www"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout old.key \
    -subj /CN=old.ewak.net -out old.csr 2>/dev/null
tbs-build --ca subca-servers.pem --profile server --san dns:old.ewak.net --policy 2.23.140.1.2.1 < old.csr \
    | card-sign --ca subca-servers.pem --db db/subca-servers "${pins[@]}" | cert-store --db db/subca-servers --ca subca-servers.pem > old.pem
cert-store --db db/subca-servers --revoke - --reason superseded < old.pem

step "an OCSP responder for the servers sub CA: a delegated key on the card (OCSPSigning, nocheck, 30 days)"
card-keygen --token "$token" --type ec:p256 --label 'ewak.net Sub CA servers OCSP' "${pins[@]}" > ocsp-servers.pub.pem
csr-make --key "$(key 'ewak.net Sub CA servers OCSP')" --subject '/C=NL/O=ewak.net/CN=ewak.net Sub CA servers OCSP' "${pins[@]}" \
    | tbs-build --ca subca-servers.pem --profile ocsp --csr-subject \
    | card-sign --ca subca-servers.pem --db db/subca-servers "${pins[@]}" \
    | cert-store --db db/subca-servers --ca subca-servers.pem > ocsp-servers.pem
openssl x509 -in ocsp-servers.pem -noout -subject -ext extendedKeyUsage,noCheck | sed 's/^ *//;/^$/d' | paste -sd' '

step "OCSP responses for every sub CA's certificates, pre-signed on the card, filed by serial"
for area in servers clients users; do
    ca=subca-$area
    responder=()
    [ "$area" = servers ] && responder=(--responder ocsp-servers.pem)
    tbs-build --ocsp --ca "$ca.pem" --db "db/$ca" --days 4 "${responder[@]}" \
        | card-sign --ca "$ca.pem" --db "db/$ca" "${responder[@]}" "${pins[@]}" \
        | cert-store --ocsp-dir "ocsp/$ca" --ca "$ca.pem" > /dev/null
    for f in "ocsp/$ca"/*.der; do
        printf '%s: ' "$f"
        openssl ocsp -respin "$f" -issuer "$ca.pem" -CAfile root.pem -resp_text 2>&1 \
            | grep -E 'Response verify|Cert Status|Revocation Reason' | sed 's/^ *//' | paste -sd' '
    done
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
        -status_file "ocsp/subca-servers/$(serial "$name.pem").der" -naccept 2 < /dev/null > "$name.server.log" 2>&1 &
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
for ca in root subca-servers subca-clients subca-users; do
    echo "db/$ca:"
    cut -f1,4,6 "db/$ca/index.txt" | sed 's/^/  /'
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
echo "│   ├── $(cn vpn-client-01.pem)"
echo "│   └── $(cn vpn-client-02.pem) (revoked: keyCompromise)"
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
