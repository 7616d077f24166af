"""First boot of a scanner: move the boot folder to the data partition and redeem its claim code.

``python -m firmware.firstboot --boot /boot/firmware/receipts --data /var/lib/receipts`` (the
receipts-firstboot unit):

1. copies every file of the boot folder (provisioning/bootconfig.py) into the data folder,
   secrets with mode 0600;
2. in claim mode (``claim.json``): makes the device's own EC P-256 key and a CSR, and POSTs
   ``{"claim_code", "device_id", "csr_pem"}`` as JSON to ``{server_url}/api/v1/fleet/claim``
   over HTTPS, verifying the server with the folder's ``ca.pem``. The server answers 200 with
   ``{"device_id", "username", "password", "certificate_pem"}`` (certificate_pem may be null)
   or 4xx with ``{"code", "detail"}``; the credentials are installed with
   `provisioning.bootconfig.install_credentials` (the key never leaves the device);
3. deletes the boot folder's files, so no secret stays on the FAT partition.

Exit status: 0 done; 2 the server refused the claim (a new code is needed: no retry);
1 anything else (network down, server error: systemd retries).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from provisioning import bootconfig as bc
from provisioning.ca import key_pem, write_private
from provisioning.credentials import DeviceCredentials

log = logging.getLogger("firmware.firstboot")

CLAIM_PATH = "/api/v1/fleet/claim"
SECRETS = {bc.CLAIM_FILE, bc.PASSWORD_FILE, bc.KEY_FILE}
EXIT_REFUSED = 2


class ClaimRefused(RuntimeError):
    """The server refused the claim code (unknown, used, expired): retrying won't help."""


def copy_boot_folder(boot: Path, data: Path) -> list[Path]:
    """Copy the boot folder's files into `data` (secrets 0600)."""
    if not (boot / bc.AGENT_FILE).is_file():
        raise FileNotFoundError(f"{boot / bc.AGENT_FILE} is missing: nothing to install")
    data.mkdir(parents=True, exist_ok=True)
    copied = []
    for src in sorted(p for p in boot.iterdir() if p.is_file()):
        dst = data / src.name
        if src.name in SECRETS:
            write_private(dst, src.read_bytes())
        else:
            shutil.copyfile(src, dst)
        copied.append(dst)
    return copied


def redeem_claim(data: Path, timeout_s: float = 30.0) -> DeviceCredentials:
    """Exchange ``claim.json`` in `data` for credentials and install them there."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    claim = json.loads((data / bc.CLAIM_FILE).read_text(encoding="utf-8"))
    device_id = str(claim["device_id"])
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .sign(key, hashes.SHA256())
    )
    body = {
        "claim_code": claim["claim_code"],
        "device_id": device_id,
        "csr_pem": csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }
    url = str(claim["server_url"]).rstrip("/") + CLAIM_PATH
    if not url.startswith("https://"):
        raise ValueError(f"the claim URL must be https:// (got {url})")
    ca_file = data / bc.CA_FILE
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file.is_file() else None)
    reply = _post_json(url, body, context, timeout_s)
    creds = DeviceCredentials(username=str(reply["username"]), password=str(reply["password"]))
    cert = reply.get("certificate_pem")
    bc.install_credentials(
        data,
        creds,
        cert.encode("ascii") if cert else None,
        key_pem(key) if cert else None,
    )
    return creds


def _post_json(url: str, body: dict[str, Any], context: ssl.SSLContext, timeout_s: float) -> Any:
    request = urllib.request.Request(  # noqa: S310  (https only, checked by the caller)
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        if 400 <= exc.code < 500 and exc.code != 429:
            raise ClaimRefused(f"the server refused the claim ({exc.code}): {detail}") from exc
        raise


def clear_boot_folder(boot: Path) -> None:
    for path in boot.iterdir():
        if path.is_file():
            path.unlink()


def run(boot: Path, data: Path) -> int:
    try:
        copy_boot_folder(boot, data)
        if (data / bc.CLAIM_FILE).exists():
            creds = redeem_claim(data)
            log.info("claimed: broker credentials installed for %s", creds.username)
        clear_boot_folder(boot)
    except ClaimRefused as exc:
        log.error("%s: write a new boot folder with a fresh claim code", exc)
        return EXIT_REFUSED
    except (OSError, ValueError, KeyError) as exc:
        log.error("first boot failed, will retry: %s", exc)
        return 1
    log.info("first boot done: %s is ready", data / bc.AGENT_FILE)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--boot", type=Path, default=Path("/boot/firmware/receipts"))
    parser.add_argument("--data", type=Path, default=Path("/var/lib/receipts"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(args.boot, args.data)


if __name__ == "__main__":
    sys.exit(main())
