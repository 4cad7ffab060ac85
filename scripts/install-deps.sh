#!/usr/bin/env bash
# Installs what the tests and the demo need, only when it is missing:
# SoftHSM2, OpenSC's pkcs11-tool, GnuTLS's certtool and p11tool, p11-kit,
# NSS's certutil, jq,
# OpenSSL with engine_pkcs11, mandoc (Debian packages), and pkilint from
# PyPI into the project's venv. Safe to run again: it does nothing when
# everything is there.
#
#   --with-pkilint  also pkilint (PyPI) into the venv
#   --with-tokens   also the PKCS#11 modules `make check-tokens` runs on,
#                   what it needs to build kryoptic, and pcscd with a
#                   virtual reader for the OpenSC card (scripts/check-tokens.sh)
set -euo pipefail

venv=${CARDCA_VENV:-$(pwd)/.venv}
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have softhsm2-util || need+=(softhsm2)
have pkcs11-tool || need+=(opensc)
{ have certtool && have p11tool; } || need+=(gnutls-bin)
have mandoc || need+=(mandoc)
# NSS's certutil: an outside judge of the certificates (Firefox's verifier).
have certutil || need+=(libnss3-tools)
have openssl || need+=(openssl)
have setsid || need+=(util-linux)
# jq: the audit-log cases read its JSON lines with an outside parser.
have jq || need+=(jq)
# The issuing directory's certmonger helper is tested with certmonger itself
# (a private daemon on a Unix socket, no D-Bus), and its lock with flock.
{ have certmonger || [ -x /usr/sbin/certmonger ]; } || need+=(certmonger)
have flock || need+=(util-linux)
# The PostgreSQL record's cases start a server of their own (initdb and
# pg_ctl as user postgres, through runuser).
{ ls /usr/lib/postgresql/*/bin/pg_ctl > /dev/null 2>&1 && have psql; } || need+=(postgresql)
have runuser || need+=(util-linux)
# The demo and the stapling tests pick a free loopback port with it.
have python3 || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
[ -e /usr/lib/x86_64-linux-gnu/p11-kit-proxy.so ] || [ -e /usr/lib/aarch64-linux-gnu/p11-kit-proxy.so ] || need+=(p11-kit)
ls /usr/lib/*/engines-3/pkcs11.so /usr/lib/*/engines-3/libpkcs11.so >/dev/null 2>&1 || need+=(libengine-pkcs11-openssl)

with_pkilint=false with_tokens=false
for arg in "$@"; do
    case $arg in
        --with-pkilint) with_pkilint=true ;;
        --with-tokens) with_tokens=true ;;
        *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
    esac
done

# dpkg_has PACKAGE: installed (for libraries, which have no command).
dpkg_has() { dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
if $with_tokens; then
    # NSS softokn itself, p11-kit's remoting client module.
    dpkg_has libnss3 || need+=(libnss3)
    dpkg_has p11-kit-modules || need+=(p11-kit-modules)
    have p11-kit || need+=(p11-kit)
    # TPM 2.0: swtpm, tpm2-pkcs11 and tpm2_ptool, and tpm2-abrmd (the
    # resource manager, on a private D-Bus) with its TCTI and swtpm's.
    have swtpm || need+=(swtpm)
    have tpm2_startup || need+=(tpm2-tools)
    dpkg_has libtpm2-pkcs11-1 || need+=(libtpm2-pkcs11-1)
    have tpm2_ptool || need+=(libtpm2-pkcs11-tools)
    dpkg_has libtss2-tcti-swtpm0 || need+=(libtss2-tcti-swtpm0)
    dpkg_has tpm2-abrmd || need+=(tpm2-abrmd)
    dpkg_has libtss2-tcti-tabrmd0 || need+=(libtss2-tcti-tabrmd0)
    have dbus-daemon || need+=(dbus)
    # openCryptoki's soft token and its slot daemon.
    dpkg_has opencryptoki || need+=(opencryptoki)
    # OpenSC on a PKCS#15 card (tests/vcard): pcscd with vsmartcard's
    # virtual reader, the card in Debian's Python with its cryptography,
    # ip and unshare for the namespace they run in.
    have pcscd || [ -x /usr/sbin/pcscd ] || need+=(pcscd)
    dpkg_has vsmartcard-vpcd || need+=(vsmartcard-vpcd)
    /usr/bin/python3 -c 'import cryptography' 2>/dev/null || need+=(python3-cryptography)
    have ip || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
    have unshare || need+=(util-linux)
    # kryoptic's build: bindgen (libclang and its headers), OpenSSL's
    # Configure (perl, make), rusqlite (sqlite3).
    dpkg_has libclang1-14 || need+=(libclang1-14)
    dpkg_has libclang-common-14-dev || need+=(libclang-common-14-dev)
    dpkg_has libsqlite3-dev || need+=(libsqlite3-dev)
    have pkg-config || need+=(pkg-config)
    have make || need+=(make)
    have perl || need+=(perl)
    have cc || need+=(gcc)
    # Free ports, cargo metadata (and tpm2_ptool).
    have python3 || need+=(python3)
fi

if [ ${#need[@]} -gt 0 ]; then
    echo "install-deps: installing ${need[*]}" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if $with_pkilint && [ ! -x "$venv/bin/lint_pkix_cert" ]; then
    echo "install-deps: installing pkilint into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'pkilint==0.13.*'
fi
