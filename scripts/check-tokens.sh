#!/usr/bin/env bash
# make check-tokens: the seed article's flow with cardca on every PKCS#11
# module we support, each a real module with its own tools:
#
#   softhsm2      SoftHSM2 (the module every other test uses)
#   kryoptic      kryoptic from crates.io, built here with its own static
#                 OpenSSL 3.5 (tests/kryoptic), cached in target/kryoptic
#   nss           NSS softokn (libsoftokn3.so) loaded directly, with its
#                 C_Initialize init string ($CARDCA_MODULE_ARGS)
#   p11-kit       a SoftHSM2 token behind `p11-kit server`, used through
#                 p11-kit-client.so (PKCS#11 remoting)
#   tpm2          tpm2-pkcs11 on swtpm, through tpm2-abrmd, the token made
#                 by card-init (C_InitToken)
#   tpm2-ptool    the same, the token made by tpm2_ptool addtoken
#   opencryptoki  openCryptoki's soft token (pkcsslotd; system-wide, root)
#   opensc        OpenSC 0.23's opensc-pkcs11.so on a PKCS#15 smart card:
#                 our IsoApplet card (tests/vcard) behind pcscd and
#                 vsmartcard-vpcd, in a namespace of its own (root); the
#                 card personalised and its keys made by OpenSC's own tools
#                 (pkcs15-init), as the seed article does. VCARD_ORACLE=1
#                 puts the real IsoApplet on jCardSim in its place
#                 (tests/vcard/run --oracle; a development aid)
#
# Per token: init (card-init, or the module's own tool where cardca cannot
# make the token), keygen of every key type, a root, a sub CA, a server
# certificate, a PSS-signed root, the CA certificates on the token, CRLs,
# `openssl verify -x509_strict -crl_check_all`, pre-signed OCSP responses,
# and the user PIN changed, refused when wrong (with the tries the token
# then reports) and changed back. What a token offers is
# read from its mechanism list (card-ls --mechanisms) and must equal what
# this script expects of it (OFFERS below, the table in README.md); a step
# the token cannot do must be refused by cardca with the message naming
# the missing mechanism, and that refusal is asserted, never skipped.
# Prints a step x token table: ✔, or the refusal, or ✘ (then the step's log
# follows and the exit status is 1). Then card-sign --jobs 2 on kryoptic
# KRYOPTIC_RUNS times (default 1000): every run must succeed, no crash.
#
# Daemons (swtpm, D-Bus and tpm2-abrmd, p11-kit server, pkcsslotd when not
# already running) run on free ports or sockets under a temporary directory
# and are stopped on exit. Each token runs in its own process under a time
# limit (TOKEN_TIMEOUT seconds, default 300).
#
#   CHECK_TOKENS="kryoptic nss"  only these tokens
#   KRYOPTIC_RUNS=N              card-sign --jobs 2 runs on kryoptic (0: none)
#   CARDCA_BIN=DIR               the tools (default target/debug, which
#                                `make test` built)
#   KEEP=1                       keep the work directory
set -uo pipefail
export LC_ALL=C.UTF-8
# pkcsslotd and tpm2-abrmd live in sbin.
export PATH=$PATH:/usr/sbin:/sbin

top=$(cd "$(dirname "$0")/.." && pwd)
ALL_TOKENS="softhsm2 kryoptic nss p11-kit tpm2 tpm2-ptool opencryptoki opensc"
# Every key type card-keygen makes. A size outside the range the token's
# C_GetMechanismInfo gives (the TPM: RSA up to 3072 bits) is refused by
# card-keygen before the login, with the range named.
ROWS=(init "keygen rsa:2048" "keygen rsa:3072" "keygen rsa:4096" "keygen ec:p256" "keygen ec:p384"
    "keygen ec:p521" "keygen ed25519" root "sub CA" leaf --pss "cert on token" CRL verify OCSP PIN)

# Module defects cardca refuses (the step passes only with that refusal, or
# when the module happens to get it right): tpm2-pkcs11 1.9 lists P-521
# key generation, but the CKA_EC_POINT it returns for a P-521 key is often
# one byte short (seen in most runs), which card-keygen refuses, destroying
# the pair.
declare -A DEFECTS=([tpm2]="ec:p521" [tpm2-ptool]="ec:p521")

# What each token offers, as its mechanism list must show it (README.md and
# cardca(7) have the same table). pss: RSASSA-PSS signatures.
declare -A OFFERS=(
    [softhsm2]="rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ec:p521 ed25519 pss"
    [kryoptic]="rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ec:p521 ed25519 pss"
    [nss]="rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ec:p521 pss"
    [p11-kit]="rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384 ec:p521 pss"
    [tpm2]="rsa:2048 rsa:3072 ec:p256 ec:p384 ec:p521"
    [tpm2-ptool]="rsa:2048 rsa:3072 ec:p256 ec:p384 ec:p521 pss"
    [opencryptoki]="rsa:2048 rsa:3072 rsa:4096 pss"
    [opensc]="rsa:2048"
)

SO_PIN=12345678
USER_PIN=1234
# A PKCS#15 card's PUK (IsoApplet takes 16 bytes).
PUK=0123456789abcdef

say() { printf 'check-tokens: %s\n' "$*" >&2; }

# free_port N: a TCP port on 127.0.0.1 such that it and the N-1 after it
# are free (swtpm wants two).
free_port() {
    python3 - "${1:-1}" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 60000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
else:
    sys.exit("no free port")
PY
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds, or fail.
wait_for() {
    local what=$1 secs=$2 i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    say "$what did not come up in ${secs}s"
    return 1
}

# ---------------------------------------------------------------- kryoptic
# The module, built once into target/kryoptic: OpenSSL 3.5's libcrypto.a
# from the openssl-src crate's sources (Configure with the options of
# kryoptic's ossl-sys, plus no-legacy, as the crate leaves out what the
# legacy provider needs), then the cdylib of tests/kryoptic against it.
KRYOPTIC_SO=$top/target/kryoptic/release/libcardca_kryoptic.so
build_kryoptic() {
    local manifest=$top/tests/kryoptic/Cargo.toml dir=$top/target/kryoptic src
    if [ -e "$KRYOPTIC_SO" ] && [ "$KRYOPTIC_SO" -nt "$manifest" ] && [ "$KRYOPTIC_SO" -nt "$top/tests/kryoptic/Cargo.lock" ] \
        && [ "$KRYOPTIC_SO" -nt "$top/tests/kryoptic/lib.rs" ]; then
        return 0
    fi
    say "building kryoptic into target/kryoptic (once; a few minutes)"
    mkdir -p "$dir"
    src=$(cargo metadata --manifest-path "$manifest" --locked --format-version 1 \
        | python3 -c 'import json, sys, os
print([os.path.dirname(p["manifest_path"]) for p in json.load(sys.stdin)["packages"] if p["name"] == "openssl-src"][0])') \
        || return 1
    # The OpenSSL build is kept while Cargo.lock names the same sources.
    if [ ! -e "$dir/openssl/libcrypto.a" ] || [ "$(cat "$dir/openssl.src" 2>/dev/null)" != "$src" ]; then
        rm -rf "$dir/openssl" "$dir/openssl.src"
        cp -a "$src/openssl" "$dir/openssl"
        (cd "$dir/openssl" \
            && ./Configure no-deprecated no-aria no-argon2 no-atexit no-des no-dsa no-cast no-mdc2 no-ec2m \
                no-rc2 no-rc4 no-rc5 no-rmd160 no-seed no-sm2 no-sm3 no-sm4 no-docs no-tests no-legacy \
                enable-ec_nistp_64_gcc_128 '-DDEVRANDOM=\"/dev/urandom\"' \
            && make -j"$(nproc)" build_generated && make -j"$(nproc)" libcrypto.a) > "$dir/openssl-build.log" 2>&1 \
            || { tail -30 "$dir/openssl-build.log" >&2; say "OpenSSL for kryoptic did not build"; return 1; }
        echo "$src" > "$dir/openssl.src"
    fi
    KRYOPTIC_OPENSSL_SOURCES=$dir/openssl cargo build --release --locked --quiet \
        --manifest-path "$manifest" --target-dir "$dir" || return 1
    touch "$KRYOPTIC_SO"
}

# ------------------------------------------------------------ token setups
# setup_TOKEN: exports CARDCA_MODULE (and what the module reads), starts
# what the token needs, and sets INIT_WITH (the tool the init step uses),
# TOKEN_LABEL and, where card-init is used, INIT_ARGS.
# Runs in the token's own process, in its directory ($PWD).

LIB=/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)

setup_softhsm2() {
    mkdir -p tokens
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$PWD" > softhsm2.conf
    export SOFTHSM2_CONF=$PWD/softhsm2.conf
    export CARDCA_MODULE=/usr/lib/softhsm/libsofthsm2.so
    [ -e "$CARDCA_MODULE" ] || CARDCA_MODULE=$LIB/softhsm/libsofthsm2.so
    INIT_WITH=card-init INIT_ARGS=(--slot free)
}

setup_kryoptic() {
    printf '[[slots]]\nslot = 1\ndbtype = "sqlite"\ndbargs = "%s/kryoptic.sql"\n' "$PWD" > kryoptic.conf
    export KRYOPTIC_CONF=$PWD/kryoptic.conf
    export CARDCA_MODULE=$KRYOPTIC_SO
    INIT_WITH=card-init INIT_ARGS=(--slot free)
}

# NSS: the database is made by certutil, with the user PIN as its
# password; softokn's token is "NSS Certificate DB" and has no SO.
setup_nss() {
    mkdir -p nssdb
    export CARDCA_MODULE=$LIB/libsoftokn3.so
    export CARDCA_MODULE_ARGS="configdir='sql:$PWD/nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
    INIT_WITH="certutil -N" TOKEN_LABEL="NSS Certificate DB"
}
init_nss() {
    certutil -N -d "sql:$PWD/nssdb" -f user.pin
}

# p11-kit remoting: SoftHSM2 behind `p11-kit server` on a socket here.
setup_p11-kit() {
    mkdir -p tokens
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$PWD" > softhsm2.conf
    SOFTHSM2_CONF=$PWD/softhsm2.conf p11-kit server -f -n "$PWD/p11-kit.sock" \
        --provider /usr/lib/softhsm/libsofthsm2.so "pkcs11:" > p11-kit-server.log 2>&1 &
    echo $! >> pids
    wait_for "p11-kit server" 10 test -S "$PWD/p11-kit.sock" || return 1
    export P11_KIT_SERVER_ADDRESS=unix:path=$PWD/p11-kit.sock
    export CARDCA_MODULE=$LIB/pkcs11/p11-kit-client.so
    INIT_WITH=card-init INIT_ARGS=(--slot free)
}

# TPM 2.0: swtpm on two free ports, tpm2-abrmd on a private D-Bus session
# bus in front of it (without a resource manager, a key pair the TPM
# refuses leaves its objects loaded, and the retry finds the TPM full),
# tpm2-pkcs11's store here, made by tpm2_ptool init (a store with one empty
# slot for C_InitToken).
setup_tpm2() {
    local port
    port=$(free_port 2) || return 1
    mkdir -p tpm-state tpm-store
    swtpm socket --tpm2 --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
        --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" --flags not-need-init,startup-clear \
        --tpmstate "dir=$PWD/tpm-state" > swtpm.log 2>&1 &
    echo $! >> pids
    dbus-daemon --session --nofork --nopidfile --address="unix:path=$PWD/dbus.sock" > dbus.log 2>&1 &
    echo $! >> pids
    export DBUS_SESSION_BUS_ADDRESS=unix:path=$PWD/dbus.sock
    wait_for "D-Bus" 10 test -S "$PWD/dbus.sock" || return 1
    wait_for swtpm 10 env TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port" tpm2_getrandom 8 || return 1
    tpm2-abrmd --session --allow-root --tcti="swtpm:host=127.0.0.1,port=$port" > abrmd.log 2>&1 &
    echo $! >> pids
    export TPM2TOOLS_TCTI=tabrmd:bus_type=session
    export TPM2_PKCS11_TCTI=$TPM2TOOLS_TCTI TPM2_PKCS11_STORE=$PWD/tpm-store
    wait_for tpm2-abrmd 10 tpm2_getrandom 8 || return 1
    tpm2_ptool init --path "$PWD/tpm-store" > tpm2_ptool.log 2>&1 || { cat tpm2_ptool.log >&2; return 1; }
    export CARDCA_MODULE=$LIB/pkcs11/libtpm2_pkcs11.so
    INIT_WITH=card-init INIT_ARGS=(--slot free)
}

# The same TPM, the token made by tpm2-pkcs11's own tool (tpm2_ptool
# addtoken), which lists RSASSA-PSS where C_InitToken's token does not.
setup_tpm2-ptool() {
    setup_tpm2 || return 1
    INIT_WITH="tpm2_ptool addtoken"
}
init_tpm2-ptool() {
    tpm2_ptool addtoken --pid=1 --label="$TOKEN_LABEL" --sopin="$SO_PIN" --userpin="$USER_PIN" \
        --path="$PWD/tpm-store"
}

# openCryptoki: one system-wide soft token in slot 3 under
# /var/lib/opencryptoki/swtok, served by pkcsslotd (started here when not
# running, as root). Its SO PIN stays the factory one (C_InitToken checks
# it and does not change it), so every run can re-initialise the token
# ($CARDCA_OCK_SO_PIN where someone changed it). Runs on one machine are
# serialised by a lock. The token keeps this run's keys until the next run.
OCK_SO_PIN=${CARDCA_OCK_SO_PIN:-87654321}
setup_opencryptoki() {
    [ "$(id -u)" = 0 ] || { say "openCryptoki needs root (pkcsslotd, /var/lib/opencryptoki)"; return 1; }
    mkdir -p /run/lock
    exec 8> /run/lock/cardca-opencryptoki.lock
    flock -w 120 8 || { say "openCryptoki is in use by another run"; return 1; }
    systemd-tmpfiles --create /usr/lib/tmpfiles.d/opencryptoki.conf >/dev/null 2>&1 || true
    # A daemon that exited stays a zombie where nothing reaps it, and leaves
    # its pid file behind.
    # shellcheck disable=SC2009 # pgrep counts zombies
    if ! ps -C pkcsslotd -o stat= | grep -qv '^Z'; then
        rm -f /run/pkcsslotd.pid
        pkcsslotd 8>&- || return 1
        wait_for pkcsslotd 10 test -s /run/pkcsslotd.pid || return 1
        # shellcheck disable=SC2005 # the file has no newline
        echo "$(cat /run/pkcsslotd.pid)" >> pids
    fi
    export CARDCA_MODULE=$LIB/pkcs11/libopencryptoki.so
    printf '%s\n' "$OCK_SO_PIN" > so.pin
    STAGED=1
    INIT_WITH=card-init INIT_ARGS=(--slot 3 --erase)
}

# OpenSC on a PKCS#15 card: pcscd, vpcd and the card are started by
# tests/vcard/run, which runs this token's process in their namespace and
# exports VCARD_MODULE and OPENSC_CONF. PKCS#11 names the token
# "<label> (User PIN)". The card is personalised by OpenSC's tools, as
# card-init refuses to (and that refusal is asserted).
setup_opensc() {
    [ -n "${VCARD_MODULE:-}" ] || { say "opensc runs under tests/vcard/run"; return 1; }
    export CARDCA_MODULE=$VCARD_MODULE
    INIT_WITH="pkcs15-init" TOKEN_LABEL="cardca opensc (User PIN)"
}
init_opensc() {
    if card-init --slot free --label "cardca opensc" --so-pin-source file:so.pin "${PIN[@]}" 2> card-init.err; then
        echo "card-init on OpenSC 0.23: expected a refusal" >&2
        return 1
    fi
    cat card-init.err >&2
    grep -q 'cannot initialise a PKCS#15 card' card-init.err
    grep -q 'pkcs15-init --create-pkcs15' card-init.err
    # OpenSC's IsoApplet profile cannot erase a card (erase_card is NULL):
    # the seed article's --erase-card is refused, and each run has a blank
    # card anyway.
    if pkcs15-init --erase-card 2> erase.err; then
        echo "pkcs15-init --erase-card on IsoApplet: OpenSC 0.23 cannot, yet it succeeded" >&2
        return 1
    fi
    grep 'Not supported' erase.err
    pkcs15-init --create-pkcs15 --label "cardca opensc" --so-pin "$USER_PIN" --so-puk "$PUK"
    pkcs11-tool --module "$CARDCA_MODULE" -L | tee pkcs11-tool.txt
    grep -q "token label *: $TOKEN_LABEL" pkcs11-tool.txt
}

# ------------------------------------------------------------------ steps
# Each step runs with set -e in a subshell, its output in log/STEP; what it
# prints to fd 3 is the table cell (✔ when nothing). Steps that a token
# cannot do call `refused` instead.

PIN=(--pin-source file:user.pin)

# flow IN OUT COMMAND... [| COMMAND...]...: the commands as a pipeline from
# IN (- for none) to OUT. On a token where a process must not start while
# another works on the token (STAGED=1: openCryptoki 3.8, where a process
# starting during another's login intermittently sees no slot at all),
# they run one after the other, through files.
flow() {
    local in=$1 out=$2 a stage=() stages=() i
    shift 2
    [ "$in" = - ] && in=/dev/null
    for a in "$@" '|'; do
        if [ "$a" = '|' ]; then
            stages+=("$(printf '%q ' "${stage[@]}")")
            stage=()
        else
            stage+=("$a")
        fi
    done
    if [ "${STAGED:-}" = 1 ]; then
        cp "$in" flow.0
        for ((i = 0; i < ${#stages[@]}; i++)); do
            eval "${stages[i]}" < "flow.$i" > "flow.$((i + 1))"
        done
        mv "flow.$i" "$out"
    else
        eval "$(IFS='|'; echo "${stages[*]}")" < "$in" > "$out"
    fi
}

key() { printf '%s;object=%s' "$TOKEN" "$(printf '%s' "$1" | sed 's/ /%20/g; s/:/%3a/g')"; }

# refused WHAT MECHANISMS... -- COMMAND...: COMMAND must fail with cardca's
# "this token has no/neither ...: it cannot make ..." naming one of
# MECHANISMS, or (a key size) "this token makes RSA keys of N to M bits
# ...: it cannot make"; the cell is that reason.
refused() {
    local mechs=() re out
    while [ "$1" != -- ]; do mechs+=("$1"); shift; done
    shift
    re="this token (has (no|neither) [^:]*($(IFS='|'; echo "${mechs[*]}"))[^:]*|makes [A-Z0-9]+ keys of [0-9]+ to [0-9]+ bits [^:]*): it cannot make"
    if "$@" > refused.out 2> refused.err; then
        echo "expected a refusal naming ${mechs[*]} or a key size range, but it succeeded" >&2
        return 1
    fi
    cat refused.err >&2
    grep -Eq "$re" refused.err || { echo "expected a refusal matching: $re" >&2; return 1; }
    [ ! -s refused.out ] || { echo "the refusal wrote to stdout" >&2; return 1; }
    out=$(grep -Eo "has (no CKM_[A-Z0-9_]+|neither CKM_[A-Z0-9_]+ nor CKM_[A-Z0-9_]+)" refused.err | sed -n 1p || true)
    if [ -z "$out" ]; then
        out=$(grep -Eo "makes [A-Z0-9]+ keys of [0-9]+ to [0-9]+ bits" refused.err | sed -n 1p)
        echo "refused: ${out#makes }" >&3
        return
    fi
    out=${out#has }
    out=${out/#neither /no }
    echo "refused: ${out/ nor / or }" >&3
}

# The mechanisms a key type needs (pair generation, then signing).
needs() {
    case $1 in
        rsa:*) echo "CKM_RSA_PKCS_KEY_PAIR_GEN CKM_RSA_PKCS CKM_SHA256_RSA_PKCS" ;;
        ec:*) echo "CKM_EC_KEY_PAIR_GEN CKM_ECDSA CKM_ECDSA_SHA256" ;;
        ed25519) echo "CKM_EC_EDWARDS_KEY_PAIR_GEN CKM_EDDSA" ;;
        pss) echo "CKM_RSA_PKCS_PSS CKM_SHA256_RSA_PKCS_PSS" ;;
    esac
}

# What the mechanism list offers, as OFFERS spells it.
read_offers() {
    card-ls --token "$TOKEN" --mechanisms > mechanisms.txt
    awk '
        { split($2, r, "-"); max[$1] = r[2]; has[$1] = 1 }
        END {
            rsa = has["CKM_RSA_PKCS_KEY_PAIR_GEN"] && (has["CKM_RSA_PKCS"] || has["CKM_SHA256_RSA_PKCS"])
            ec = has["CKM_EC_KEY_PAIR_GEN"] && (has["CKM_ECDSA"] || has["CKM_ECDSA_SHA256"])
            if (rsa) printf "rsa:2048 "
            if (rsa && max["CKM_RSA_PKCS_KEY_PAIR_GEN"] + 0 >= 3072) printf "rsa:3072 "
            if (rsa && max["CKM_RSA_PKCS_KEY_PAIR_GEN"] + 0 >= 4096) printf "rsa:4096 "
            if (ec) printf "ec:p256 "
            if (ec && max["CKM_EC_KEY_PAIR_GEN"] + 0 >= 384) printf "ec:p384 "
            if (ec && max["CKM_EC_KEY_PAIR_GEN"] + 0 >= 521) printf "ec:p521 "
            if (has["CKM_EC_EDWARDS_KEY_PAIR_GEN"] && has["CKM_EDDSA"]) printf "ed25519 "
            if (has["CKM_RSA_PKCS_PSS"] || has["CKM_SHA256_RSA_PKCS_PSS"]) printf "pss "
        }' mechanisms.txt | sed 's/ $//'
}
offers() { [[ " $OFFERED " == *" $1 "* ]]; }

step_init() {
    write_pins
    if [ "$INIT_WITH" = card-init ]; then
        card-init "${INIT_ARGS[@]}" --label "$TOKEN_LABEL" --so-pin-source file:so.pin "${PIN[@]}"
    else
        "init_$NAME"
    fi
    card-ls --token "$TOKEN" | tee token.txt
    grep -q 'token initialized' token.txt
    grep -q 'PIN initialized' token.txt
    OFFERED=$(read_offers)
    echo "$OFFERED" > offered
    [ "$OFFERED" = "${OFFERS[$NAME]}" ] \
        || { echo "the token offers \"$OFFERED\", this script expects \"${OFFERS[$NAME]}\"" >&2; return 1; }
    echo "✔ $INIT_WITH" >&3
}

# keygen TYPE: the key pair on the token, its public key, and a CSR it
# signed (so the token signs with it) that OpenSSL verifies.
step_keygen() {
    local t=$1
    if [ "$NAME" = opensc ] && offers "$t"; then
        keygen_opensc "$t"
        return
    fi
    if [ "$NAME" = opensc ] && [ "$t" = ec:p256 ]; then
        ec_opensc
        return
    fi
    if ! offers "$t"; then
        # shellcheck disable=SC2046
        refused $(needs "$t") -- card-keygen --token "$TOKEN" --type "$t" --label "k-$t" "${PIN[@]}"
        return
    fi
    local notes=()
    if ! card-keygen --token "$TOKEN" --type "$t" --label "k-$t" "${PIN[@]}" > "k-$t.pub.pem" 2> keygen.err; then
        cat keygen.err >&2
        # A module defect cardca must refuse, not paper over: tpm2-pkcs11
        # lists P-521 but its CKA_EC_POINT is malformed for some keys
        # (DEFECTS below). The refused pair must be gone from the token.
        if [[ " ${DEFECTS[$NAME]:-} " == *" $t "* ]] && grep -q "is not a $t point" keygen.err \
            && [ ! -s "k-$t.pub.pem" ]; then
            if card-ls --token "$(key "k-$t")" --objects --login "${PIN[@]}" 2> /dev/null | grep -q "k-$t"; then
                echo "the refused key pair is still on the token" >&2
                return 1
            fi
            echo "refused: the module's point is malformed" >&3
            return 0
        fi
        return 1
    fi
    cat keygen.err >&2
    # The warnings a token earns (issue 11's degraded templates, CKA_LOCAL).
    grep -q 'minimal one' keygen.err && notes+=("minimal template")
    grep -q 'CKA_LOCAL' keygen.err && notes+=("CKA_LOCAL false")
    openssl pkey -pubin -in "k-$t.pub.pem" -noout -text
    csr-make --key "$(key "k-$t")" --subject "/CN=$t on $NAME" "${PIN[@]}" > "k-$t.csr"
    openssl req -in "k-$t.csr" -noout -verify
    card-ls --token "$(key "k-$t");type=private" --objects --login "${PIN[@]}" | tee "k-$t.objects"
    grep -q 'never extractable' "k-$t.objects"
    [ ${#notes[@]} = 0 ] || (IFS=,; echo "✔ warned: ${notes[*]}" >&3)
}

# OpenSC before 0.24: card-keygen refuses (the pair would read back
# extractable), so the keys are made by pkcs15-init, which marks them
# sensitive and never extractable: this one and the root's. engine_pkcs11
# signs with it too.
keygen_opensc() {
    local t=$1 k label
    if card-keygen --token "$TOKEN" --type "$t" --label "k-$t" "${PIN[@]}" > refused.out 2> refused.err; then
        echo "card-keygen on OpenSC 0.23: expected a refusal" >&2
        return 1
    fi
    cat refused.err >&2
    grep -q 'OpenSC 0.23 ignores CKA_SENSITIVE' refused.err
    grep -q 'pkcs15-init --generate-key' refused.err
    [ ! -s refused.out ]
    for label in "k-$t" "k-$t-root"; do
        pkcs15-init --generate-key "${t/:/\/}" --auth-id ff --label "$label" --pin "$USER_PIN"
        k=$(key "$label")
        csr-make --key "$k" --subject "/CN=$label on $NAME" "${PIN[@]}" > "$label.csr"
        openssl req -in "$label.csr" -noout -verify
        card-ls --token "$k;type=private" --objects --login "${PIN[@]}" | tee "$label.objects"
        grep -q 'never extractable' "$label.objects"
    done
    openssl req -in "k-$t.csr" -pubkey -noout > "k-$t.pub.pem"
    echo "signed by engine_pkcs11" > engine.txt
    PKCS11_MODULE_PATH=$CARDCA_MODULE openssl dgst -sha256 -engine pkcs11 -keyform engine \
        -sign "$(key "k-$t");type=private;pin-value=$USER_PIN" -out engine.sig engine.txt
    openssl dgst -sha256 -verify "k-$t.pub.pem" -signature engine.sig engine.txt
    echo "✔ pkcs15-init; card-keygen refused" >&3
}

# An EC key the card makes is of no use to cardca: the card signs ECDSA
# only with SHA-1, hashed on the card. card-keygen refuses to make one, and
# csr-make refuses pkcs15-init's, each naming the mechanism, before the
# login (the PIN source does not exist).
ec_opensc() {
    # shellcheck disable=SC2046
    refused $(needs ec:p256) -- card-keygen --token "$TOKEN" --type ec:p256 --label k-ec:p256 "${PIN[@]}"
    pkcs15-init --generate-key ec/prime256v1 --auth-id ff --label k-ec-card --pin "$USER_PIN"
    if csr-make --key "$(key k-ec-card)" --subject /CN=ec --pin-source file:/nonexistent > ec.csr 2> ec.err; then
        echo "csr-make with an ECDSA-SHA1-only key: expected a refusal" >&2
        return 1
    fi
    cat ec.err >&2
    grep -Eq 'has (no|neither) [^:]*CKM_ECDSA[^:]*: it cannot' ec.err
    [ ! -s ec.csr ]
}

# The CA keys: the strongest EC key the token makes, else RSA (on a token
# of RSA-2048 only, two of them).
ca_keys() {
    if offers ec:p384; then ROOT_KEY=k-ec:p384 SUB_KEY=k-ec:p256
    elif offers rsa:3072; then ROOT_KEY=k-rsa:3072 SUB_KEY=k-rsa:2048
    else ROOT_KEY=k-rsa:2048-root SUB_KEY=k-rsa:2048; fi
}

step_root() {
    ca_keys
    flow - root.pem csr-make --key "$(key $ROOT_KEY)" --subject "/O=cardca/CN=Root CA on $NAME" "${PIN[@]}" \
        '|' tbs-build --self-signed --profile root \
        '|' card-sign --key "$(key $ROOT_KEY)" "${PIN[@]}" \
        '|' cert-store --db db/root --token "$TOKEN" "${PIN[@]}"
    openssl verify -x509_strict -CAfile root.pem root.pem
    echo "✔ ${ROOT_KEY#k-}" >&3
}

step_subca() {
    ca_keys
    flow - sub.pem csr-make --key "$(key $SUB_KEY)" --subject "/O=cardca/CN=Sub CA on $NAME" "${PIN[@]}" \
        '|' tbs-build --ca root.pem --profile subca --eku serverAuth --path-len 0 \
        '|' card-sign --ca root.pem "${PIN[@]}" \
        '|' cert-store --db db/root --ca root.pem --token "$TOKEN" "${PIN[@]}"
    openssl verify -x509_strict -CAfile root.pem sub.pem
    echo "✔ ${SUB_KEY#k-}" >&3
}

# Two server certificates (keys made by OpenSSL): www stays valid, old is
# revoked for the CRL step.
step_leaf() {
    local who
    for who in www old; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$who.key" \
            -subj "/CN=$who" -out "$who.csr" 2>/dev/null
        flow "$who.csr" "$who.pem" \
            tbs-build --ca sub.pem --profile server --subject "/CN=$who.example.test" --san "dns:$who.example.test" \
            '|' card-sign --ca sub.pem --db db/sub "${PIN[@]}" '|' cert-store --db db/sub --ca sub.pem
        openssl verify -x509_strict -purpose sslserver -CAfile root.pem -untrusted sub.pem "$who.pem"
    done
    if [ "$NAME" = opencryptoki ]; then
        # It crashes under --jobs 2 (see the README): card-sign refuses it,
        # before signing anything.
        tbs-build --ca sub.pem --profile server --subject /CN=jobs.example.test --san dns:jobs.example.test \
            < www.csr > jobs.tbs
        if card-sign --ca sub.pem --jobs 2 "${PIN[@]}" < jobs.tbs > jobs.pem 2> jobs.err; then
            echo "card-sign --jobs 2 on openCryptoki: expected a refusal" >&2
            return 1
        fi
        cat jobs.err >&2
        grep -q 'openCryptoki 3.8 crashes when one process signs from several threads' jobs.err
        [ ! -s jobs.pem ]
        echo "✔ --jobs 2 refused" >&3
    fi
}

# A root signed with RSASSA-PSS (its CSR too) by the RSA-2048 key.
step_pss() {
    local k
    k=$(key k-rsa:2048)
    if ! offers pss; then
        # shellcheck disable=SC2046
        refused $(needs pss) -- csr-make --key "$k" --subject "/CN=PSS root on $NAME" --pss "${PIN[@]}"
        return
    fi
    csr-make --key "$k" --subject "/CN=PSS root on $NAME" --pss "${PIN[@]}" > pss.csr
    openssl req -in pss.csr -noout -verify
    flow pss.csr pss-root.pem tbs-build --self-signed --profile root --pss '|' card-sign --key "$k" "${PIN[@]}"
    openssl x509 -in pss-root.pem -noout -text > pss-root.txt
    grep 'Signature Algorithm: rsassaPss' pss-root.txt
    openssl verify -x509_strict -CAfile pss-root.pem pss-root.pem
}

# The root and sub CA certificates on the token (cert-store --token in the
# root and sub CA steps), read back byte for byte, next to their keys.
step_cert_on_token() {
    card-ls --token "$TOKEN" --objects > objects.txt
    cat objects.txt
    card-ls --token "$TOKEN;type=cert" --pem > certs-on-token.pem
    openssl x509 -in root.pem -outform DER | sha256sum > want.sum
    openssl x509 -in sub.pem -outform DER | sha256sum >> want.sum
    csplit -s -z -f tokcert. certs-on-token.pem '/BEGIN CERTIFICATE/' '{*}'
    for f in tokcert.*; do openssl x509 -in "$f" -outform DER | sha256sum; done > got.sum
    [ "$(sort want.sum)" = "$(sort got.sum)" ] || { echo "the token's certificates are not root.pem and sub.pem" >&2; return 1; }
    if [ "$NAME" = opensc ]; then
        ca_keys
        # OpenSC's own PKCS#15 view reads what cardca stored, and the keys
        # kept their labels (cert-store sets back the one OpenSC changes).
        pkcs15-tool --list-certificates | tee pkcs15-certs.txt
        grep -q "Root CA on $NAME" pkcs15-certs.txt
        grep -q "Sub CA on $NAME" pkcs15-certs.txt
        card-ls --token "$(key "$ROOT_KEY");type=private" --objects --login "${PIN[@]}" | grep "$ROOT_KEY"
        # The seed article's own store, which renames the key: its old
        # object= still finds it (through its public key), with a warning.
        pkcs15-init --generate-key rsa/2048 --auth-id ff --label k-renamed --pin "$USER_PIN"
        flow - renamed.pem csr-make --key "$(key k-renamed)" --subject "/CN=renamed on $NAME" "${PIN[@]}" \
            '|' tbs-build --ca root.pem --profile client --subject "/CN=renamed on $NAME" \
            '|' card-sign --ca root.pem "${PIN[@]}"
        pkcs15-init --store-certificate renamed.pem --pin "$USER_PIN" \
            --id "$(card-ls --token "$(key k-renamed);type=public" --objects | sed -n 's/.*" id \([0-9a-f]*\)$/\1/p')" \
            --label "Renamed by pkcs15-init"
        csr-make --key "$(key k-renamed)" --subject /CN=again "${PIN[@]}" > renamed.csr 2> renamed.err
        cat renamed.err
        grep -q 'no private key is labelled "k-renamed" any more' renamed.err
        openssl req -in renamed.csr -noout -verify
        pkcs15-tool --list-certificates | grep -q 'Renamed by pkcs15-init'
    fi
    echo "✔ $(grep -c . got.sum) certs" >&3
}

step_crl() {
    cert-store --db db/sub --revoke - --reason superseded < old.pem
    flow - root.crl tbs-build --crl --ca root.pem --db db/root --days 7 '|' card-sign --ca root.pem "${PIN[@]}"
    flow - sub.crl tbs-build --crl --ca sub.pem --db db/sub --days 7 '|' card-sign --ca sub.pem "${PIN[@]}"
    openssl crl -in root.crl -CAfile root.pem -noout -verify
    openssl crl -in sub.crl -CAfile sub.pem -noout -verify
    openssl crl -in sub.crl -noout -text > sub.crl.txt
    grep "Serial Number: $(openssl x509 -in old.pem -noout -serial | cut -d= -f2)" sub.crl.txt
}

step_verify() {
    local v=(openssl verify -x509_strict -crl_check_all -CRLfile root.crl -CRLfile sub.crl -CAfile root.pem)
    "${v[@]}" root.pem
    "${v[@]}" -untrusted root.pem sub.pem
    "${v[@]}" -purpose sslserver -untrusted sub.pem www.pem
    if "${v[@]}" -purpose sslserver -untrusted sub.pem old.pem > old.verify 2>&1; then
        echo "the revoked certificate verified" >&2
        return 1
    fi
    cat old.verify
    grep -q 'certificate revoked' old.verify
}

# Pre-signed OCSP responses for the sub CA's certificates, filed by
# serial: www good, old revoked (the CRL step revoked it).
step_ocsp() {
    flow - ocsp.out tbs-build --ocsp --ca sub.pem --db db/sub --days 4 \
        '|' card-sign --ca sub.pem --db db/sub "${PIN[@]}" '|' cert-store --ocsp-dir ocsp --ca sub.pem
    local who status
    for who in www:good old:revoked; do
        status=${who#*:} who=${who%:*}
        openssl ocsp -respin "ocsp/$(openssl x509 -in "$who.pem" -noout -serial | cut -d= -f2).der" \
            -issuer sub.pem -CAfile root.pem -resp_text > "ocsp-$who.txt" 2>&1
        grep 'Response verify OK' "ocsp-$who.txt"
        grep "Cert Status: $status" "ocsp-$who.txt"
    done
}

# The user PIN changed (C_SetPIN); the old one then refused, not retried,
# with what the token says of the tries left; changed back.
step_pin() {
    local tries
    umask 077
    printf '%s\n' "${USER_PIN}56" > new.pin
    card-init --token "$TOKEN" --change-pin "${PIN[@]}" --new-pin-source file:new.pin
    wrong_pin 1
    tries=$(grep -Eo 'CKF_USER_PIN_[A-Z_]+' wrong-1.err | sed -n 1p || true)
    if [ "$NAME" = opensc ]; then
        # OpenSC 0.23 learns the card's count only from a failed VERIFY, in
        # the process that sent it (a new process sends no empty VERIFY
        # and reports no flag), and names it only as the final try: after
        # a second wrong PIN. The right PIN resets the count.
        wrong_pin 2
        grep -q 'one try is left: the next wrong user PIN locks it (CKF_USER_PIN_FINAL_TRY)' wrong-2.err
        card-ls --token "$TOKEN" --objects --login --pin-source file:new.pin > /dev/null
        tries="final try named after 2 wrong"
        # No SO to unblock it with: card-init names the PUK's tool.
        if card-init --token "$TOKEN" --unblock --so-pin-source file:so.pin --new-pin-source file:user.pin \
            2> unblock.err; then
            echo "card-init --unblock on OpenSC 0.23: expected a refusal" >&2
            return 1
        fi
        cat unblock.err >&2
        grep -q 'pkcs15-tool --unblock-pin' unblock.err
    fi
    card-init --token "$TOKEN" --change-pin --pin-source file:new.pin --new-pin-source file:user.pin
    card-ls --token "$TOKEN" --objects --login "${PIN[@]}" > /dev/null
    echo "✔ wrong PIN: ${tries:-no count}" >&3
}

# wrong_pin N: the old PIN (user.pin) refused, not retried; the message in
# wrong-N.err.
wrong_pin() {
    if card-ls --token "$TOKEN" --objects --login "${PIN[@]}" > /dev/null 2> "wrong-$1.err"; then
        echo "the old PIN still logs in" >&2
        return 1
    fi
    cat "wrong-$1.err" >&2
    grep -q 'wrong user PIN .*not retried' "wrong-$1.err"
}

write_pins() {
    umask 077
    printf '%s\n' "$USER_PIN" > user.pin
    [ -s so.pin ] || printf '%s\n' "$SO_PIN" > so.pin
}

# ------------------------------------------------------------- one token
# run_token NAME: the whole flow on one token, in this process; results in
# $WORK/res/NAME/<row>.
run_token() {
    NAME=$1 TOKEN_DIR=$WORK/$1
    local dir=$TOKEN_DIR res=$WORK/res/$NAME row i=0 fn note rc log
    mkdir -p "$dir/log" "$res"
    cd "$dir" || exit 1
    : > pids
    # shellcheck disable=SC2317
    stop_daemons() {
        local p
        while read -r p || [ -n "$p" ]; do kill "$p" 2>/dev/null; done < "$TOKEN_DIR/pids"
        # shellcheck disable=SC2046
        wait $(jobs -p) 2>/dev/null
    }
    trap stop_daemons EXIT
    trap 'exit 143' TERM INT
    TOKEN_LABEL="cardca $NAME" INIT_WITH=card-init INIT_ARGS=()
    if ! "setup_$NAME" > log/setup 2>&1; then
        echo "✘ setup failed" > "$res/init"
        echo "$dir/log/setup" > "$res/init.log"
        return 1
    fi
    TOKEN=pkcs11:token=$(printf '%s' "$TOKEN_LABEL" | sed 's/ /%20/g')
    OFFERED=
    for row in "${ROWS[@]}"; do
        case $row in
            init) fn=(step_init) ;;
            keygen\ *) fn=(step_keygen "${row#keygen }") ;;
            root) fn=(step_root) ;;
            "sub CA") fn=(step_subca) ;;
            leaf) fn=(step_leaf) ;;
            --pss) fn=(step_pss) ;;
            "cert on token") fn=(step_cert_on_token) ;;
            CRL) fn=(step_crl) ;;
            verify) fn=(step_verify) ;;
            OCSP) fn=(step_ocsp) ;;
            PIN) fn=(step_pin) ;;
        esac
        i=$((i + 1))
        if [ "$row" != init ] && [ ! -s offered ]; then
            echo "✘ not run: init failed" > "$res/$row"
            continue
        fi
        log=log/$(printf '%02d' $i)-${row// /-}
        note=$( (set -e; "${fn[@]}") 3>&1 >> "$log" 2>&1 ); rc=$?
        [ -s offered ] && OFFERED=$(cat offered)
        if [ $rc = 0 ]; then
            echo "${note:-✔}" > "$res/$row"
        else
            # The cell: ✘ and the start of the step's last message.
            echo "✘ $(grep -av '^[[:space:]]*$' "$log" | tail -1 | cut -c1-48)" > "$res/$row"
            echo "$dir/$log" > "$res/$row.log"
        fi
    done
}

# ------------------------------------------------------------------ main
if [ "${1:-}" = --token ]; then
    # shellcheck disable=SC2034
    WORK=$2
    export PATH=${CARDCA_BIN:-$top/target/debug}:$PATH
    run_token "$3"
    exit $?
fi

tokens=${CHECK_TOKENS:-$ALL_TOKENS}
runs=${KRYOPTIC_RUNS:-1000}
WORK=$(mktemp -d /tmp/cardca-check-tokens.XXXXXX)
cleanup() {
    local f p
    # Daemons of a token process that was killed before its own cleanup.
    for f in "$WORK"/*/pids; do
        [ -e "$f" ] || continue
        while read -r p || [ -n "$p" ]; do kill "$p" 2>/dev/null; done < "$f"
    done
    if [ -n "${KEEP:-}" ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT
export PATH=${CARDCA_BIN:-$top/target/debug}:$PATH
for t in card-ls card-init card-keygen csr-make tbs-build card-sign cert-store; do
    command -v "$t" >/dev/null || { say "no $t in ${CARDCA_BIN:-$top/target/debug}: build first"; exit 1; }
done
if [[ " $tokens " == *" kryoptic "* ]]; then
    build_kryoptic || { say "kryoptic did not build"; exit 1; }
fi

start=$SECONDS
for t in $tokens; do
    [ -n "${OFFERS[$t]+x}" ] || { say "unknown token $t (tokens: $ALL_TOKENS)"; exit 2; }
    t0=$SECONDS
    runner=()
    # shellcheck disable=SC2206 # no word in it has a blank
    [ "$t" = opensc ] && runner=("$top/tests/vcard/run" ${VCARD_ORACLE:+--oracle} --)
    timeout -k 10 "${TOKEN_TIMEOUT:-300}" "${runner[@]}" "$0" --token "$WORK" "$t"
    case $? in
        124 | 137) say "$t: timed out after ${TOKEN_TIMEOUT:-300} s"; echo timed out > "$WORK/res/$t.stopped" ;;
        *) say "$t: $((SECONDS - t0)) s" ;;
    esac
done

# The table, each column as wide as its widest cell (in characters: ✔ and
# ✘ are three bytes).
failed=0
declare -A width cells
for t in $tokens; do
    width[$t]=${#t}
    for row in "${ROWS[@]}"; do
        cell=$(cat "$WORK/res/$t/$row" 2>/dev/null || echo "✘ not run$(sed 's/^/: /' "$WORK/res/$t.stopped" 2>/dev/null)")
        [[ $cell == ✘* ]] && failed=1
        cells[$t,$row]=$cell
        [ ${#cell} -gt "${width[$t]}" ] && width[$t]=${#cell}
    done
done
pad() { printf '%s%*s' "$1" $(($2 - ${#1})) ''; }
line() {
    pad "$1" 15
    shift
    for t in $tokens; do printf ' | '; pad "$1" "${width[$t]}"; shift; done
    echo
}
echo
# shellcheck disable=SC2086
line step $tokens
dashes=()
for t in $tokens; do dashes+=("$(printf '%*s' "${width[$t]}" '' | tr ' ' -)"); done
line --------------- "${dashes[@]}"
for row in "${ROWS[@]}"; do
    row_cells=()
    for t in $tokens; do row_cells+=("${cells[$t,$row]}"); done
    line "$row" "${row_cells[@]}"
done

# card-sign --jobs 2 on kryoptic, short runs of two blocks (one per
# signing thread): the module is never unloaded under a thread that used
# it, whose exit runs the thread-exit destructors of kryoptic's static
# OpenSSL (issue 11: a few percent of runs crashed at exit).
if [[ " $tokens " == *" kryoptic "* ]] && [ "$runs" -gt 0 ]; then
    d=$WORK/kryoptic
    if [ -s "$d/sub.pem" ]; then
        (
            cd "$d" || exit 1
            export KRYOPTIC_CONF=$d/kryoptic.conf CARDCA_MODULE=$KRYOPTIC_SO
            cat www.csr www.csr | tbs-build --ca sub.pem --profile server --subject /CN=jobs.example.test \
                --san dns:jobs.example.test --days 30 > two.tbs
            ok=0 crashed=0 other=0 t0=$SECONDS
            for ((i = 0; i < runs; i++)); do
                card-sign --ca sub.pem --jobs 2 --pin-source file:user.pin < two.tbs > two.pem 2> one.err
                rc=$?
                if [ $rc = 0 ] && [ "$(grep -c 'END CERTIFICATE' two.pem)" = 2 ]; then ok=$((ok + 1))
                elif [ $rc -ge 128 ]; then crashed=$((crashed + 1)); echo "run $i: killed by signal $((rc - 128))"
                else other=$((other + 1)); echo "run $i: exit $rc: $(head -1 one.err)"; fi
            done
            openssl verify -x509_strict -CAfile root.pem -untrusted sub.pem two.pem > /dev/null || other=$((other + 1))
            echo
            echo "card-sign --jobs 2 on kryoptic: $runs runs of 2 blocks, $ok signed both, $crashed crashed, $other failed ($((SECONDS - t0)) s)"
            [ "$ok" = "$runs" ]
        ) || failed=1
    else
        echo "card-sign --jobs 2 on kryoptic: not run, the flow made no sub CA"
        failed=1
    fi
fi

echo
echo "check-tokens: $((SECONDS - start)) s"
if [ $failed = 1 ]; then
    for t in $tokens; do
        for f in "$WORK/res/$t"/*.log; do
            [ -e "$f" ] || continue
            l=$(cat "$f")
            echo
            echo "== $t: ${f##*/}" | sed 's/\.log$//'
            tail -25 "$l"
        done
    done
    echo "check-tokens: FAILED" >&2
    exit 1
fi
