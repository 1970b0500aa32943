"""Callbacks for ``fit``/``evaluate``/``predict`` (Keras protocol)."""
from .backup_and_restore import BackupAndRestore
from .base import Callback, CallbackList, check_callbacks
from .csv_logger import CSVLogger
from .early_stopping import EarlyStopping
from .history import History
from .lambda_callback import LambdaCallback
from .learning_rate_scheduler import LearningRateScheduler
from .model_checkpoint import ModelCheckpoint
from .monitor import Monitor, MonitorCallback
from .progbar import ProgbarLogger
from .reduce_lr_on_plateau import ReduceLROnPlateau
from .tensorboard import TensorBoard
from .terminate_on_nan import TerminateOnNaN

__all__ = ["BackupAndRestore", "Callback", "CallbackList", "CSVLogger", "EarlyStopping", "History",
           "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint", "Monitor",
           "MonitorCallback", "ProgbarLogger", "ReduceLROnPlateau", "TensorBoard",
           "TerminateOnNaN", "check_callbacks"]
