#!/usr/bin/env bash
# Installs the Debian packages spamlens builds and reads text with, each only when missing:
# libtesseract (Tesseract 5 OCR) and Leptonica with their headers, libclang (tesseract-sys makes its
# bindings at build time), pkg-config, and the OCR trained data (tesseract-ocr-eng, -rus, -chi-sim
# 1:4.1.0-2, the files every spamlens model that reads text is pinned to). Used by the README's
# first command and by .ci/run. Needs root (or sudo) and Debian's package archive.
set -euo pipefail

packages=(pkg-config libtesseract-dev libleptonica-dev libclang-dev
    tesseract-ocr-eng tesseract-ocr-rus tesseract-ocr-chi-sim)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "system-packages.sh: run as root to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "== installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A stale package list is refreshed once when an install fails.
$sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
