"""Metrics: the :class:`Metric` type, lookup by name and registration, exact and approximate AUC,
GAUC."""
from ..registry import register_metric
from .approx_auc import APPROX_AUC, AUCHistogram
from .base import Metric, get_metric, get_metrics, metric_direction
from .gauc import GAUC, GAUCResult, gauc, rela_impr

__all__ = ["Metric", "get_metric", "get_metrics", "metric_direction", "register_metric",
           "gauc", "GAUC", "GAUCResult", "rela_impr", "APPROX_AUC", "AUCHistogram"]
