"""Instances a run does not back up are named, never silently left out."""

from __future__ import annotations

import json

from smart_vault.models import RunContext
from smart_vault_sim.scenario import parse_scenario
from smart_vault_sim.simulator import BUCKET, Simulation

from .conftest import BASE, by_name, instance


def _tagged(name: str, value: str) -> dict:
    return instance(name, tags={"backup": value, "Name": name})


def test_near_miss_tag_values_are_skipped_and_named(run_scenario):
    # Given one instance tagged exactly, three tagged as users mistype it, one opted out, one untagged
    report = run_scenario(
        instances=[
            _tagged("web-1", "True"),
            _tagged("typo-lower", "true"),
            _tagged("typo-upper", "TRUE"),
            _tagged("typo-space", "True "),
            _tagged("off-1", "False"),
            instance("plain-1", tags={}),
        ]
    )
    run = report["runs"][0]
    rows = by_name(run)
    # Then the exact one is backed up and the near misses are skipped, each saying why
    assert rows["web-1"]["status"] == "backed_up"
    for name, value in [("typo-lower", "true"), ("typo-upper", "TRUE"), ("typo-space", "True ")]:
        assert rows[name]["status"] == "skipped"
        assert f"backup={value!r} is not exactly 'True'" in rows[name]["error"]
        assert rows[name]["snapshots"] == []
    # And instances that do not ask for a backup are not reported at all
    assert "off-1" not in rows and "plain-1" not in rows
    # And the alert says it is a warning and names every skipped instance
    (alert,) = run["alerts"]
    assert alert["subject"] == "Smart Vault WARNING: 3 instance(s) skipped, 1 backed up"
    for name in ("typo-lower", "typo-upper", "typo-space"):
        assert name in alert["message"]
    # And discovery stays one paginated query, however the tags are spelt
    assert run["api_calls"]["ec2:DescribeInstances"] == 1
    assert run["execution"]["status"] == "SUCCEEDED"


def test_a_run_that_selects_nothing_warns():
    report = _simulate(instances=[instance("plain-1", tags={})])
    run = report["runs"][0]
    assert run["instances"] == [] and run["execution"]["status"] == "SUCCEEDED"
    (alert,) = run["alerts"]
    assert alert["subject"] == "Smart Vault WARNING: no instance selected for backup"
    assert "no instance carries the tag backup=True exactly" in alert["message"]


def test_only_near_misses_is_nothing_selected_and_names_them():
    report = _simulate(instances=[_tagged("typo-1", "true")])
    (alert,) = report["runs"][0]["alerts"]
    assert alert["subject"] == "Smart Vault WARNING: no instance selected for backup"
    assert "typo-1" in alert["message"] and "'true'" in alert["message"]


def test_an_instance_that_vanished_before_its_snapshot_is_named(run_scenario):
    # EC2 answers CreateSnapshots for an instance terminated since discovery with
    # InvalidInstanceID.NotFound (CreateSnapshots, Amazon EC2 API Reference: common errors).
    report = run_scenario(
        instances=[instance("web-1"), instance("gone-1")],
        faults=[{"operation": "CreateSnapshots", "instance": "gone-1", "error": "InvalidInstanceID.NotFound"}],
    )
    run = report["runs"][0]
    assert by_name(run)["gone-1"]["status"] == "skipped"
    (alert,) = run["alerts"]
    assert "1 instance(s) skipped" in alert["subject"]
    assert "gone-1" in alert["message"] and "instance no longer exists" in alert["message"]


def test_the_audit_record_lists_the_skipped_instance_with_its_reason():
    scenario = parse_scenario({**BASE, "instances": [instance("web-1"), _tagged("typo-1", " TRUE ")]})
    sim = Simulation(scenario)
    with sim.emulated() as account:
        sim._run_once(0, scenario.runs[0])
        run_id = RunContext.run_id_for(scenario.runs[0])
        keys = [
            o["Key"]
            for o in account.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{run_id}/")["Contents"]
            if o["Key"].endswith("/audit.json")
        ]
        (key,) = keys
        audit = json.loads(account.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    rows = {row["name"]: row for row in audit["instances"]}
    assert rows["typo-1"]["status"] == "skipped" and rows["typo-1"]["step"] == "Discover"
    assert "' TRUE ' is not exactly 'True'" in rows["typo-1"]["reason"]
    assert audit["summary"]["skipped"] == 1 and audit["summary"]["backed_up"] == 1


def _simulate(**parts):
    from smart_vault_sim.simulator import simulate

    return simulate(parse_scenario({**BASE, **parts}))
