#!/usr/bin/env bash
# Installs what the tests and the demo need, only when it is missing:
# SoftHSM2, OpenSC's pkcs11-tool, GnuTLS's certtool and p11tool, p11-kit,
# NSS's certutil,
# OpenSSL with engine_pkcs11, mandoc (Debian packages), and pkilint from
# PyPI into the project's venv. Safe to run again: it does nothing when
# everything is there.
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
# The demo and the stapling tests pick a free loopback port with it.
have python3 || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
[ -e /usr/lib/x86_64-linux-gnu/p11-kit-proxy.so ] || [ -e /usr/lib/aarch64-linux-gnu/p11-kit-proxy.so ] || need+=(p11-kit)
ls /usr/lib/*/engines-3/pkcs11.so /usr/lib/*/engines-3/libpkcs11.so >/dev/null 2>&1 || need+=(libengine-pkcs11-openssl)

if [ ${#need[@]} -gt 0 ]; then
    echo "install-deps: installing ${need[*]}" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "${1:-}" = "--with-pkilint" ] && [ ! -x "$venv/bin/lint_pkix_cert" ]; then
    echo "install-deps: installing pkilint into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'pkilint==0.13.*'
fi
