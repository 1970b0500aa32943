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

from .ports import (AutoInt, BST, DCN, DCNMix, DeepFM, DIEN, DIN, PNN, WDL,  # noqa: F401
                    xDeepFM)

# DeepCTR-Torch's names (and positional order): ``from ctrkit.models import *`` ports imports
__all__ = ["BaseModel", "DIN", "DIEN", "DeepFM", "WDL", "DCN", "DCNMix", "AutoInt", "xDeepFM",
           "PNN", "BST", "ESMM", "MMOE", "PLE", "SharedBottom"]
