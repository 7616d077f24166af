"""Terraform for AWS, parsed with python-hcl2 (terraform itself is not available here) and
checked for what matters: encryption, no public buckets, 7-year retention, a protected and
private database, Fargate services that roll back, an MQTT endpoint that confines devices."""

from __future__ import annotations

import copy
import json
from typing import Any

import hcl2
import pytest

from tests.infra.contract import INFRA
from tests.infra.settings_names import env_names

TF = INFRA / "terraform"
SEVEN_YEARS_DAYS = 7 * 365 + 2  # with the leap days


def _clean(value: Any) -> Any:
    """python-hcl2 keeps HCL quoting (`"\\"x\\""`) and adds markers; strip both."""
    if isinstance(value, dict):
        return {
            _clean(k): _clean(v)
            for k, v in value.items()
            if k not in ("__is_block__", "__comments__")
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _load() -> dict[str, Any]:
    merged: dict[str, Any] = {"resource": {}, "data": {}, "locals": {}, "variable": {}}
    for path in sorted(TF.glob("*.tf")):
        with path.open() as f:
            doc = _clean(hcl2.load(f))
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                merged["resource"].setdefault(rtype, {}).update(named)
        for block in doc.get("data", []):
            for dtype, named in block.items():
                merged["data"].setdefault(dtype, {}).update(named)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
        for block in doc.get("variable", []):
            merged["variable"].update(block)
    return merged


TFDOC = _load()


def _one(block: Any) -> dict[str, Any]:
    found = block[0] if isinstance(block, list) else block
    assert isinstance(found, dict)
    return found


def bucket_problems(doc: dict[str, Any]) -> list[str]:
    res = doc["resource"]
    problems = []
    retention = int(doc["locals"]["retention_days"])
    for name in res["aws_s3_bucket"]:
        pab = res.get("aws_s3_bucket_public_access_block", {}).get(name)
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls",
                 "restrict_public_buckets")  # fmt: skip
        if pab is None or not all(pab.get(f) is True for f in flags):
            problems.append(f"{name}: public access not fully blocked")
        sse = res.get("aws_s3_bucket_server_side_encryption_configuration", {}).get(name)
        algo = sse and _one(_one(sse["rule"])["apply_server_side_encryption_by_default"])
        if not algo or algo["sse_algorithm"] != "aws:kms":
            problems.append(f"{name}: not encrypted with KMS")
        versioning = res.get("aws_s3_bucket_versioning", {}).get(name)
        if not versioning or _one(versioning["versioning_configuration"])["status"] != "Enabled":
            problems.append(f"{name}: not versioned")
        lifecycle = res.get("aws_s3_bucket_lifecycle_configuration", {}).get(name)
        rules = lifecycle["rule"] if lifecycle else []
        expiries = [
            _one(r["expiration"])["days"]
            for r in rules
            if r.get("status") == "Enabled" and "expiration" in r
        ]
        days = [retention if d == "${local.retention_days}" else int(d) for d in expiries]
        if not days or min(days) < SEVEN_YEARS_DAYS:
            problems.append(f"{name}: kept less than 7 years ({days})")
        if name not in res.get("aws_s3_bucket_policy", {}):
            problems.append(f"{name}: no bucket policy (TLS only)")
        if "acl" in res["aws_s3_bucket"][name]:
            problems.append(f"{name}: uses ACLs")
    return problems


def test_buckets_are_private_encrypted_versioned_and_kept_seven_years() -> None:
    assert set(TFDOC["resource"]["aws_s3_bucket"]) == {"images", "backups"}
    assert bucket_problems(TFDOC) == []
    assert int(TFDOC["locals"]["retention_days"]) >= SEVEN_YEARS_DAYS


@pytest.mark.parametrize(
    ("resource", "change", "expected"),
    [
        ("aws_s3_bucket_public_access_block", "drop", "public access not fully blocked"),
        ("aws_s3_bucket_server_side_encryption_configuration", "drop", "not encrypted"),
        ("aws_s3_bucket_lifecycle_configuration", "short", "kept less than 7 years"),
    ],
)
def test_bucket_checks_catch_a_weakened_bucket(resource: str, change: str, expected: str) -> None:
    doc = copy.deepcopy(TFDOC)
    if change == "drop":
        del doc["resource"][resource]["images"]
    else:
        _one(doc["resource"][resource]["images"]["rule"][0]["expiration"])["days"] = 365
    assert any(expected in p for p in bucket_problems(doc))


def test_tls_only_bucket_policy_denies_plain_http() -> None:
    policy = TFDOC["data"]["aws_iam_policy_document"]["tls_only"]
    statement = _one(policy["statement"])
    assert statement["effect"] == "Deny"
    condition = _one(statement["condition"])
    assert condition["variable"] == "aws:SecureTransport"
    assert condition["values"] == ["false"]


def test_database_is_encrypted_protected_private_and_backed_up() -> None:
    cluster = TFDOC["resource"]["aws_rds_cluster"]["main"]
    assert cluster["engine"] == "aurora-postgresql"
    assert cluster["storage_encrypted"] is True
    assert cluster["deletion_protection"] is True
    assert cluster["skip_final_snapshot"] is False
    assert int(cluster["backup_retention_period"]) >= 30
    assert cluster.get("manage_master_user_password") is True  # no password in the state
    instances = TFDOC["resource"]["aws_rds_cluster_instance"]["main"]
    assert int(instances["count"]) >= 2
    assert instances["publicly_accessible"] is False
    sg = TFDOC["resource"]["aws_security_group"]["db"]
    ingress = _one(sg["ingress"])
    assert "cidr_blocks" not in ingress
    assert ingress["security_groups"] == ["${aws_security_group.tasks.id}"]


def test_kms_key_rotates() -> None:
    assert TFDOC["resource"]["aws_kms_key"]["data"]["enable_key_rotation"] is True


def test_vpc_has_private_subnets_in_two_zones() -> None:
    subnets = TFDOC["resource"]["aws_subnet"]
    assert int(subnets["private"]["count"]) == 2
    assert subnets["public"]["map_public_ip_on_launch"] is False


def test_fargate_services_for_api_and_ingest_roll_back_on_failure() -> None:
    services = TFDOC["resource"]["aws_ecs_service"]
    assert set(services) == {"api", "ingest"}
    for name, service in services.items():
        assert service["launch_type"] == "FARGATE", name
        breaker = _one(service["deployment_circuit_breaker"])
        assert breaker == {"enable": True, "rollback": True}, name
        assert _one(service["network_configuration"])["assign_public_ip"] is False, name
    assert int(services["api"]["deployment_minimum_healthy_percent"]) == 100
    assert "load_balancer" in services["api"]
    assert "load_balancer" not in services["ingest"]


def test_each_ingest_worker_has_its_own_client_id_and_never_runs_twice() -> None:
    """The broker keeps one session per client id: one service per worker, old task stops first."""
    service = TFDOC["resource"]["aws_ecs_service"]["ingest"]
    task = TFDOC["resource"]["aws_ecs_task_definition"]["ingest"]
    assert service["count"] == task["count"] == "${var.ingest_workers}"
    assert int(service["desired_count"]) == 1
    assert int(service["deployment_maximum_percent"]) == 100
    assert "count.index" in service["name"]
    assert "RM_INGEST__CLIENT_ID" in str(task["container_definitions"])
    assert "count.index" in str(task["container_definitions"])


def test_load_balancer_is_https_and_checks_ready() -> None:
    res = TFDOC["resource"]
    assert res["aws_lb"]["api"]["enable_deletion_protection"] is True
    assert res["aws_lb"]["api"]["drop_invalid_header_fields"] is True
    https = res["aws_lb_listener"]["https"]
    assert https["protocol"] == "HTTPS" and "TLS13" in https["ssl_policy"]
    redirect = _one(_one(res["aws_lb_listener"]["http_redirect"]["default_action"])["redirect"])
    assert redirect["protocol"] == "HTTPS"
    assert _one(res["aws_lb_target_group"]["api"]["health_check"])["path"] == "/ready"


def test_task_environment_uses_server_settings() -> None:
    known = env_names()
    names = [e["name"] for e in TFDOC["locals"]["server_environment"]]
    names += [e["name"] for e in TFDOC["locals"]["server_secrets"]]
    assert names and set(names) <= known
    assert "RM_DATABASE_URL" in [e["name"] for e in TFDOC["locals"]["server_secrets"]]


def test_mqtt_endpoint_confines_each_device_to_its_subtree() -> None:
    policies = TFDOC["resource"]["aws_iot_policy"]
    assert set(policies) == {"device", "server"}
    device = str(policies["device"]["policy"])
    root = TFDOC["locals"]["device_root"]
    assert "iot:Connection.Thing.ThingName" in root
    assert "local.device_root" in device
    assert "rm/v1/dev/*" not in device  # never another device's topics
    assert "$share/ingest/rm/v1/dev/*" in str(policies["server"]["policy"])
    assert "aws_iot_endpoint" in TFDOC["data"]


def test_every_file_parses() -> None:
    files = sorted(TF.glob("*.tf"))
    assert len(files) >= 6
    for path in files:
        with path.open() as f:
            assert hcl2.load(f), path
    json.dumps(TFDOC)  # plain data all the way down
