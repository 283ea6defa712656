#!/usr/bin/env bash
# install-deps.sh - install the Debian packages trustgate needs, skipping
# what is already installed.  Usage: scripts/install-deps.sh [build|check|bench]
#   build  compilers and libraries (default)
#   check  build + what the tests need (cmocka, Node.js for the OpenAI client test,
#          Debian's chromium and a CJK font for the browser tests)
#   bench  build + wrk and nginx for the benchmark
set -euo pipefail

mode=${1:-build}
pkgs=(build-essential cmake pkg-config libevent-dev libcurl4-openssl-dev libjansson-dev
      libyaml-dev libsqlite3-dev libssl-dev libicu-dev libpcre2-dev liblinear-dev)
case "$mode" in
  build) ;;
  check) pkgs+=(libcmocka-dev curl sqlite3 chromium fonts-wqy-microhei) ;;
  bench) pkgs+=(wrk nginx curl) ;;
  *) echo "usage: $0 [build|check|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js (for the official OpenAI client test) may come from elsewhere than Debian.
if [ "$mode" = check ] && ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
