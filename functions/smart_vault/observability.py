"""The one place Logger, Tracer and Metrics are created (service and namespace from constants,
overridable by the POWERTOOLS_* variables the CDK app sets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from smart_vault.constants import METRIC_NAMESPACE, SERVICE_NAME

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRIC_NAMESPACE, service=SERVICE_NAME)

COUNT = MetricUnit.Count
GIGABYTES = MetricUnit.Gigabytes
SECONDS = MetricUnit.Seconds

# Every handler: the state input (validated by the models) and the Lambda context.
Handler = Callable[[Any, LambdaContext], dict[str, Any]]


def correlate(execution_name: str, instance_id: str | None = None) -> None:
    """Correlation id = execution + instance, on every log line of this invocation."""
    logger.set_correlation_id(f"{execution_name}/{instance_id}" if instance_id else execution_name)


def count(name: str, value: float = 1, unit: MetricUnit = COUNT) -> None:
    if value:
        metrics.add_metric(name=name, unit=unit, value=value)


def count_by(name: str, dimensions: dict[str, str], value: float = 1) -> None:
    """A count with its own dimensions (plus ``service``), flushed at once as its own EMF record
    so the dimensions never spread to the invocation's other metrics."""
    with single_metric(
        name=name,
        unit=COUNT,
        value=value,
        namespace=metrics.namespace,
        default_dimensions={"service": SERVICE_NAME, **dimensions},
    ):
        pass


def lambda_handler(func: Handler) -> Handler:
    """Wire Powertools around a handler: structured logs, a trace segment, EMF metrics."""
    # Tracer and Metrics type their decorators as returning ``Callable[..., Any]``; they keep
    # the handler's signature (functools.wraps), which this annotation says once.
    traced: Handler = tracer.capture_lambda_handler(metrics.log_metrics(func), capture_response=False)
    return logger.inject_lambda_context(traced, clear_state=True)
