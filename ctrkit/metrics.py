"""Public metric API: the :class:`Metric` type, lookup by name and registration, GAUC."""
from .registry import register_metric
from .training.approx_auc import APPROX_AUC, AUCHistogram
from .training.gauc import GAUC, GAUCResult, gauc, rela_impr
from .training.metrics import Metric, get_metric, get_metrics, metric_direction

__all__ = ["Metric", "get_metric", "get_metrics", "metric_direction", "register_metric",
           "gauc", "GAUC", "GAUCResult", "rela_impr", "APPROX_AUC", "AUCHistogram"]
