"""Logger, Tracer and Metrics, created once per container and shared by every module."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class MetricsRecorder:
    """The domain's `Recorder`, backed by CloudWatch embedded metrics."""

    def count(self, name: str, value: int = 1, **dimensions: str) -> None:
        if not dimensions:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            return
        # Dimensions of one metric only (e.g. skip reason), flushed right away.
        with single_metric(
            name=name, unit=MetricUnit.Count, value=value, default_dimensions=metrics.default_dimensions
        ) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)
