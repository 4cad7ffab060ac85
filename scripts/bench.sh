#!/usr/bin/env bash
# make bench: cardca against `openssl ca` with engine_pkcs11, on the same
# SoftHSM2 token, the same CSRs and the same CA keys, in one run. Runs
# alternate between the two sides so machine noise hits both alike; only
# the ratios of one run mean anything.
#
#   BENCH_SIZES="1000 10000"   stream sizes
#   BENCH_PER_CSR=200          CSRs for the one-process-per-CSR comparison
#   BENCH_BIG=100000           also measure our peak RSS at this size (0: skip)
#   BENCH_AUDIT_REPS=3         pairs of runs without and with the audit log
#   BENCH_DB_REPS=3            pairs of runs without and with card-sign --db
#   BENCH_OCSP=10000           pre-sign OCSP responses for this many
#                              certificates per CA key (0: skip)
#   BENCH_DIR=500              pending requests in the issuing directory
#                              (examples/ca) comparison (0: skip)
#   BENCH_PG=2000              certificates per run into the PostgreSQL
#                              record, one host and four (0: skip)
#
# The rows without "audit" run with --no-audit (cert-store would log to
# DIR/audit.log by default), so they measure what they always measured; the
# audit rows log every signature and store to one file, as CARDCA_AUDIT
# does, and are compared with the same run's row without a log.
set -euo pipefail
unset CARDCA_AUDIT

top=$(cd "$(dirname "$0")/.." && pwd)
bin=$top/target/release
work=$top/bench-work
sizes=${BENCH_SIZES:-1000 10000}
per_csr=${BENCH_PER_CSR:-200}
big=${BENCH_BIG:-100000}
ocsp=${BENCH_OCSP:-10000}
export PATH=$bin:$PATH

# Nothing is deleted during a run: every database is a new directory, and
# the run's files stay in bench-work/ until the next run. On ext4 without a
# journal, as here, the inode allocator skips inodes freed in the last 60 s
# (300 s while their inode block is dirty) and reads each one's inode block
# to find out, so after deleting 10,000 certificate files the next 10,000
# creations cost 0.5-1 ms of CPU each, on both sides: that would measure
# our own clean-up, not the tools. Hence the wait after removing a run.
if [ -e "$work" ]; then
    rm -rf "$work"
    sync
    echo "bench: removed the last run's files; waiting 65 s for ext4 to let their inodes go" >&2
    sleep 65
fi
mkdir -p "$work/tokens"
cd "$work"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" > softhsm2.conf
export SOFTHSM2_CONF=$work/softhsm2.conf TMPDIR=$work
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
    [ -e "$m" ] && export CARDCA_MODULE=$m && break
done
export PKCS11_MODULE_PATH=$CARDCA_MODULE
printf '1234\n' > pin
printf '12345678\n' > so.pin
export CARDCA_PIN_SOURCE=file:$work/pin
P=(--pin-source file:pin)
T='pkcs11:token=bench'

card-init --slot free --label bench --so-pin-source file:so.pin --pin-source file:pin 2>/dev/null
card-keygen --token "$T" --type rsa:2048 --label rsa "${P[@]}" > /dev/null 2>&1
card-keygen --token "$T" --type ec:p256 --label p256 "${P[@]}" > /dev/null 2>&1
for k in rsa p256; do
    csr-make --key "$T;object=$k" --subject "/CN=bench $k CA" "${P[@]}" \
        | tbs-build --self-signed --profile root | card-sign --key "$T;object=$k" "${P[@]}" > "$k-ca.pem"
done

# CSRs: eight distinct P-256 requests, cycled to any length.
for i in $(seq 8); do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
        -subj "/CN=device-$i" -out "csr-$i.pem" 2>/dev/null
done
stream() { for i in $(seq "$1"); do cat "csr-$(( (i - 1) % 8 + 1 )).pem"; done; }
infiles() { for i in $(seq "$1"); do printf 'csr-%d.pem\n' $(( (i - 1) % 8 + 1 )); done; }

cat > openssl.cnf <<'CNF'
[ca]
default_ca = bench
[bench]
database = $ENV::BENCH_DB/index.txt
new_certs_dir = $ENV::BENCH_DB/certs
rand_serial = yes
default_md = sha256
default_days = 30
policy = anything
unique_subject = no
x509_extensions = leaf
copy_extensions = none
[anything]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
# Both sides issue the same eight subjects over and over: unique_subject
# = no, as in openssl.cnf below (a missing index.txt.attr means yes).
fresh_db() { mkdir -p "$1/certs"; : > "$1/index.txt"; echo "unique_subject = no" > "$1/index.txt.attr"; }

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

ours_stream() { # KEY N JOBS [audit] [TAG] [reserve]
    local db=db-ours-$1-$2-$3${4:+-audit}${5:+-$5}${6:+-reserve}
    fresh_db "$db"
    stream "$2" > in.csr
    local a b audit=(--no-audit) reserve=()
    [ -n "${4:-}" ] && audit=(--audit "$db.audit.log")
    # card-sign --db: each serial checked and reserved before it is signed.
    [ -n "${6:-}" ] && reserve=(--db "$db")
    a=$(now)
    tbs-build --ca "$1-ca.pem" --profile client --csr-subject --days 30 < in.csr \
        | card-sign --ca "$1-ca.pem" --jobs "$3" "${reserve[@]}" "${P[@]}" "${audit[@]}" \
        | cert-store --db "$db" --ca "$1-ca.pem" "${audit[@]}" > out.pem
    b=$(now)
    [ "$(grep -c 'END CERTIFICATE' out.pem)" = "$2" ] || { echo "bench: ours issued the wrong count" >&2; exit 1; }
    if [ -n "${4:-}" ]; then
        cert-store --audit-verify "$db.audit.log" > /dev/null || { echo "bench: the audit log does not verify" >&2; exit 1; }
        [ "$(wc -l < "$db.audit.log")" = $(( 2 * $2 + 1 )) ] || { echo "bench: the audit log has the wrong count" >&2; exit 1; }
    fi
    rate "$2" "$a" "$b"
}

openssl_stream() { # KEY N
    local db=db-openssl-$1-$2
    fresh_db "$db"
    infiles "$2" > in.list
    local a b
    a=$(now)
    BENCH_DB=$db xargs -a in.list openssl ca -batch -config openssl.cnf -engine pkcs11 -keyform engine \
        -keyfile "$T;object=$1;type=private?pin-value=1234" -cert "$1-ca.pem" -notext -out out-openssl.pem -infiles \
        > /dev/null 2>&1
    b=$(now)
    [ "$(wc -l < "$db/index.txt")" = "$2" ] || { echo "bench: openssl ca issued the wrong count" >&2; exit 1; }
    rate "$2" "$a" "$b"
}

echo "cardca bench: $(nproc) cores, SoftHSM2 $(softhsm2-util --version), $(openssl version | cut -d' ' -f1-2)"
for key in rsa p256; do
    for n in $sizes; do
        raw=$("$top/target/release/examples/raw_sign" "$T;object=$key" "$n")
        ours1=$(ours_stream "$key" "$n" 1)
        theirs=$(openssl_stream "$key" "$n")
        ours2=$(ours_stream "$key" "$n" 2)
        # The audit log's cost: --jobs 1 without and with it, alternating
        # (off-on, on-off, ...) so drift in the machine's load hits both;
        # what is compared is the median of the pairs' ratios (robust when
        # the machine's load changes between pairs).
        offs=() ons=()
        for r in $(seq "${BENCH_AUDIT_REPS:-3}"); do
            if [ $(( r % 2 )) = 1 ]; then
                offs+=("$(ours_stream "$key" "$n" 1 "" "r$r")"); ons+=("$(ours_stream "$key" "$n" 1 audit "r$r")")
            else
                ons+=("$(ours_stream "$key" "$n" 1 audit "r$r")"); offs+=("$(ours_stream "$key" "$n" 1 "" "r$r")")
            fi
        done
        off=$(median "${offs[@]}")
        audited=$(median "${ons[@]}")
        pair_ratios=()
        for r in "${!offs[@]}"; do pair_ratios+=("$(awk -v a="${ons[$r]}" -v b="${offs[$r]}" 'BEGIN { printf "%d", 1000 * a / b }')"); done
        audit_ratio=$(awk -v m="$(median "${pair_ratios[@]}")" 'BEGIN { printf "%.2f", m / 1000 }')
        # The reservation's cost: --jobs 1 without and with card-sign --db
        # (no audit log either way), alternating as above.
        plain=() reserved=()
        for r in $(seq "${BENCH_DB_REPS:-3}"); do
            if [ $(( r % 2 )) = 1 ]; then
                plain+=("$(ours_stream "$key" "$n" 1 "" "d$r")"); reserved+=("$(ours_stream "$key" "$n" 1 "" "d$r" reserve)")
            else
                reserved+=("$(ours_stream "$key" "$n" 1 "" "d$r" reserve)"); plain+=("$(ours_stream "$key" "$n" 1 "" "d$r")")
            fi
        done
        db_ratios=()
        for r in "${!plain[@]}"; do db_ratios+=("$(awk -v a="${reserved[$r]}" -v b="${plain[$r]}" 'BEGIN { printf "%d", 1000 * a / b }')"); done
        db_ratio=$(awk -v m="$(median "${db_ratios[@]}")" 'BEGIN { printf "%.2f", m / 1000 }')
        raw2=$("$top/target/release/examples/raw_sign" "$T;object=$key" "$n")
        raw=$(( (raw + raw2) / 2 ))
        printf '\n%s CA key, stream of %s CSRs (certificates/s)\n' "$key" "$n"
        printf '  token raw signing, one session      %8s\n' "$raw"
        printf '  tbs-build | card-sign | cert-store   %8s   %sx raw, %sx openssl ca\n' "$ours1" "$(ratio "$ours1" "$raw")" "$(ratio "$ours1" "$theirs")"
        printf '  the same with card-sign --jobs 2     %8s   %sx raw, %sx openssl ca\n' "$ours2" "$(ratio "$ours2" "$raw")" "$(ratio "$ours2" "$theirs")"
        printf '  --jobs 1, no audit log, median       %8s   (runs: %s)\n' "$off" "${offs[*]}"
        printf '  --jobs 1 with the audit log, median  %8s   %sx raw, %sx without the log (median of the pairs; runs: %s)\n' "$audited" "$(ratio "$audited" "$raw")" "$audit_ratio" "${ons[*]}"
        printf '  --jobs 1 without card-sign --db      %8s   (median; runs: %s)\n' "$(median "${plain[@]}")" "${plain[*]}"
        printf '  --jobs 1 with card-sign --db         %8s   %sx without it (median of the pairs; runs: %s)\n' "$(median "${reserved[@]}")" "$db_ratio" "${reserved[*]}"
        printf '  openssl ca -batch -infiles           %8s\n' "$theirs"
    done
done

if [ "$ocsp" != 0 ]; then
    for key in rsa p256; do
        # The database to answer for, issued untimed: N certificates.
        db=db-ocsp-$key
        fresh_db "$db"
        stream "$ocsp" | tbs-build --ca "$key-ca.pem" --profile client --csr-subject --days 30 \
            | card-sign --ca "$key-ca.pem" "${P[@]}" | cert-store --db "$db" --ca "$key-ca.pem" > /dev/null
        raw=$("$top/target/release/examples/raw_sign" "$T;object=$key" "$ocsp")
        # Signing only, then signing and filing (checked again, one file
        # per certificate, synced per batch: the disk's share shows).
        a=$(now)
        tbs-build --ocsp --ca "$key-ca.pem" --db "$db" | card-sign --ca "$key-ca.pem" "${P[@]}" > ocsp-$key.pem
        b=$(now)
        [ "$(grep -c 'BEGIN OCSP RESPONSE' "ocsp-$key.pem")" = "$ocsp" ] || { echo "bench: wrong OCSP count" >&2; exit 1; }
        signed=$(rate "$ocsp" "$a" "$b")
        a=$(now)
        tbs-build --ocsp --ca "$key-ca.pem" --db "$db" | card-sign --ca "$key-ca.pem" "${P[@]}" \
            | cert-store --ocsp-dir "ocsp-$key" --ca "$key-ca.pem" > /dev/null
        b=$(now)
        [ "$(find "ocsp-$key" -name '*.der' | wc -l)" = "$ocsp" ] || { echo "bench: wrong OCSP file count" >&2; exit 1; }
        ours=$(rate "$ocsp" "$a" "$b")
        raw2=$("$top/target/release/examples/raw_sign" "$T;object=$key" "$ocsp")
        raw=$(( (raw + raw2) / 2 ))
        printf '\n%s CA key, OCSP responses pre-signed for %s certificates (responses/s)\n' "$key" "$ocsp"
        printf '  token raw signing, one session      %8s\n' "$raw"
        printf '  tbs-build --ocsp | card-sign         %8s   %sx raw\n' "$signed" "$(ratio "$signed" "$raw")"
        printf '  the same | cert-store --ocsp-dir     %8s   %sx raw\n' "$ours" "$(ratio "$ours" "$raw")"
    done
fi

printf '\none process per CSR, %s CSRs, P-256 CA key (certificates/s)\n' "$per_csr"
# Both sides pay mostly for loading the module (SoftHSM2, libcrypto and
# libstdc++ relocation: ~5 ms of CPU per process), so the figure swings
# with the machine's load by more than the difference it measures. The
# CSRs are issued in five alternating rounds and each side's time summed,
# so a busy second hits both sides alike.
fresh_db db-ours-per-csr; fresh_db db-openssl-per-csr
rounds=5 t_ours=0 t_audit=0 t_theirs=0 done_n=0
fresh_db db-ours-per-csr-audit
for r in $(seq "$rounds"); do
    n=$(( per_csr * r / rounds - done_n )); done_n=$(( done_n + n ))
    a=$(now)
    for i in $(seq "$n"); do
        tbs-build --ca p256-ca.pem --profile client --csr-subject --days 30 < "csr-$(( (i - 1) % 8 + 1 )).pem" \
            | card-sign --ca p256-ca.pem "${P[@]}" --no-audit | cert-store --db db-ours-per-csr --ca p256-ca.pem --no-audit > /dev/null
    done
    b=$(now); t_ours=$(awk -v t="$t_ours" -v a="$a" -v b="$b" 'BEGIN { print t + b - a }')
    a=$(now)
    for i in $(seq "$n"); do
        tbs-build --ca p256-ca.pem --profile client --csr-subject --days 30 < "csr-$(( (i - 1) % 8 + 1 )).pem" \
            | card-sign --ca p256-ca.pem "${P[@]}" --audit per-csr.audit.log \
            | cert-store --db db-ours-per-csr-audit --ca p256-ca.pem --audit per-csr.audit.log > /dev/null
    done
    b=$(now); t_audit=$(awk -v t="$t_audit" -v a="$a" -v b="$b" 'BEGIN { print t + b - a }')
    a=$(now)
    for i in $(seq "$n"); do
        BENCH_DB=db-openssl-per-csr openssl ca -batch -config openssl.cnf -engine pkcs11 -keyform engine \
            -keyfile "$T;object=p256;type=private?pin-value=1234" -cert p256-ca.pem -notext \
            -in "csr-$(( (i - 1) % 8 + 1 )).pem" -out /dev/null > /dev/null 2>&1
    done
    b=$(now); t_theirs=$(awk -v t="$t_theirs" -v a="$a" -v b="$b" 'BEGIN { print t + b - a }')
done
[ "$(wc -l < db-ours-per-csr/index.txt)" = "$per_csr" ] || { echo "bench: ours issued the wrong count" >&2; exit 1; }
[ "$(wc -l < db-ours-per-csr-audit/index.txt)" = "$per_csr" ] || { echo "bench: ours issued the wrong count" >&2; exit 1; }
[ "$(wc -l < db-openssl-per-csr/index.txt)" = "$per_csr" ] || { echo "bench: openssl ca issued the wrong count" >&2; exit 1; }
cert-store --audit-verify per-csr.audit.log > /dev/null || { echo "bench: the audit log does not verify" >&2; exit 1; }
ours=$(rate "$per_csr" 0 "$t_ours"); ours_audit=$(rate "$per_csr" 0 "$t_audit"); theirs=$(rate "$per_csr" 0 "$t_theirs")
printf '  one pipeline per CSR (durable)       %8s   %sx openssl ca\n' "$ours" "$(ratio "$ours" "$theirs")"
printf '  the same with the audit log          %8s   %sx without the log\n' "$ours_audit" "$(ratio "$ours_audit" "$ours")"
printf '  one openssl ca per CSR               %8s\n' "$theirs"

printf '\npeak RSS of each tool, P-256 stream (KiB)\n'
rss_sizes=$sizes
[ "$big" != 0 ] && rss_sizes="$sizes $big"
for n in $rss_sizes; do
    fresh_db "db-rss-$n"
    stream "$n" > in.csr
    /usr/bin/time -f %M -o rss-tbs tbs-build --ca p256-ca.pem --profile client --csr-subject --days 30 < in.csr > in.tbs
    /usr/bin/time -f %M -o rss-sign card-sign --ca p256-ca.pem "${P[@]}" < in.tbs > in.pem
    /usr/bin/time -f %M -o rss-store cert-store --db "db-rss-$n" --ca p256-ca.pem --no-audit < in.pem > /dev/null
    printf '  N=%-7s tbs-build %6s   card-sign %6s   cert-store %6s\n' "$n" "$(cat rss-tbs)" "$(cat rss-sign)" "$(cat rss-store)"
done

# The issuing directory (examples/ca): BENCH_DIR pending requests (500)
# issued by one `make issue` (one card-sign --db stream, the audit log
# on), against a Makefile that runs one `openssl ca -batch` per request
# on the same token, and against the bare pipeline over the same
# requests (card-sign --db and the audit log too, no make). Each side
# starts from a fresh directory; three rounds, alternating, medians.
dir_n=${BENCH_DIR:-500}
if [ "$dir_n" != 0 ]; then
    mkdir -p dir-requests
    for i in $(seq "$dir_n"); do cp "csr-$(( (i - 1) % 8 + 1 )).pem" "dir-requests/req-$(printf %04d "$i").csr"; done
    cat > openssl-dir.mk <<'MK'
# One openssl ca per request, as a Makefile-driven openssl CA does it.
REQS := $(wildcard requests/*.csr)
all: $(REQS:requests/%.csr=issued/%.pem)
issued/%.pem: requests/%.csr
	@BENCH_DB=db openssl ca -batch -config ../openssl.cnf -engine pkcs11 -keyform engine \
		-keyfile '$(KEY)' -cert ../$(CA) -notext -in $< -out $@ > /dev/null 2>&1
MK
    dir_ours() { # KEY ROUND
        local d=dir-ours-$1-$2 a b
        cp -r "$top/examples/ca" "$d"
        cp "$1-ca.pem" "$d/ca.pem"
        cp -r dir-requests "$d/requests"
        printf 'PIN_SOURCE = file:%s/pin\nREQUEST_ARGS = --csr-subject --days 30\nAUDIT = audit.log\n' "$work" >> "$d/ca.conf"
        a=$(now)
        make -s -C "$d" issue 2> /dev/null
        b=$(now)
        [ "$(ls "$d/issued" | wc -l)" = "$dir_n" ] || { echo "bench: make issued the wrong count" >&2; exit 1; }
        rate "$dir_n" "$a" "$b"
    }
    dir_openssl() { # KEY ROUND
        local d=dir-openssl-$1-$2 a b
        mkdir -p "$d/issued"
        fresh_db "$d/db"
        cp -r dir-requests "$d/requests"
        a=$(now)
        make -s -C "$d" -f ../openssl-dir.mk KEY="$T;object=$1;type=private?pin-value=1234" CA="$1-ca.pem"
        b=$(now)
        [ "$(wc -l < "$d/db/index.txt")" = "$dir_n" ] || { echo "bench: openssl ca issued the wrong count" >&2; exit 1; }
        rate "$dir_n" "$a" "$b"
    }
    dir_bare() { # KEY ROUND
        local d=dir-bare-$1-$2 a b
        fresh_db "$d"
        a=$(now)
        cat dir-requests/*.csr | tbs-build --ca "$1-ca.pem" --profile client --csr-subject --days 30 \
            | card-sign --ca "$1-ca.pem" --db "$d" "${P[@]}" --audit "$d.audit.log" \
            | cert-store --db "$d" --ca "$1-ca.pem" --audit "$d.audit.log" > "$d.pem"
        b=$(now)
        [ "$(grep -c 'END CERTIFICATE' "$d.pem")" = "$dir_n" ] || { echo "bench: the pipeline issued the wrong count" >&2; exit 1; }
        rate "$dir_n" "$a" "$b"
    }
    for key in rsa p256; do
        ours=() theirs=() bare=()
        for r in 1 2 3; do
            ours+=("$(dir_ours "$key" "$r")")
            bare+=("$(dir_bare "$key" "$r")")
            [ "$r" = 2 ] && theirs+=("$(dir_openssl "$key" "$r")")
        done
        o=$(median "${ours[@]}") t=${theirs[0]} p=$(median "${bare[@]}")
        printf '\n%s CA key, an issuing directory with %s pending requests (certificates/s)\n' "$key" "$dir_n"
        printf '  make issue (examples/ca)             %8s   %sx openssl ca per request, %sx the bare pipeline (runs: %s)\n' \
            "$o" "$(ratio "$o" "$t")" "$(ratio "$o" "$p")" "${ours[*]}"
        printf '  the bare pipeline, no make           %8s   (runs: %s)\n' "$p" "${bare[*]}"
        printf '  make, one openssl ca -batch each     %8s\n' "$t"
    done
fi

# The record on PostgreSQL (BENCH_PG certificates, default 2000; 0:
# skip), on a server of the bench's own (tests/pg/run: a Unix socket,
# fsync on). 1) One stream into PostgreSQL against the same stream into
# index.txt (card-sign --db reserving, cert-store --db recording, no
# audit log), three rounds alternating, a fresh record each, medians.
# 2) Four issuing hosts at once, each with its own SoftHSM2 store holding
# the same CA key (imported from one key file) and a quarter of the
# requests, against one host with all of them, into one record.
pg_n=${BENCH_PG:-2000}
if [ "$pg_n" != 0 ]; then
    eval "$("$top/tests/pg/run" --start)"
    trap '"$top/tests/pg/run" --stop "$PG_DIR"' EXIT
    pg_db() { # NAME: a fresh database, its URI on stdout
        psql -qc "CREATE DATABASE $1" > /dev/null
        printf 'postgresql:///%s' "$1"
    }
    pg_stream() { # KEY N ROUND pg|files
        local at a b
        if [ "$4" = pg ]; then at=$(pg_db "s_$1_$3"); else at=db-pgcmp-$1-$3; fresh_db "$at"; fi
        stream "$2" > pg-in.csr
        a=$(now)
        tbs-build --ca "$1-ca.pem" --profile client --csr-subject --days 30 < pg-in.csr \
            | card-sign --ca "$1-ca.pem" --db "$at" "${P[@]}" --no-audit \
            | cert-store --db "$at" --ca "$1-ca.pem" --no-audit > pg-out.pem
        b=$(now)
        [ "$(grep -c 'END CERTIFICATE' pg-out.pem)" = "$2" ] || { echo "bench: the stream into $4 issued the wrong count" >&2; exit 1; }
        rate "$2" "$a" "$b"
    }
    for key in rsa p256; do
        files=() pgs=() pair=()
        for r in 1 2 3; do
            if [ $(( r % 2 )) = 1 ]; then
                files+=("$(pg_stream "$key" "$pg_n" "$r" files)"); pgs+=("$(pg_stream "$key" "$pg_n" "$r" pg)")
            else
                pgs+=("$(pg_stream "$key" "$pg_n" "$r" pg)"); files+=("$(pg_stream "$key" "$pg_n" "$r" files)")
            fi
            pair+=("$(awk -v a="${pgs[-1]}" -v b="${files[-1]}" 'BEGIN { printf "%d", 1000 * a / b }')")
        done
        f=$(median "${files[@]}") p=$(median "${pgs[@]}")
        printf '\n%s CA key, a stream of %s into the record (certificates/s, card-sign --db | cert-store --db)\n' "$key" "$pg_n"
        printf '  into PostgreSQL                      %8s   %sx index.txt (median of the pairs; runs: %s)\n' \
            "$p" "$(awk -v m="$(median "${pair[@]}")" 'BEGIN { printf "%.2f", m / 1000 }')" "${pgs[*]}"
        printf '  into index.txt                       %8s   (runs: %s)\n' "$f" "${files[*]}"
    done
    # Four hosts: the same CA key in four SoftHSM2 stores, for each key type.
    stream "$pg_n" > host-all.in
    for h in 1 2 3 4; do stream $(( pg_n / 4 )) > "host-$h.in"; done
    host_stream() { # KEY HOST N URI IN: the N requests in IN, issued on HOST
        tbs-build --ca "hosts-$1.pem" --profile client --csr-subject --days 30 < "$5" \
            | SOFTHSM2_CONF=$work/host-$2/softhsm2.conf card-sign --ca "hosts-$1.pem" \
                --key "pkcs11:token=host-$2;object=$1" --db "$4" "${P[@]}" --no-audit \
            | cert-store --db "$4" --ca "hosts-$1.pem" --no-audit > "host-$2.pem"
        [ "$(grep -c 'END CERTIFICATE' "host-$2.pem")" = "$3" ] || { echo "bench: host $2 issued the wrong count" >&2; exit 1; }
    }
    hosts_run() { # KEY ROUND 1|4
        local uri a b h
        uri=$(pg_db "h$3_$1_$2")
        a=$(now)
        if [ "$3" = 1 ]; then
            host_stream "$1" 1 "$pg_n" "$uri" host-all.in
        else
            for h in 1 2 3 4; do host_stream "$1" "$h" $(( pg_n / 4 )) "$uri" "host-$h.in" & done
            for h in 1 2 3 4; do wait -n || { echo "bench: a host failed" >&2; exit 1; }; done
        fi
        b=$(now)
        rate $(( $3 == 1 ? pg_n : pg_n / 4 * 4 )) "$a" "$b"
    }
    for h in 1 2 3 4; do
        mkdir -p "host-$h/tokens"
        printf 'directories.tokendir = %s/host-%s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" "$h" > "host-$h/softhsm2.conf"
        SOFTHSM2_CONF=$work/host-$h/softhsm2.conf card-init --slot free --label "host-$h" --so-pin-source file:so.pin \
            --pin-source file:pin 2> /dev/null
    done
    for key in rsa p256; do
        case $key in
            rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "hosts-$key.key" 2> /dev/null ;;
            p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "hosts-$key.key" 2> /dev/null ;;
        esac
        for h in 1 2 3 4; do
            SOFTHSM2_CONF=$work/host-$h/softhsm2.conf card-keygen --token "pkcs11:token=host-$h" --import "hosts-$key.key" \
                --label "$key" "${P[@]}" > /dev/null 2>&1
        done
        SOFTHSM2_CONF=$work/host-1/softhsm2.conf csr-make --key "pkcs11:token=host-1;object=$key" \
                --subject "/CN=bench hosts $key CA" "${P[@]}" \
            | tbs-build --self-signed --profile root \
            | SOFTHSM2_CONF=$work/host-1/softhsm2.conf card-sign --key "pkcs11:token=host-1;object=$key" "${P[@]}" \
            > "hosts-$key.pem"
        one=() four=()
        for r in 1 2 3; do
            if [ $(( r % 2 )) = 1 ]; then one+=("$(hosts_run "$key" "$r" 1)"); four+=("$(hosts_run "$key" "$r" 4)");
            else four+=("$(hosts_run "$key" "$r" 4)"); one+=("$(hosts_run "$key" "$r" 1)"); fi
        done
        o=$(median "${one[@]}") q=$(median "${four[@]}")
        printf '\n%s CA key, %s certificates into one PostgreSQL record, one host or four (certificates/s)\n' "$key" "$pg_n"
        printf '  four hosts at once, a quarter each   %8s   %sx one host (runs: %s)\n' "$q" "$(ratio "$q" "$o")" "${four[*]}"
        printf '  one host, all of them                %8s   (runs: %s)\n' "$o" "${one[*]}"
    done
fi
