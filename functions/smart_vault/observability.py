"""The one place Logger, Tracer and Metrics are created (service and namespace from constants,
overridable by the POWERTOOLS_* variables the CDK app sets)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from smart_vault.constants import METRIC_NAMESPACE, SERVICE_NAME

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRIC_NAMESPACE, service=SERVICE_NAME)

COUNT = MetricUnit.Count
GIGABYTES = MetricUnit.Gigabytes


def correlate(execution_name: str, instance_id: str | None = None) -> None:
    """Correlation id = execution + instance, on every log line of this invocation."""
    logger.set_correlation_id(f"{execution_name}/{instance_id}" if instance_id else execution_name)


def count(name: str, value: float = 1, unit: Any = COUNT) -> None:
    if value:
        metrics.add_metric(name=name, unit=unit, value=value)


def lambda_handler(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Wire Powertools around a handler: structured logs, a trace segment, EMF metrics."""

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    @functools.wraps(func)
    def wrapper(event: Any, context: Any) -> Any:
        return func(event, context)

    return wrapper
