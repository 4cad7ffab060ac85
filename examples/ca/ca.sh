#!/usr/bin/env bash
# ca.sh: the work behind an issuing directory's Makefile (examples/ca).
# make is the operator's interface (`make`, `make renew`, `make status`,
# ...); this script is what each target runs, in the directory, with the
# settings of ca.conf in its environment. Layout:
#
#   ca.conf, Makefile, ca.sh   the directory's settings and machinery
#   ca.pem                     the CA's certificate (CA_CERT)
#   requests/NAME.csr          a request; NAME.args: its tbs-build flags
#   issued/NAME.pem            NAME's current certificate
#   rejected/NAME.why          why tbs-build refused NAME (until it passes)
#   revoked/NAME.SERIAL.*      a revoked certificate and its request
#   db/                        cert-store's database (openssl ca's index.txt),
#                              unless DB names a PostgreSQL record
#   crl.pem                    the current CRL
#   ocsp/SERIAL.der            pre-signed OCSP responses, for stapling
#   audit.log                  the hash-chained audit log (AUDIT)
#   .pending/                  a batch on its way (see `batch`)
#   .lock                      held by every run that changes anything
#
# Issuing is one card-sign stream for the whole batch (one login, one PIN
# entry), and nothing is issued twice: before the stream the batch's TBS
# blocks (.pending/batch, one per name in .pending/names) are made
# durable; card-sign --db reserves each serial (with the TBS's SHA-256)
# before it signs; after the stream the certificates are filed in order.
# If the run is cut short (Ctrl-C, SIGKILL, a full disk, a token that
# goes away), the next run first settles .pending: a TBS whose
# reservation the database recorded as a valid certificate gets that
# certificate as issued/NAME.pem; any other one is dropped, and its
# request is issued afresh. A reservation that was signed and never
# recorded is revoked by `make crl` (cert-store --reconcile), so the CRL
# covers it.
set -euo pipefail

me=ca.sh
die() {
    echo "$me: $*" >&2
    exit 1
}

CA_CERT=${CA_CERT:-ca.pem}
DB=${DB:-db}
case $DB in
    postgresql://* | postgres://*) shared=1 ;;
    *) shared= ;;
esac
PROFILE=${PROFILE:-client}
RENEW_DAYS=${RENEW_DAYS:-30}
CRL_DAYS=${CRL_DAYS:-7}
CRL_REFRESH=${CRL_REFRESH:-3}
OCSP_DAYS=${OCSP_DAYS:-4}
OCSP_REFRESH=${OCSP_REFRESH:-2}
RECONCILE_AGE=${RECONCILE_AGE:-600}
CA_MARGIN=${CA_MARGIN:-90}
for v in RENEW_DAYS CRL_DAYS CRL_REFRESH OCSP_DAYS OCSP_REFRESH RECONCILE_AGE CA_MARGIN; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v = ${!v}: expected a whole number (ca.conf)"
done

# words TEXT: TEXT split into words as xargs does (quotes and backslashes
# honoured, nothing expanded), NUL-terminated.
words() {
    printf '%s\n' "$1" | sed 's/^[[:space:]]*#.*//' | xargs -r printf '%s\0'
}
mapfile -d '' request_args < <(words "${REQUEST_ARGS:-}")
mapfile -d '' issue_args < <(words "${ISSUE_ARGS:-}")

# The flags every token tool gets.
token=()
[ -n "${MODULE:-}" ] && token+=(--module "$MODULE")
[ -n "${MODULE_ARGS:-}" ] && token+=(--module-args "$MODULE_ARGS")
audit=()
[ -n "${AUDIT:-}" ] && audit=(--audit "$AUDIT")

# have_db: whether there is a record to read: a directory once
# cert-store or card-sign made it; in PostgreSQL, once this CA has a
# record there (taking the snapshot; a server that cannot be asked
# stops the run).
have_db() {
    [ -n "$shared" ] || { [ -d "$DB" ]; return; }
    local rc=0
    snapshot || rc=$?
    [ $rc = 2 ] && return 1
    [ $rc = 0 ] || exit 1
}

# snapshot: the record as files, in $snap: the directory itself, or for
# a PostgreSQL record an export of this CA's record as it is now
# (.db-snapshot, read-only): for settling a cut-short run, revoking by
# name, and telling whether the record changed since the CRL and OCSP
# responses were signed.
snap=
snapshot() {
    if [ -z "$shared" ]; then
        snap=$DB
        return 0
    fi
    rm -rf .db-snapshot || return 1
    if ! cert-store --db "$DB" --ca "$CA_CERT" --export .db-snapshot 2> .db-snapshot.err; then
        # 2: the record holds nothing of this CA yet.
        # (an empty $snap then: nothing recorded).
        if grep -q 'holds no record of' .db-snapshot.err; then
            rm -f .db-snapshot.err
            snap=.db-snapshot
            return 2
        fi
        cat .db-snapshot.err >&2
        rm -f .db-snapshot.err
        return 1
    fi
    rm -f .db-snapshot.err
    snap=.db-snapshot
}

# changed_since STAMP: whether the record changed since STAMP was made:
# index.txt newer than it; for a PostgreSQL record, the snapshot taken
# before signing differs from the one STAMP.index kept (a change that
# lands between the snapshot and the signature shows next time).
changed_since() {
    if [ -z "$shared" ]; then
        [ "$DB/index.txt" -nt "$1" ]
        return
    fi
    ! cmp -s "$snap/index.txt" "$1.index"
}

# stamp_index STAMP: what changed_since compares with next time, for a
# PostgreSQL record.
stamp_index() {
    [ -z "$shared" ] || cp "$snap/index.txt" "$1.index"
}
responder=()
[ -n "${RESPONDER:-}" ] && responder=(--responder "$RESPONDER")

# The environment the module needs (SOFTHSM2_CONF=..., say): cron and
# certmonger start their jobs with little of the operator's.
if [ -n "${MODULE_ENV:-}" ]; then
    mapfile -d '' module_env < <(words "$MODULE_ENV")
    for kv in "${module_env[@]}"; do
        [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "MODULE_ENV: $kv is not NAME=value (ca.conf)"
        export "${kv?}"
    done
fi

# The cardca tools: TOOLS_DIR first (certmonger runs its helpers with a
# PATH of its own), then PATH.
[ -n "${TOOLS_DIR:-}" ] && PATH=$TOOLS_DIR:$PATH
for t in tbs-build card-sign cert-store; do
    command -v "$t" > /dev/null || die "$t is not on PATH${TOOLS_DIR:+ or in TOOLS_DIR = $TOOLS_DIR} (ca.conf)"
done

# lock: this run holds .lock until it and every program it started have
# ended (the descriptor is inherited), so `make -j`, two operators and a
# cron job never work on the directory at once, and a run that was killed
# is waited for while a card-sign it started is still signing.
lock() {
    exec 9>> .lock
    flock 9
}

# The PIN, asked or read once per run and only when something is signed:
# file: and env: sources are handed on as they are; fd:N and the terminal
# are read here and given to each card-sign through a pipe (never an
# argument or a file).
pin_args=()
pin=
pin_read=0
need_pin() {
    [ ${#pin_args[@]} -gt 0 ] && return 0
    case ${PIN_SOURCE:-} in
        file:* | env:*) pin_args=(--pin-source "$PIN_SOURCE") ;;
        fd:*)
            local fd=${PIN_SOURCE#fd:}
            [[ $fd =~ ^[0-9]+$ ]] || die "PIN_SOURCE $PIN_SOURCE: fd: needs a number"
            IFS= read -r pin <&"$fd" || [ -n "$pin" ] || die "PIN_SOURCE $PIN_SOURCE: nothing to read"
            pin_read=1
            pin_args=(--pin-source fd:3)
            ;;
        '')
            { : < /dev/tty; } 2> /dev/null || die "no PIN_SOURCE in ca.conf and no terminal to ask on"
            IFS= read -rsp "PIN for the key of $CA_CERT: " pin < /dev/tty
            echo >&2
            pin_read=1
            pin_args=(--pin-source fd:3)
            ;;
        *) die "PIN_SOURCE $PIN_SOURCE: expected file:PATH, env:VAR or fd:N" ;;
    esac
}

# card_sign ARGS...: card-sign with this CA's key, database and PIN.
# need_pin must have run first, in this shell: card_sign runs in a
# pipeline, whose parts are subshells that would forget what it read.
card_sign() {
    local key=()
    [ -n "${KEY:-}" ] && key=(--key "$KEY")
    if [ $pin_read = 1 ]; then
        card-sign --ca "$CA_CERT" --db "$DB" "${key[@]}" "${token[@]}" "${audit[@]}" "$@" "${pin_args[@]}" \
            3< <(printf '%s\n' "$pin")
    else
        card-sign --ca "$CA_CERT" --db "$DB" "${key[@]}" "${token[@]}" "${audit[@]}" "$@" "${pin_args[@]}"
    fi
}

# A request's name is a file name and a make word: letters, digits, dot,
# dash, underscore, not starting with a dot or a dash.
good_name() {
    [[ $1 =~ ^[A-Za-z0-9_][A-Za-z0-9._-]*$ ]]
}

# split_pem FILE DIR SUFFIX NAMES...: the k-th PEM block of FILE into
# DIR/NAMES[k].SUFFIX; fails unless there is one block per name.
split_pem() {
    local file=$1 dir=$2 suffix=$3
    shift 3
    printf '%s\n' "$@" | awk -v dir="$dir" -v suffix="$suffix" '
        NR == FNR { name[++n] = $0; next }
        /^-----BEGIN / { if (++k > n) exit 1; out = dir "/" name[k] "." suffix; printf "" > out }
        out != "" { print > out }
        /^-----END / { close(out); out = "" }
        END { exit k != n }' - "$file"
}

# ends DAYS SOURCES...: cert-store --expiring DAYS SOURCES, what it lists
# in $ended. Status 0 when it lists something, 1 when nothing, 2 when it
# cannot read what it is given (its message on stderr): a file that
# cannot be read is never taken for one that is not due.
ended=
ends() {
    local err rc=0
    err=$(mktemp) || return 2
    ended=$(cert-store --expiring "$@" 2> "$err") || rc=$?
    [ $rc = 0 ] || grep -v -e ' ends* within ' -e '^cert-store: nothing ends' "$err" >&2
    rm -f "$err"
    [ $rc = 0 ] || return 2
    [ -n "$ended" ]
}

# serials FILE...: "SERIAL FILE" for each certificate file.
serials() {
    local args=() f rc=0
    for f; do args+=(--cert "$f"); done
    [ $# -gt 0 ] || return 0
    ends 3000000 "${args[@]}" || rc=$?
    [ $rc = 2 ] && return 1
    [ -n "$ended" ] && awk -F'\t' '{ print $3, $5 }' <<< "$ended"
    return 0
}

# settle: what a cut-short run left in .pending, filed from the database.
# .pending/batch holds the TBS of each name in .pending/names, in order,
# made durable (one sync) before card-sign read the first: a batch that
# does not hold one TBS a name was cut short before that sync returned,
# so nothing of it was signed, and it is dropped. Settling only reads
# .pending; if filing a certificate fails (a full disk), .pending stays
# for the next run.
settle() {
    [ -d .pending ] || return 0
    local names=() hashes=()
    [ -s .pending/names ] && mapfile -t names < .pending/names
    if [ ${#names[@]} = 0 ] || [ ! -e .pending/batch ] \
        || [ "$(grep -c '^-----BEGIN' .pending/batch)" != ${#names[@]} ]; then
        rm -rf .pending
        return 0
    fi
    # Each TBS's SHA-256, as card-sign --db reserved it: one block a line.
    mapfile -t hashes < <(awk '/^-----BEGIN/ { b = ""; next } /^-----END/ { print b; next } { b = b $0 }' \
        .pending/batch | while read -r b64; do printf '%s' "$b64" | base64 -d | sha256sum | cut -c1-64; done)
    [ ${#hashes[@]} = ${#names[@]} ] || { echo "$me: .pending/batch cannot be read" >&2; failed=1; return 1; }
    local rc=0
    snapshot || rc=$?
    [ $rc = 1 ] && { failed=1; return 1; }
    local -A serial_of=()
    if [ -s "$snap/reserved.txt" ]; then
        while IFS=$'\t' read -r s h _; do serial_of[$h]=$s; done < "$snap/reserved.txt"
    fi
    local -A valid=()
    if [ -s "$snap/index.txt" ]; then
        # (awk: `read` would merge the tabs around a valid line's empty
        # revocation field)
        while read -r s; do valid[$s]=1; done < <(awk -F'\t' '$1 == "V" { print $4 }' "$snap/index.txt")
    fi
    local i n s kept=0 dropped=0
    for i in "${!names[@]}"; do
        n=${names[$i]}
        s=${serial_of[${hashes[$i]}]:-}
        if [ -n "$s" ] && [ -n "${valid[$s]:-}" ] && [ -s "$snap/certs/$s.pem" ]; then
            if ! { cp "$snap/certs/$s.pem" "issued/.$n.tmp" && mv -f "issued/.$n.tmp" "issued/$n.pem"; }; then
                rm -f "issued/.$n.tmp"
                echo "$me: filing issued/$n.pem failed: the cut-short run stays in .pending for the next" >&2
                failed=1
                return 1
            fi
            kept=$((kept + 1))
        else
            dropped=$((dropped + 1))
        fi
    done
    sync -f issued || { failed=1; return 1; }
    rm -rf .pending
    echo "$me: a run cut short, settled: $kept recorded certificate(s) filed, $dropped request(s) to issue again" >&2
}

# reject NAME ERRFILE: tbs-build refused NAME; say why, keep the request.
failed=0
reject() {
    mkdir -p rejected
    cp "$2" "rejected/$1.why"
    echo "$me: requests/$1.csr refused: $(grep -v ': warning: ' "$2" | paste -sd' ')" >&2
    failed=1
}

# tbs_one NAME: NAME's TBS into .pending/one (its own flags).
tbs_one() {
    local n=$1 args=() profile=(--profile "$PROFILE") a
    if [ -e "requests/$n.args" ]; then
        if ! mapfile -d '' args < <(sed 's/^[[:space:]]*#.*//' "requests/$n.args" | xargs -r printf '%s\0' 2> .pending/err); then
            reject "$n" .pending/err
            return 1
        fi
    else
        args=("${request_args[@]}")
    fi
    for a in "${args[@]}"; do [ "$a" = --profile ] && profile=(); done
    local rc=0
    tbs-build --ca "$CA_CERT" "${profile[@]}" "${args[@]}" "${issue_args[@]}" \
        < "requests/$n.csr" > .pending/one 2> .pending/err || rc=$?
    if [ $rc = 0 ] && [ "$(grep -c '^-----BEGIN' .pending/one)" != 1 ]; then
        echo "requests/$n.csr holds $(grep -c '^-----BEGIN' .pending/one) requests: one a file" > .pending/err
        rc=1
    fi
    if [ $rc = 0 ]; then
        rm -f "rejected/$n.why"
        return 0
    fi
    # tbs-build exits 1 on a request it refuses and 2 on flags it cannot
    # parse: the request's own (NAME.args) are the request's fault; ca.conf's
    # are not, and neither is anything else (a missing CA file, a crash).
    if [ $rc = 1 ] || { [ $rc = 2 ] && [ -e "requests/$n.args" ]; }; then
        reject "$n" .pending/err
        return 1
    fi
    echo "$me: tbs-build failed on requests/$n.csr (exit $rc; not the request's fault): $(cat .pending/err)" >&2
    failed=1
    return 1
}

# batch NAME...: issue these requests, in one card-sign stream.
batch() {
    [ $# -gt 0 ] || return 0
    rm -rf .pending
    mkdir -p .pending issued || return 1
    # The requests without their own flags go through one tbs-build; if
    # it refuses one of them, each goes on its own so the one is named.
    local plain=() own=() n
    for n; do
        if [ -e "requests/$n.args" ]; then own+=("$n"); else plain+=("$n"); fi
    done
    : > .pending/batch
    : > .pending/names
    if [ ${#plain[@]} -gt 0 ]; then
        if printf 'requests/%s.csr\0' "${plain[@]}" | xargs -0 cat \
            | tbs-build --ca "$CA_CERT" --profile "$PROFILE" "${request_args[@]}" "${issue_args[@]}" \
                > .pending/batch 2> .pending/err \
            && [ "$(grep -c '^-----BEGIN' .pending/batch)" = ${#plain[@]} ]; then
            printf '%s\n' "${plain[@]}" > .pending/names
            # (one rm for all: a process per request would cost more than
            # its signature)
            [ -d rejected ] && printf 'rejected/%s.why\0' "${plain[@]}" | xargs -0 rm -f
        else
            : > .pending/batch
            own=("${plain[@]}" "${own[@]}")
        fi
    fi
    for n in "${own[@]}"; do
        if tbs_one "$n"; then
            cat .pending/one >> .pending/batch && printf '%s\n' "$n" >> .pending/names || return 1
        fi
    done
    rm -f .pending/one .pending/err
    local count
    count=$(wc -l < .pending/names)
    if [ "$count" = 0 ]; then
        rm -rf .pending
        return 0
    fi
    # Every TBS durable before card-sign reads the first, so that each
    # certificate the database records can be found for its request.
    sync -f .pending || { failed=1; return 1; }
    echo "$me: issuing $count certificate(s)" >&2
    local names=()
    mapfile -t names < .pending/names
    need_pin
    # The certificates are filed whole: split beside the batch, each
    # renamed into issued/, made durable, and only then the batch let go
    # (until then a crash leaves it to settle, which files them again).
    if card_sign < .pending/batch | cert-store --db "$DB" --ca "$CA_CERT" "${audit[@]}" > .pending/out \
        && [ "$(grep -c '^-----BEGIN CERTIFICATE' .pending/out)" = "$count" ] \
        && mkdir .pending/certs && split_pem .pending/out .pending/certs pem "${names[@]}" \
        && find .pending/certs -name '*.pem' -exec mv -f -t issued {} + && sync -f issued; then
        rm -rf .pending
        echo "$me: issued $count certificate(s) into issued/" >&2
        return 0
    fi
    failed=1
    echo "$me: the batch did not finish; filing what the database recorded" >&2
    settle
}

# pending: the requests with no certificate, or newer than it, from one
# find for all the files (a test per file would cost more than a
# signature); a request whose name is not a good one is named and left.
pending() {
    local dirs=() d
    for d in requests issued; do [ -d "$d" ] && dirs+=("$d"); done
    [ ${#dirs[@]} -gt 0 ] || return 0
    find "${dirs[@]}" -maxdepth 1 -type f \( -name '*.csr' -o -name '*.args' -o -name '*.pem' \) \
        -printf '%T@ %p\n' 2> /dev/null | awk -v me="$me" '
        { t = $1; f = substr($0, index($0, " ") + 1); dir = f; sub(/\/.*/, "", dir)
          n = f; sub(/^[^\/]*\//, "", n); ext = n; sub(/.*\./, "", ext); sub(/\.[^.]*$/, "", n)
          if (n !~ /^[A-Za-z0-9_][A-Za-z0-9._-]*$/) {
              if (dir == "requests" && ext == "csr")
                  printf "%s: %s: a request name is letters, digits, \".\", \"-\" and \"_\"; left alone\n", me, f > "/dev/stderr"
              next
          }
          if (dir == "issued") { if (ext == "pem") cert[n] = t }
          else if (ext == "csr") req[n] = t
          else if (ext == "args") args[n] = t }
        END { for (n in req) if (!(n in cert) || req[n] > cert[n] || ((n in args) && args[n] > cert[n])) print n }' \
        | sort
}

cmd_issue() {
    [ -s "$CA_CERT" ] || die "no CA certificate $CA_CERT (CA_CERT in ca.conf)"
    mkdir -p requests
    settle || return 1
    local names=() list err
    err=$(mktemp) || return 1
    list=$(pending 2> "$err")
    # A request with a bad name is named (and fails the run) every time.
    [ -s "$err" ] && cat "$err" >&2 && failed=1
    rm -f "$err"
    [ -n "$list" ] && mapfile -t names <<< "$list"
    batch "${names[@]}"
}

# Every command below runs with errexit ignored where `all` calls it
# (bash ignores -e inside a function called from an `||`), so each step
# that matters is checked where it is made.

# The names whose current certificate the database lists as ending
# within RENEW_DAYS.
due_for_renewal() {
    local files=() f
    for f in issued/*.pem; do [ -e "$f" ] && files+=("$f"); done
    [ ${#files[@]} -gt 0 ] || return 0
    have_db || return 0
    local -A due=()
    local s rc=0 list
    ends "$RENEW_DAYS" --db "$DB" --ca "$CA_CERT" || rc=$?
    [ $rc = 2 ] && return 1
    [ $rc = 1 ] && return 0
    while IFS=$'\t' read -r _ kind s _; do
        [ "$kind" = certificate ] && due[$s]=1
    done <<< "$ended"
    list=$(serials "${files[@]}") || return 1
    local n
    while read -r s f; do
        n=${f#issued/}
        n=${n%.pem}
        if [ -n "${due[$s]:-}" ]; then
            if [ -e "requests/$n.csr" ]; then
                printf '%s\n' "$n"
            else
                echo "$me: $f ends within $RENEW_DAYS days and requests/$n.csr is gone: not renewed" >&2
            fi
        fi
    done <<< "$list"
}

cmd_renew() {
    settle || return 1
    local names=() list
    list=$(due_for_renewal) || { failed=1; return 1; }
    [ -n "$list" ] && mapfile -t names <<< "$list"
    [ ${#names[@]} -gt 0 ] || echo "$me: nothing ends within $RENEW_DAYS days" >&2
    batch "${names[@]}"
}

# expiring: what ends within RENEW_DAYS; exit 1 when anything does (and
# 2 when the database cannot be read), for cron.
cmd_expiring() {
    have_db || return 0
    local rc=0
    ends "$RENEW_DAYS" --db "$DB" --ca "$CA_CERT" || rc=$?
    case $rc in
        0)
            printf '%s\n' "$ended"
            return 1
            ;;
        1) return 0 ;;
        *) return 2 ;;
    esac
}

# revoke: NAME's certificate, and every other valid one with its subject
# and key (those its renewals left valid: a compromised key must not keep
# one), all or none; or the one SERIAL.
cmd_revoke() {
    local name=${REVOKE_NAME:-} reason=() serial
    local SERIAL=${REVOKE_SERIAL:-} REASON=${REVOKE_REASON:-}
    [ -n "$REASON" ] && reason=(--reason "$REASON")
    if [ -z "$name" ]; then
        [ -n "${SERIAL:-}" ] || die "give NAME=name (a certificate in issued/) or SERIAL=hex, and REASON= if there is one"
        cert-store --db "$DB" --ca "$CA_CERT" --revoke "$SERIAL" "${reason[@]}" "${audit[@]}" || return 1
        echo "$me: revoked $SERIAL${REASON:+, $REASON}; the CRL and OCSP responses follow on the next make" >&2
        return 0
    fi
    good_name "$name" || die "NAME=$name: not a request's name"
    [ -e "issued/$name.pem" ] || die "NAME=$name: no issued/$name.pem (SERIAL= revokes by serial)"
    serial=$(serials "issued/$name.pem") || return 1
    serial=${serial%% *}
    [ -n "$serial" ] || die "issued/$name.pem: no certificate in it"
    local key subject s st
    key=$(openssl x509 -in "issued/$name.pem" -noout -pubkey) || return 1
    snapshot || return 1
    subject=$(awk -F'\t' -v s="$serial" '$4 == s { print $6 }' "$snap/index.txt")
    cp "issued/$name.pem" .revoke.pem || return 1
    while read -r s; do
        [ "$s" != "$serial" ] && [ -s "$snap/certs/$s.pem" ] || continue
        [ "$(openssl x509 -in "$snap/certs/$s.pem" -noout -pubkey)" = "$key" ] && cat "$snap/certs/$s.pem" >> .revoke.pem
    done < <(awk -F'\t' -v subj="$subject" '$1 == "V" && $6 == subj { print $4 }' "$snap/index.txt")
    if ! cert-store --db "$DB" --ca "$CA_CERT" --revoke - "${reason[@]}" "${audit[@]}" < .revoke.pem; then
        rm -f .revoke.pem
        return 1
    fi
    rm -f .revoke.pem
    # The request goes with it, or the next run would issue it again.
    mkdir -p revoked || return 1
    mv -f "issued/$name.pem" "revoked/$name.$serial.pem"
    local ext
    for ext in csr args; do
        [ -e "requests/$name.$ext" ] && mv -f "requests/$name.$ext" "revoked/$name.$serial.$ext"
    done
    echo "$me: revoked $name${REASON:+ ($REASON)}; the CRL and OCSP responses follow on the next make" >&2
}

cmd_crl() {
    have_db || { echo "$me: no database yet: nothing to sign a CRL for" >&2; return 0; }
    # Quiet when there is nothing to reconcile: cron mails what a run says.
    local said
    if ! said=$(cert-store --db "$DB" --ca "$CA_CERT" --reconcile --min-age "$RECONCILE_AGE" --reason cessationOfOperation \
        "${audit[@]}" 2>&1); then
        printf '%s\n' "$said" >&2
        return 1
    fi
    # Young reservations (a run cut short minutes ago) are counted, not
    # listed one by one: the next make crl revokes them.
    local young
    young=$(grep -c '^cert-store: left .* alone' <<< "$said" || true)
    grep -v -e '^cert-store: left .* alone' -e '^cert-store: no reservation revoked$' <<< "$said" >&2 || true
    [ "$young" = 0 ] || echo "$me: $young reservation(s) younger than RECONCILE_AGE = $RECONCILE_AGE s left for a later make crl" >&2
    # What the reconciling changed is part of the record the CRL covers.
    snapshot || return 1
    local why=
    if [ ! -s crl.pem ]; then
        why="no CRL yet"
    elif changed_since crl.pem; then
        why="the database changed"
    else
        local rc=0
        ends "$CRL_REFRESH" --crl crl.pem || rc=$?
        case $rc in
            0) why="less than $CRL_REFRESH days left" ;;
            1) return 0 ;;
            *) why="crl.pem cannot be read" ;;
        esac
    fi
    # A CRL reaches crl.pem whole and signed, or not at all.
    need_pin
    if ! tbs-build --crl --ca "$CA_CERT" --db "$DB" --days "$CRL_DAYS" "${audit[@]}" | card_sign > .crl.tmp \
        || ! sync .crl.tmp || ! mv -f .crl.tmp crl.pem; then
        rm -f .crl.tmp
        echo "$me: no new CRL signed ($why); crl.pem is as it was" >&2
        return 1
    fi
    stamp_index crl.pem || return 1
    echo "$me: crl.pem signed ($why), valid $CRL_DAYS days" >&2
}

cmd_ocsp() {
    [ "$OCSP_DAYS" -gt 0 ] || return 0
    have_db || return 0
    local why=
    if [ ! -e .ocsp-signed ]; then
        why="none yet"
    elif changed_since .ocsp-signed; then
        why="the database changed"
    else
        local rc=0
        ends "$OCSP_REFRESH" --ocsp-dir ocsp --db "$DB" --ca "$CA_CERT" || rc=$?
        case $rc in
            0) why="less than $OCSP_REFRESH days left" ;;
            1) return 0 ;;
            *) why="ocsp/ cannot be read" ;;
        esac
    fi
    local count
    # cert-store files each response atomically as it comes; the stamp
    # is set only when all were.
    need_pin
    if ! count=$(tbs-build --ocsp --ca "$CA_CERT" --db "$DB" --days "$OCSP_DAYS" "${responder[@]}" \
        | card_sign "${responder[@]}" | cert-store --ocsp-dir ocsp --ca "$CA_CERT" "${audit[@]}" \
        | awk '/^-----END/ { n++ } END { print n + 0 }'); then
        echo "$me: OCSP responses not all signed ($why)" >&2
        return 1
    fi
    touch .ocsp-signed || return 1
    stamp_index .ocsp-signed || return 1
    echo "$me: $count OCSP responses signed ($why), valid $OCSP_DAYS days" >&2
}

# status: every date that is due, or "ok"; exit 1 on any.
cmd_status() {
    local bad=0 rc
    say() {
        echo "status: $*"
        bad=1
    }
    # check WHAT DAYS SOURCES... : say what of SOURCES ends within DAYS
    # (WHAT words it), or that it cannot be read.
    check() {
        local what=$1 rc=0 n first
        shift
        ends "$@" || rc=$?
        case $rc in
            0)
                n=$(wc -l <<< "$ended")
                first=$(head -n1 <<< "$ended" | awk -F'\t' '{ print $1 " (" $6 ")" }')
                what=${what//\{n\}/$n}
                say "${what//\{first\}/$first}"
                ;;
            2) say "cannot read what cert-store --expiring $* names (above)" ;;
        esac
    }
    if [ ! -s "$CA_CERT" ]; then
        say "no CA certificate $CA_CERT"
    else
        check "the CA certificate $CA_CERT ends {first}: within CA_MARGIN = $CA_MARGIN days" "$CA_MARGIN" --cert "$CA_CERT"
    fi
    if [ ! -s crl.pem ]; then
        say "no CRL: run make crl"
    else
        check "the CRL's nextUpdate is {first}: run make crl" "$CRL_REFRESH" --crl crl.pem
    fi
    if [ "$OCSP_DAYS" -gt 0 ] && have_db; then
        if [ ! -e .ocsp-signed ]; then
            say "no OCSP responses: run make ocsp"
        else
            check "{n} OCSP response(s) end by {first}: run make ocsp" "$OCSP_REFRESH" --ocsp-dir ocsp --db "$DB" --ca "$CA_CERT"
        fi
    fi
    if have_db; then
        check "{n} certificate(s) end within RENEW_DAYS = $RENEW_DAYS days, the first {first}: run make renew" \
            "$RENEW_DAYS" --db "$DB" --ca "$CA_CERT"
    fi
    [ -d .pending ] && say "a run was cut short (.pending): run make"
    # Refused requests still waiting (a .why whose request is gone is a
    # record, not a task).
    local why n
    for why in rejected/*.why; do
        [ -e "$why" ] || continue
        n=${why#rejected/}
        n=${n%.why}
        [ -e "requests/$n.csr" ] && say "requests/$n.csr was refused: see $why"
    done
    local line
    while read -r line; do say "${line#"$me: "}"; done < <(pending 2>&1 > /dev/null)
    [ $bad = 0 ] || return 1
    echo "status: ok: $(find issued -maxdepth 1 -name '*.pem' 2> /dev/null | wc -l) certificates issued, none due; CRL, OCSP and the CA certificate within their margins"
}

cmd=${1:-}
case $cmd in
    all)
        lock
        rc=0
        cmd_issue || rc=1
        cmd_crl || rc=1
        cmd_ocsp || rc=1
        [ $failed = 0 ] || rc=1
        exit $rc
        ;;
    issue | renew | revoke | crl | ocsp)
        lock
        "cmd_$cmd"
        exit $failed
        ;;
    expiring | status) "cmd_$cmd" ;;
    *) die "usage: ca.sh all|issue|renew|expiring|revoke|crl|ocsp|status (run by the Makefile)" ;;
esac
