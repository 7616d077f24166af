#!/usr/bin/env bash
# Sets up this machine for Receipt Manager: the Debian packages the demo and the tests use, and a
# virtual environment (.venv) with the project and its extras. Safe to run again: it only installs
# what is missing. Usage: infra/scripts/bootstrap.sh [EXTRAS]   (default: edge,server,dev,ops)
set -euo pipefail
cd "$(dirname "$0")/../.."

extras="${1:-edge,server,dev,ops}"

# Debian packages: the MQTT broker, Tesseract (the OCR baseline), fonts for the receipt
# generator, and what the browser and operations tests drive.
apt_packages=(
  systemd openssl
  mosquitto tesseract-ocr tesseract-ocr-eng
  prometheus prometheus-alertmanager nginx
  fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-noto-core fonts-noto-mono
  fonts-terminus-otb xfonts-terminus
  chromium
)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$python" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
# Reinstall only when pyproject.toml changed since the last install.
stamp=.venv/.rm-installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/-}
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing receipt-manager[$extras] into .venv"
  .venv/bin/pip install -q -e ".[$extras]"
  rm -f .venv/.rm-installed-*
  touch "$stamp"
fi
