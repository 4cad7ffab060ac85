#!/bin/bash
# Remakes fuzz/corpus/*/ seeds from the test fixtures: the committed keys,
# CSRs, certificates, TBSCertificates and a CRL made from them with openssl,
# index.txt lines, and the DN, SAN, URI and time strings of the man pages and
# golden tests. File names are content hashes, as cargo-fuzz names them.
# Run from anywhere; needs openssl and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
keys=$root/tests/fixtures/keys
corpus=$here/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

put() { # put TARGET FILE: copy FILE into the corpus under its hash
    mkdir -p "$corpus/$1"
    cp "$2" "$corpus/$1/$(sha1sum <"$2" | cut -c1-40)"
}
put_text() { # put_text TARGET < lines: one seed per line
    local line
    while IFS= read -r line; do
        printf '%s' "$line" >seed
        put "$1" seed
    done
}
# The TBSCertificate / TBSCertList inside a signed DER object: the first
# element of the outer SEQUENCE.
tbs_of() {
    python3 - "$1" "$2" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
def header(b, i):
    n = b[i + 1]
    if n < 0x80:
        return i + 2, n
    k = n & 0x7f
    return i + 2 + k, int.from_bytes(b[i + 2:i + 2 + k], 'big')
start, _ = header(d, 0)
body, length = header(d, start)
open(sys.argv[2], 'wb').write(d[start:body + length])
PY
}

cat >ca.cnf <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
C = NL
O = ewak.net
CN = ewak.net Root CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:www.ewak.net, DNS:ewak.net, IP:192.0.2.1, email:pki@ewak.net, URI:https://ewak.net/
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://pki.ewak.net/root.crl
authorityInfoAccess = caIssuers;URI:http://pki.ewak.net/root.crt
certificatePolicies = 2.23.140.1.2.1
[sub]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
nameConstraints = critical, permitted;DNS:ewak.net, permitted;email:ewak.net, excluded;IP:10.0.0.0/255.0.0.0
[req_san]
subjectAltName = DNS:www.ewak.net, IP:2001:db8::1
[ca]
default_ca = myca
[myca]
database = ./index.txt
crlnumber = ./crlnumber
default_md = sha256
default_crl_days = 30
certificate = ./ca.pem
private_key = $keys/p256.pem
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF
q() { "$@" >/dev/null 2>&1; }
# The root is the fixed CA of cardca::fuzz (shared/src/fuzz-ca.der).
openssl x509 -inform DER -in "$root/shared/src/fuzz-ca.der" -out ca.pem
for k in p256 p384 p521 rsa2048 rsa3072 ed25519 rsa2048-e3 secp256k1; do
    q openssl req -new -key "$keys/$k.pem" -subj "/C=NL/O=ewak.net/OU=servers/CN=www.ewak.net" \
        -config ca.cnf -reqexts req_san -outform DER -out "csr-$k.der"
    put csr "csr-$k.der"
done
q openssl req -new -key "$keys/p256.pem" -subj "/CN=plain" -config ca.cnf -outform DER -out csr-plain.der
put csr csr-plain.der
serial=8192
for k in rsa2048 ed25519 p384; do
    serial=$((serial + 1))
    q openssl x509 -req -in "csr-$k.der" -inform DER -CA ca.pem -CAkey "$keys/p256.pem" \
        -set_serial $serial -days 397 -extfile ca.cnf -extensions leaf -outform DER -out "leaf-$k.der"
done
q openssl x509 -req -in csr-p521.der -inform DER -CA ca.pem -CAkey "$keys/p256.pem" \
    -set_serial 4096 -days 1825 -extfile ca.cnf -extensions sub -outform DER -out sub.der
q openssl req -x509 -new -key "$keys/ed25519.pem" -config ca.cnf -extensions v3_ca -days 3650 \
    -set_serial 5 -outform DER -out self-ed.der
q openssl req -x509 -new -key "$keys/rsa2048.pem" -config ca.cnf -extensions v3_ca -days 3650 \
    -set_serial 6 -outform DER -out self-rsa.der
openssl x509 -in ca.pem -outform DER -out ca.der
for c in ca leaf-rsa2048 leaf-ed25519 leaf-p384 sub self-ed self-rsa; do
    put cert "$c.der"
    tbs_of "$c.der" "$c.tbs"
    put tbs "$c.tbs"
done
: >index.txt
echo 01 >crlnumber
openssl x509 -inform DER -in leaf-rsa2048.der -out leaf.pem
q openssl ca -config ca.cnf -gencrl -out empty.crl
q openssl ca -config ca.cnf -revoke leaf.pem -crl_reason keyCompromise
q openssl ca -config ca.cnf -gencrl -out one.crl
for c in empty one; do
    openssl crl -in $c.crl -outform DER -out $c.der
    put crl $c.der
done

# OCSP: openssl's responder for the fixed CA (ca.pem),
# CA-signed by key id: the revoked leaf,
# an unknown serial, and a response carrying a certificate; each signed
# response and the ResponseData inside it.

ocsp_tbs_of() {
    python3 - "$1" "$2" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
def tlv(b, i):
    n = b[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[j:j + k], 'big')
        j += k
    return j, j + n
def child(b, i, k):  # the k-th element inside the element at i
    j, end = tlv(b, i)
    for _ in range(k):
        j = tlv(b, j)[1]
    return j
bytes_ = child(d, child(d, 0, 1), 0)          # [0] -> ResponseBytes
octets = child(d, bytes_, 1)                  # response OCTET STRING
start, end = tlv(d, octets)
basic = d[start:end]
first = child(basic, 0, 0)
open(sys.argv[2], 'wb').write(basic[first:tlv(basic, first)[1]])
PY
}
for c in leaf sub; do
    [ $c = sub ] && openssl x509 -inform DER -in sub.der -out sub.pem
    q openssl ocsp -issuer ca.pem -cert $c.pem -no_nonce -reqout req-$c.der
    q openssl ocsp -index index.txt -rsigner ca.pem -rkey "$keys/p256.pem" -CA ca.pem \
        -reqin req-$c.der -resp_key_id -ndays 7 -respout resp-$c.der
    put ocsp resp-$c.der
    ocsp_tbs_of resp-$c.der rd-$c.der
    put ocsp rd-$c.der
done
q openssl ocsp -index index.txt -rsigner ca.pem -rkey "$keys/p256.pem" -CA ca.pem \
    -reqin req-leaf.der -ndays 7 -respout resp-byname.der
put ocsp resp-byname.der

# The stream reader: PEM and DER as the tools pass them on.
put io ca.pem
put io csr-p256.der
cat leaf.pem ca.pem >chain.pem
put io chain.pem
for f in p256.pem ed25519.pem rsa2048.pem; do put io "$keys/$f"; done
for f in "$root"/tests/*/*/stdin; do [ -s "$f" ] && put io "$f"; done

# Key files for --import, and a PKCS#12 with its certificate.
for f in "$keys"/*; do case $f in *README) ;; *) put import "$f" ;; esac; done
q openssl pkcs12 -export -inkey "$keys/rsa2048.pem" -in leaf.pem -passout pass:test -out leaf.p12
put import leaf.p12
q openssl pkcs8 -topk8 -in "$keys/p256.pem" -v2 aes-256-cbc -passout pass:test -outform DER -out p256-enc.der
put import p256-enc.der

# index.txt: openssl's own lines and the shapes cardca reads.
put index_line index.txt
put_text index_line <<'EOF'
V	270101000000Z		01	unknown	/C=NL/O=ewak.net/CN=www.ewak.net
R	270101000000Z	260301120000Z,keyCompromise	0123AB	unknown	/C=NL/CN=x
R	270101000000Z	260301120000Z,certificateHold,holdInstructionReject	0A	unknown	/CN=x
R	270101000000Z	260301120000Z,removeFromCRL	0B	unknown	/CN=x
R	270101000000Z	260301120000Z	0C	unknown	/CN=x
E	270101000000Z		0D	unknown	/CN=x
V	20500101000000Z		0E	0E.pem	/CN=Smith\, John/O=a\/b
V	270101000000Z		0F	unknown	/CN=\x0A\x09
EOF

# Audit logs: a chained log as the tools write it, the same with a torn
# last line, with a recorded tear, and with each kind of tampering.
python3 - <<'PY'
import hashlib, json
def line(seq, event, prev, **f):
    d = {"v": 1, "seq": seq, "time": "2026-12-01T00:00:00.000Z", "tool": "card-sign",
         "version": "0.1.0", "pid": 42, "uid": 0, "user": "root", "host": "ca1", "event": event}
    d.update(f)
    d["result"] = f.pop("result", "ok") if "result" in f else "ok"
    d["prev"] = prev
    return json.dumps(d, separators=(",", ":"), ensure_ascii=True)
def chain(specs):
    out, prev = [], "0" * 64
    for i, (event, f) in enumerate(specs, 1):
        l = line(i, event, prev, **f)
        prev = hashlib.sha256(l.encode()).hexdigest()
        out.append(l)
    return out
specs = [("login", {"user_type": "user", "token": "pkcs11:token=t"}),
         ("sign", {"kind": "certificate", "tbs_sha256": "ab" * 32, "serial": "01", "key_label": "Z\u00f6\u00eb"}),
         ("store", {"serial": "01", "in": "db", "subject": "/CN=a\"b\\c"}),
         ("sign", {"kind": "crl", "crl_number": "02", "host": {"hex": "ff00"}})]
lines = chain(specs)
open("audit-intact", "w").write("\n".join(lines) + "\n")
open("audit-torn", "w").write("\n".join(lines) + "\n" + lines[0][:30])
torn = lines[3][:40]
prev = hashlib.sha256(torn.encode()).hexdigest()
tear = line(5, "torn-line", prev, torn_line=4, torn_bytes=40,
            torn_prev=hashlib.sha256(lines[2].encode()).hexdigest(), result="torn")
open("audit-repaired", "w").write("\n".join(lines[:3] + [torn, tear]) + "\n")
open("audit-swapped", "w").write("\n".join([lines[0], lines[2], lines[1], lines[3]]) + "\n")
open("audit-deleted", "w").write("\n".join([lines[0], lines[2], lines[3]]) + "\n")
PY
for f in audit-*; do put audit_log "$f"; done

# DN text from the man pages and golden tests.
put_text dn <<'EOF'
/C=NL/O=ewak.net/CN=ewak.net Root CA
/C=NL/L=Tiël/O=ewak.net/CN=Zoë
/C=NL/O=ewak.net/CN=Jan/emailAddress=jan@example.com
CN=VPN gateway,O=ewak.net,C=NL
CN=Smith\, John,O=ewak.net
/CN=::ffff:10.1.2.3
/C=NL/O=ewak.net/OU=a+OU=b/CN=x
/DC=net/DC=ewak/serialNumber=42/CN=x
EOF

# General names: --san text, and DER GeneralNames from the certificates.
put_text general_names <<'EOF'
dns:www.ewak.net,dns:ewak.net
dns:www.ewak.net,ip:10.1.2.3
dns:*.ewak.net
email:jan@ewak.net
uri:https://ewak.net/crl
ip:2001:db8::1
dns:bücher.ewak.net
uri:javascript:alert(1)
email:a@b@ewak.net
EOF
python3 - <<'PY'
# SEQUENCE OF GeneralName: dNSName, iPAddress, rfc822Name, URI.
names = [b'\x82\x0cwww.ewak.net', b'\x87\x04\xc0\x00\x02\x01',
         b'\x81\x0cpki@ewak.net', b'\x86\x11https://ewak.net/']
body = b''.join(names)
open('san.der', 'wb').write(bytes([0x30, len(body)]) + body)
PY
put general_names san.der

# PKCS#11 URIs from the man pages, the README and the golden tests.
grep -rhoE "pkcs11:[^ '\"\\\\]*" "$root/man" "$root/README.md" "$root"/tests/*/*/args \
    "$root"/tests/*/*/pipeline 2>/dev/null | sort -u | head -40 | put_text uri

# Times: RFC 3339 text, index.txt text, and DER UTCTime/GeneralizedTime.
put_text time <<'EOF'
2026-01-01T00:00:00Z
2049-12-31T23:59:59Z
2050-01-01T00:00:00Z
9999-12-31T23:59:59Z
1970-01-01T00:00:00Z
2026-02-29T00:00:00Z
270101000000Z
20500101000000Z
EOF
printf '\x17\x0d270101000000Z' >utc.der
put time utc.der
printf '\x18\x0f20500101000000Z' >gen.der
put time gen.der
