#!/bin/bash -e
# pi-gen stage: install the agent and make the image a scanner.
# Read-only root (overlayroot: the root is mounted read-only under a tmpfs overlay), a writable
# data partition RMDATA mounted at /var/lib/receipts, the camera and the hardware watchdog on.
HERE="$(dirname "$0")"

# --- the agent: a venv that also sees apt's picamera2/gpiozero/lgpio
install -d "${ROOTFS_DIR}/opt/receipts"
install -m 644 "${HERE}"/files/receipt_manager-*.whl "${ROOTFS_DIR}/opt/receipts/"
on_chroot <<'CHROOT'
set -e
id receipts >/dev/null 2>&1 || useradd --system --home-dir /var/lib/receipts --shell /usr/sbin/nologin \
	--groups video,gpio receipts
python3 -m venv --system-site-packages /opt/receipts/venv
/opt/receipts/venv/bin/pip install --no-cache-dir "$(ls /opt/receipts/receipt_manager-*.whl)[edge]"
CHROOT

# --- systemd units and the hardware watchdog
install -m 644 "${HERE}"/files/receipts-agent.service "${ROOTFS_DIR}/etc/systemd/system/"
install -m 644 "${HERE}"/files/receipts-firstboot.service "${ROOTFS_DIR}/etc/systemd/system/"
install -m 644 "${HERE}"/files/var-lib-receipts.mount "${ROOTFS_DIR}/etc/systemd/system/"
install -m 644 "${HERE}"/files/receipts-data-partition.service "${ROOTFS_DIR}/etc/systemd/system/"
install -m 755 "${HERE}"/files/receipts-data-partition "${ROOTFS_DIR}/usr/local/sbin/"
install -d "${ROOTFS_DIR}/etc/systemd/system.conf.d"
install -m 644 "${HERE}"/files/watchdog.conf "${ROOTFS_DIR}/etc/systemd/system.conf.d/"
on_chroot <<'CHROOT'
systemctl enable receipts-data-partition.service var-lib-receipts.mount \
	receipts-firstboot.service receipts-agent.service
CHROOT

# --- the fleet's "reboot" command: the agent (user receipts, NoNewPrivileges) asks logind over
#     D-Bus; this polkit rule lets exactly that user reboot, nothing else
install -d "${ROOTFS_DIR}/etc/polkit-1/rules.d"
cat > "${ROOTFS_DIR}/etc/polkit-1/rules.d/50-receipts-reboot.rules" <<'RULES'
polkit.addRule(function(action, subject) {
    if ((action.id == "org.freedesktop.login1.reboot" ||
         action.id == "org.freedesktop.login1.reboot-multiple-sessions") &&
        subject.user == "receipts") {
        return polkit.Result.YES;
    }
});
RULES

# --- boot config: camera autodetect, hardware watchdog
CONFIG_TXT="${ROOTFS_DIR}/boot/firmware/config.txt"
grep -q '^camera_auto_detect=1' "${CONFIG_TXT}" || echo 'camera_auto_detect=1' >> "${CONFIG_TXT}"
grep -q '^dtparam=watchdog=on' "${CONFIG_TXT}" || echo 'dtparam=watchdog=on' >> "${CONFIG_TXT}"

# --- read-only root: overlayroot keeps / unchanged across power cuts; logs go to RAM
echo 'overlayroot="tmpfs:swap=1,recurse=0"' > "${ROOTFS_DIR}/etc/overlayroot.local.conf"
install -d "${ROOTFS_DIR}/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' \
	> "${ROOTFS_DIR}/etc/systemd/journald.conf.d/volatile.conf"

# --- keep the root partition at its built size (no grow-to-card on first boot), so that
#     receipts-data-partition.service can put RMDATA into the rest of the card
sed -i 's| init=/usr/lib/raspberrypi-sys-mods/firstboot||' "${ROOTFS_DIR}/boot/firmware/cmdline.txt"
