#!/bin/bash
# Build the scanner image with pi-gen: firmware/image/build.sh /path/to/pi-gen
set -euo pipefail
PIGEN="${1:?usage: build.sh PATH_TO_PI_GEN_CHECKOUT (branch bookworm-arm64)}"
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "${HERE}/../.." && pwd)"
FILES="${HERE}/stage-receipts/00-install/files"
rm -f "${FILES}"/receipt_manager-*.whl
python3 -m pip wheel --no-deps -w "${FILES}" "${REPO}"
cp "${REPO}"/firmware/systemd/*.service "${REPO}"/firmware/systemd/*.mount "${FILES}/"
cp "${REPO}/firmware/systemd/watchdog.conf" "${FILES}/"
rm -rf "${PIGEN}/stage-receipts"
cp -r "${HERE}/stage-receipts" "${PIGEN}/"
cp "${HERE}/config" "${PIGEN}/config"
touch "${PIGEN}/stage2/SKIP_IMAGES"
cd "${PIGEN}" && ./build-docker.sh
