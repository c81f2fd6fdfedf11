#!/usr/bin/env bash
# Installs what percrec needs to build, test and demo on Debian 12 (run as root, or with sudo
# available). Idempotent: it installs only what is missing and does nothing when all is present.
set -euo pipefail

need_apt=()
# Build: OpenSSL, libopus, libvpx, SQLite, pkg-config. Tests: libsrtp2 (independent SRTP oracle),
# ffmpeg/ffprobe, mkvtoolnix (mkvinfo), oggz-tools (oggz-validate), opus-tools (opusinfo), the
# sqlite3 and openssl command-line tools (raw SQL on archives, reading key files).
packages=(libssl-dev libopus-dev libvpx-dev libsqlite3-dev pkg-config libsrtp2-dev
          ffmpeg mkvtoolnix oggz-tools opus-tools sqlite3 openssl)
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        need_apt+=("$p")
    fi
done
if ! command -v python3 >/dev/null 2>&1; then
    need_apt+=(python3 python3-cryptography)
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bootstrap: installing ${need_apt[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Python `cryptography` is the independent oracle for AES key wrap with padding in the tests.
if ! python3 -c "import cryptography.hazmat.primitives.keywrap" >/dev/null 2>&1; then
    echo "bootstrap: installing Python cryptography"
    python3 -m pip install --quiet cryptography 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages cryptography \
        || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null
fi

# Python oracles: `pyhpke` opens the recorder's sealed epoch keys (RFC 9180); `scapy` writes
# and reads the pcap/pcapng fixtures the capture reader is checked against.
for module in pyhpke scapy; do
    if ! python3 -c "import $module" >/dev/null 2>&1; then
        echo "bootstrap: installing Python $module"
        python3 -m pip install --quiet "$module" 2>/dev/null \
            || python3 -m pip install --quiet --break-system-packages "$module"
    fi
done

if ! command -v swift >/dev/null 2>&1; then
    echo "bootstrap: the Swift toolchain (6.x) is not on PATH; install it first" >&2
    exit 1
fi

for lib in openssl opus vpx sqlite3 libsrtp2; do
    pkg-config --exists "$lib" || { echo "bootstrap: pkg-config cannot find $lib" >&2; exit 1; }
done
echo "bootstrap: ok (swift $(swift --version 2>/dev/null | head -1 | sed 's/.*version \([0-9.]*\).*/\1/'), openssl $(pkg-config --modversion openssl), libsrtp2 $(pkg-config --modversion libsrtp2))"
