#!/usr/bin/env bash
# Debian packages Shuken needs, installed only when missing (runs as root on our machines).
# `system-deps.sh test` adds what only the tests need: Debian's chromium for the browser tests (Playwright
# drives /usr/bin/chromium; it never downloads a browser of its own), and ninja to build llama-server, the
# gateway bench's baseline (scripts/build-llama-server.sh).
set -euo pipefail
needed=(
  build-essential cmake git python3-venv
  # OCR for scanned PDFs and images, with the language packs Shuken serves
  tesseract-ocr tesseract-ocr-eng tesseract-ocr-jpn tesseract-ocr-ara tesseract-ocr-hin tesseract-ocr-fra tesseract-ocr-chi-sim
  # fonts to render the multilingual test fixtures (CJK, Arabic shaping via raqm, Devanagari)
  fonts-noto-cjk fonts-noto-core fonts-hosny-amiri libraqm0
  # the egress tests run inside a network namespace with no route (unshare + ip)
  util-linux iproute2
)
if [ "${1:-}" = "test" ]; then
  needed+=(chromium ninja-build)
fi
missing=()
for package in "${needed[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
