#!/usr/bin/env sh
# Install TorchRec for ctrkit's strategy='torchrec' (sharded embedding tables) on a CPU machine
# with torch 2.13.0 (see docs/scaling.md). Order matters:
#   - fbgemm-gpu-cpu 1.8.0 is the FBGEMM build for torch 2.13 (1.9 needs torch 2.14);
#   - torchrec's metadata requires the CUDA package `fbgemm-gpu`, which installs into the same
#     module folder as fbgemm-gpu-cpu, so torchrec goes in last and with --no-deps, after its
#     other dependencies.
# On a CUDA machine install `fbgemm-gpu==1.8.0` (the CUDA build matching your torch) instead of
# fbgemm-gpu-cpu, then torchrec the same way.
set -eu
python -m pip install "fbgemm-gpu-cpu==1.8.0" tensordict "torchmetrics==1.0.3" pyre-extensions iopath
python -m pip install --no-deps "torchrec==1.8.0"
python -c "import torchrec, fbgemm_gpu; print('torchrec', torchrec.__version__, 'ready')"
