"""Public home of the callbacks: ``from ctrkit.callbacks import EarlyStopping``."""
from .training.callbacks import *  # noqa: F401,F403
from .training.callbacks import __all__  # noqa: F401
