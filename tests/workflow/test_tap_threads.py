"""The AWS-call tap sees every call a handler makes, whatever thread makes it."""

from __future__ import annotations

from tests.workflow.conftest import instance


def test_calls_from_notifys_thread_pool_are_counted_and_faulted(run_scenario):
    # Given 9 instances: Notify reads their 9 outcome records from a thread pool (8 or more keys,
    # see smart_vault.aws.Store.get_many), and one of those reads is throttled once.
    fleet = [instance(f"web-{i}") for i in range(9)]
    run = run_scenario(
        instances=fleet,
        faults=[{"operation": "GetObject", "instance": "web-4", "error": "SlowDown", "count": 1}],
    )["runs"][0]

    # Then the pool's reads are in the count and the scripted fault reached one of them.
    assert run["faults_injected"] == {"GetObject:SlowDown": 1}
    # Notify reads the inventory once and each of the 9 records in its pool.
    assert run["api_calls"]["s3:GetObject"] >= 1 + 9
