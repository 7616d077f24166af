"""The claim contract end to end: firmware/firstboot.py redeems a boot folder's code over HTTPS
against the real API (uvicorn with a certificate from the deployment's CA)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from firmware import firstboot
from provisioning import bootconfig as bc
from provisioning.ca import CertificateAuthority
from provisioning.mosquitto import verify_password
from server.api.app import create_app
from server.fleet.repository import RegistryRepository
from server.fleet.runtime import FleetRuntime
from server.settings import Settings
from tests.conftest import free_tcp_port, wait_for_port
from tests.server.conftest import Db, make_tenant
from tests.server.fleet.conftest import new_claim_code


@pytest.fixture
def https_api(
    db: Db, runtime: FleetRuntime, ca: CertificateAuthority, tmp_path: Path
) -> Iterator[str]:
    pki = tmp_path / "pki"
    ca.issue_server(["127.0.0.1", "localhost"]).save(pki / "api.pem", pki / "api.key")
    app = create_app(Settings(database_url=db.url), engine=db.engine, fleet=runtime)
    port = free_tcp_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ssl_certfile=str(pki / "api.pem"),
            ssl_keyfile=str(pki / "api.key"),
            log_config=None,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port("127.0.0.1", port)
    yield f"https://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def boot_folder(folder: Path, ca: CertificateAuthority, url: str, code: str) -> None:
    bc.write_boot_folder(
        folder,
        bc.BootConfig(
            device_id="till-7",
            broker_host="broker.example",
            ca_cert_pem=ca.cert_pem,
            server_url=url,
            claim_code=code,
        ),
    )


def test_firstboot_redeems_its_code_and_installs_the_credentials(
    db: Db, https_api: str, ca: CertificateAuthority, tmp_path: Path
):
    make_tenant(db, "Acme")
    data = tmp_path / "data"
    boot_folder(data, ca, https_api, new_claim_code(db, "Acme"))

    creds = firstboot.redeem_claim(data)

    assert creds.username == "till-7"
    assert (data / bc.PASSWORD_FILE).read_text().strip() == creds.password
    assert ca.device_id_of((data / bc.CERT_FILE).read_bytes()) == "till-7"
    assert (data / bc.KEY_FILE).stat().st_mode & 0o077 == 0
    assert not (data / bc.CLAIM_FILE).exists()
    with db.sessions() as session:
        account = RegistryRepository(session).account("till-7")
        assert account is not None and verify_password(creds.password, account.password_hash)

    # the same code again (a second scanner, or a replay): refused for good, no retry
    again = tmp_path / "again"
    code = new_claim_code(db, "Acme")
    boot_folder(again, ca, https_api, code)
    firstboot.redeem_claim(again)
    boot_folder(again, ca, https_api, code)
    started = time.monotonic()
    with pytest.raises(firstboot.ClaimRefused, match="409"):
        firstboot.redeem_claim(again)
    assert time.monotonic() - started < 10
