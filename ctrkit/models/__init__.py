"""Built-in models; importing this package registers them."""
from .base import BaseModel
from . import din  # noqa: F401  (registers 'din', 'dice', attention layers)
from . import deepfm, embedding_mlp, pnn, wide_deep  # noqa: F401  ('deepfm', 'base', 'pnn', 'wdl')
from . import dcn  # noqa: F401  ("dcn", "dcnv2")
from . import dien  # noqa: F401  ("dien", "attentional_gru"; after din: it reuses its unit)
from . import autoint, bst, xdeepfm  # noqa: F401  ("autoint", "bst", "xdeepfm")
from .esmm import ESMM  # multi-task: "esmm", "mmoe", "ple", "shared_bottom"
from .mmoe import MMOE
from .ple import PLE
from .shared_bottom import SharedBottom

__all__ = ["BaseModel", "ESMM", "MMOE", "PLE", "SharedBottom"]
