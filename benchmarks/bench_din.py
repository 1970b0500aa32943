"""DIN speed and memory: ctrkit vs DeepCTR-Torch on the same work (issue 6's spec).

100,000 rows; vocabularies user 10,000, item 50,000, category 500; history length 50 with random
valid lengths 1..50 (zero padded); history shares the candidate's tables; embedding_dim 8; DIN
defaults (attention (64, 16) Dice, DNN (256, 128) relu); Adam; batch 1024; one epoch; metrics
logloss and AUC; predict with batch 1024; torch.set_num_threads(2).

Each measurement runs in a fresh subprocess (so peak RSS is that run's own), alternating the
libraries; medians (min-max) over --runs runs are printed, and each ratio as the median
(min-max) of the per-run ratios. The peers run in their own scratch environments, never as
ctrkit dependencies, and ctrkit never imports them:

    # DeepCTR-Torch 0.3.0 (used when importable by --deepctr-python; default: this interpreter)
    python -m venv /tmp/dctr && /tmp/dctr/bin/pip install torch==2.13.0 \
        deepctr-torch==0.3.0 scikit-learn pandas
    # FuxiCTR 2.3.10; its DIN is in the repository's model_zoo/DIN, not in the wheel
    python -m venv /tmp/fuxi && /tmp/fuxi/bin/pip install torch==2.13.0 && \
        /tmp/fuxi/bin/pip install fuxictr==2.3.10
    git -C FuxiCTR archive HEAD model_zoo | tar -x -C /tmp/fuxictr_model_zoo --strip-components=1
    python benchmarks/bench_din.py --deepctr-python /tmp/dctr/bin/python \
        --fuxictr-python /tmp/fuxi/bin/python --fuxictr-model-zoo /tmp/fuxictr_model_zoo \
        [--policy mixed_bfloat16]   # adds ctrkit under that dtype policy, alternated

FuxiCTR's run builds its feature map from the same arrays (``fuxictr_feature_map``), saves
them as the ``.npz`` its ``NpzDataLoader`` reads (before the clock; the loading is timed)
and runs its own ``fit``/``predict`` with DIN_default's settings at the spec's sizes.

Other modes: --breakdown (share of fit and predict time in embeddings, attention, top MLP,
optimizer, input conversion, metrics, and peak memory), --scaling (train rows/s over T and
rows), --profile (where ctrkit's training time goes, per operator), --profile-predict (the
same for predict).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This checkout's ctrkit, never another one installed (e.g. editable) in the environment.
if REPO_ROOT not in sys.path[:1]:
    sys.path.insert(0, REPO_ROOT)

ROWS, USERS, ITEMS, CATES, T, DIM, BATCH = 100_000, 10_000, 50_000, 500, 50, 8, 1024


def make_data(rows=ROWS, maxlen=T, seed=0, with_probability=False):
    """``(x, y)``; with ``with_probability`` also the true click probability of every row.

    The label depends only on the share of the history in the candidate's category, and with
    500 categories only about 5% of the rows have any match: the true probabilities score an
    AUC of about 0.504, so an AUC well above that on the training rows is memorised ids."""
    rng = np.random.default_rng(seed)
    item_cate = rng.integers(1, CATES, ITEMS)
    item_cate[0] = 0
    lens = rng.integers(1, maxlen + 1, rows)
    valid = np.arange(maxlen)[None] < lens[:, None]
    hist_item = np.where(valid, rng.integers(1, ITEMS, (rows, maxlen)), 0)
    item = rng.integers(1, ITEMS, rows)
    x = {"user": rng.integers(0, USERS, rows), "item": item, "cate": item_cate[item],
         "hist_item": hist_item, "hist_cate": item_cate[hist_item], "seq_length": lens}
    overlap = (x["hist_cate"] == x["cate"][:, None]).sum(1) / lens
    prob = 1 / (1 + np.exp(-(4 * overlap - 1)))
    y = (rng.random(rows) < prob).astype(np.float32)
    x = {k: v.astype(np.int64) for k, v in x.items()}
    return (x, y, prob) if with_probability else (x, y)


def features(mod, maxlen=T):
    S, V = mod.SparseFeat, mod.VarLenSparseFeat
    return [S("user", USERS, DIM), S("item", ITEMS, DIM), S("cate", CATES, DIM),
            V(S("hist_item", ITEMS, DIM, embedding_name="item"), maxlen, length_name="seq_length"),
            V(S("hist_cate", CATES, DIM, embedding_name="cate"), maxlen, length_name="seq_length")]


def auc_score(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC with tied scores at their mean rank (Mann-Whitney), as scikit-learn's
    ``roc_auc_score``, in numpy alone: the workers run in the peers' environments."""
    y, p = np.ravel(y).astype(bool), np.ravel(p).astype(np.float64)
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mean rank of each value
    ranks = mean_rank[inverse]
    pos = float(y.sum())
    neg = float(len(y)) - pos
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def attention_flops_per_behaviour(att_dim=2 * DIM, hidden=(64, 16)) -> int:
    """Forward multiply-adds x2 of the local activation unit per valid behaviour (DESIGN.md §3
    with the split-weight identity: [k, q⊙k, q] (3E) -> H1, then H1 -> H2 -> 1)."""
    dims = [3 * att_dim] + list(hidden) + [1]
    return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))


def dnn_flops_per_row(att_dim=2 * DIM, hidden=(256, 128)) -> int:
    """Forward FLOPs per row outside the behaviours: the top MLP."""
    dims = [3 * DIM + att_dim] + list(hidden) + [1]
    return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))


def train_flops(lengths: np.ndarray) -> float:
    """Training FLOPs (forward + backward = 3x the forward GEMM FLOPs) of one epoch."""
    return 3.0 * (attention_flops_per_behaviour() * float(lengths.sum())
                  + dnn_flops_per_row() * len(lengths))


def dense_matmul_gflops(m: int, k: int, n: int, reps: int = 20) -> float:
    """Best-of-``reps`` GFLOP/s of a dense (m, k) @ (k, n) float32 matmul in this process."""
    import torch
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * m * k * n / best / 1e9


def worker(impl: str, rows: int, maxlen: int, epochs: int = 1, threads: int = 2,
           policy: str = "float32", model_zoo: str = "", loader_workers: int = 0) -> dict:
    """One measured run of ``impl`` in this process: fit one epoch, predict every row."""
    import torch
    torch.set_num_threads(threads)
    x, y = make_data(rows, maxlen)
    if impl == "fuxictr":
        train_s, predict_s, pred, peak = fuxictr_fit_predict(x, y, maxlen, epochs, model_zoo,
                                                             loader_workers)
    else:
        if impl == "ctrkit":
            import ctrkit
            model = ctrkit.build("din", features(ctrkit, maxlen), seed=0)
            model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"],
                          dtype_policy=policy)
        else:
            from deepctr_torch.models import DIN
            import deepctr_torch.inputs as dinputs
            model = DIN(features(dinputs, maxlen), ["item", "cate"], device="cpu", seed=0)
            model.compile("adam", "binary_crossentropy",
                          metrics=["binary_crossentropy", "auc"])
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0)
        t1 = time.perf_counter()
        pred = model.predict(x, batch_size=BATCH)
        t2 = time.perf_counter()
        peak = peak_rss_mb()  # before the benchmark's own AUC check runs
        train_s, predict_s = t1 - t0, t2 - t1
    mean_len = float(x["seq_length"].mean())
    return {"impl": impl, "train_rows_s": rows * epochs / train_s,
            "predict_rows_s": rows / predict_s, "peak_rss_mb": peak,
            "train_gflops": train_flops(x["seq_length"]) * epochs / train_s / 1e9,
            "matmul_gflops": dense_matmul_gflops(int(BATCH * mean_len), 4 * DIM, 64),
            "auc": auc_score(y, pred)}


def fuxictr_feature_map(maxlen: int) -> dict:
    """The spec's features in FuxiCTR's ``feature_map.json`` format (what its
    ``FeatureProcessor`` writes): ids are used as they are (0 is padding for items and
    categories, as in ctrkit's and DeepCTR's runs), the histories share the candidate's
    tables (``share_embedding``) and stay (B, T) sequences for DIN (``feature_encoder``
    null); ``seq_length`` is not an input, FuxiCTR's DIN masks ``hist_item != 0``."""
    seq = {"source": "user", "type": "sequence", "max_len": maxlen, "padding_idx": 0,
           "feature_encoder": None}
    feats = [{"user": {"source": "user", "type": "categorical", "vocab_size": USERS}},
             {"item": {"source": "item", "type": "categorical", "vocab_size": ITEMS,
                       "padding_idx": 0}},
             {"cate": {"source": "item", "type": "categorical", "vocab_size": CATES,
                       "padding_idx": 0}},
             {"hist_item": dict(seq, vocab_size=ITEMS, share_embedding="item")},
             {"hist_cate": dict(seq, vocab_size=CATES, share_embedding="cate")}]
    return {"dataset_id": "bench_din", "num_fields": len(feats),
            "total_features": USERS + ITEMS + CATES, "input_length": 3 + 2 * maxlen,
            "labels": ["label"], "features": feats}


def fuxictr_fit_predict(x: dict, y: np.ndarray, maxlen: int, epochs: int, model_zoo: str,
                        loader_workers: int):
    """FuxiCTR's DIN (``model_zoo/DIN/src`` of the FuxiCTR repository, imported from
    ``model_zoo``; this runs in FuxiCTR's own environment) on the spec, fed the way FuxiCTR
    feeds it: the columns saved as one ``.npz`` file (before the clock starts), read by its
    ``NpzDataLoader`` (timed: that is FuxiCTR's input conversion). Its config names:
    DIN_default of ``model_zoo/DIN/config/model_config.yaml`` with the spec's sizes.
    Returns ``(train seconds, predict seconds, predictions, peak RSS MB)``."""
    import importlib.util
    import json as json_
    import tempfile
    import fuxictr
    from fuxictr.features import FeatureMap
    from fuxictr.pytorch.dataloaders.npz_dataloader import NpzDataLoader
    from fuxictr.pytorch.torch_utils import seed_everything
    init = os.path.join(model_zoo, "DIN", "src", "__init__.py")
    spec = importlib.util.spec_from_file_location("fuxictr_model_zoo_din", init)
    src = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = src
    spec.loader.exec_module(src)
    with tempfile.TemporaryDirectory() as tmp:
        fmap_json = os.path.join(tmp, "feature_map.json")
        with open(fmap_json, "w") as f:
            json_.dump(fuxictr_feature_map(maxlen), f)
        data = os.path.join(tmp, "train.npz")
        np.savez(data, label=y, **{k: v for k, v in x.items() if k != "seq_length"})
        params = dict(  # DIN_default's keys; the spec's sizes; no validation or checkpoints
            model="DIN", dataset_id="bench_din", loss="binary_crossentropy",
            metrics=["logloss", "AUC"], task="binary_classification", optimizer="adam",
            learning_rate=1.0e-3, embedding_regularizer=1.0e-6, net_regularizer=0,
            batch_size=BATCH, embedding_dim=DIM, dnn_hidden_units=[256, 128],
            dnn_activations="relu", attention_hidden_units=[64, 16],
            attention_hidden_activations="Dice", attention_output_activation=None,
            attention_dropout=0, din_target_field=[("item", "cate")],
            din_sequence_field=[("hist_item", "hist_cate")], din_use_softmax=False,
            net_dropout=0, batch_norm=False, epochs=epochs, shuffle=True, seed=0,
            monitor="AUC", monitor_mode="max", model_root=tmp, verbose=0, gpu=-1,
            eval_steps=2 ** 62)  # no validation pass inside the epoch
        seed_everything(seed=0)
        feature_map = FeatureMap("bench_din", tmp)
        feature_map.load(fmap_json, params)
        model = src.DIN(feature_map, **params)
        # fit ends by reloading the best checkpoint, which only validation writes: keep the
        # trained weights instead (the epoch itself runs FuxiCTR's own train_epoch).
        model.load_weights = lambda checkpoint: None
        t0 = time.perf_counter()
        train_gen = NpzDataLoader(feature_map, data, batch_size=BATCH, shuffle=True,
                                  num_workers=loader_workers)
        model.fit(train_gen, epochs=epochs, validation_data=None)
        t1 = time.perf_counter()
        test_gen = NpzDataLoader(feature_map, data, batch_size=BATCH, shuffle=False,
                                 num_workers=loader_workers)
        pred = model.predict(test_gen)
        t2 = time.perf_counter()
        peak = peak_rss_mb()
    if fuxictr.__version__ != "2.3.10":
        print(f"note: FuxiCTR {fuxictr.__version__}, the spec names 2.3.10", file=sys.stderr)
    if len(pred) != len(y):
        raise RuntimeError(f"FuxiCTR predicted {len(pred)} rows for {len(y)}")
    return t1 - t0, t2 - t1, pred, peak


def op_timer():
    """Context manager giving {(op, output shape with the first dim as 'n'): (calls, seconds)}:
    the wall time inside each aten call, forward and backward. torch.profiler is not used: its
    own allocations defeat the heap reuse of ctrkit's loops and make every op that allocates
    a large output look several times slower (92k page faults per 30 predict batches under it,
    none without it)."""
    import contextlib
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    ops: dict = {}

    class OpTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            t = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            dt = time.perf_counter() - t
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
            key = (str(func.overloadpacket.__name__), ("n",) + shape[1:] if shape else ())
            n, tot = ops.get(key, (0, 0.0))
            ops[key] = (n + 1, tot + dt)
            return out

    @contextlib.contextmanager
    def scope():
        with OpTimer():
            yield ops
    return scope()


def print_ops(ops: dict, units: int, unit: str, n_means: str, top: int = 16) -> None:
    op_s = sum(v[1] for v in ops.values())
    print(f"by operator and output shape (n: rows of that call, {n_means}), wall time inside "
          f"each call; the timing hooks slow the ops a little ({1e3 * op_s / units:.2f} "
          f"ms/{unit} in all), so read the shares:")
    for (name, shape), (n, tot) in sorted(ops.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"  {name:28s} {str(shape):14s} {n / units:5.1f} calls/{unit} "
              f"{1e3 * tot / units:6.3f} ms/{unit}  {100 * tot / op_s:5.1f}%")


def profile(rows: int, maxlen: int, threads: int, steps: int = 20) -> None:
    """Where ctrkit's training time goes: per-phase wall time over ``steps`` steps, then the
    wall time of each operator (forward and backward) over as many more."""
    import torch
    import ctrkit
    torch.set_num_threads(threads)
    x, y = make_data(rows, maxlen)
    model = ctrkit.build("din", features(ctrkit, maxlen), seed=0)
    model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"])
    model.fit({k: v[:2 * BATCH] for k, v in x.items()}, y[:2 * BATCH], batch_size=BATCH,
              verbose=0)  # warm-up (and the allocator tuning fit applies)
    data = model.trainer.prepare(x, y)
    tr = model.trainer
    phases = {"index batch": 0.0, "forward+loss": 0.0, "regularizer": 0.0, "backward": 0.0,
              "optimizer": 0.0}

    def run(timed: bool) -> None:
        for step in range(steps):
            idx = torch.randperm(len(data))[:BATCH]
            t0 = time.perf_counter()
            batch, yb = data.x.take(idx), data.y[idx]
            t1 = time.perf_counter()
            loss = tr._loss(model(batch), yb, None)
            t2 = time.perf_counter()
            reg = model.regularization_loss(batch)
            total = loss if reg is None else loss + reg
            t3 = time.perf_counter()
            tr.optimizer.zero_grad(set_to_none=True)
            total.backward()
            t4 = time.perf_counter()
            tr.optimizer.step()
            t5 = time.perf_counter()
            if timed:
                for k, a, b in zip(phases, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                    phases[k] += b - a

    run(True)
    total_s = sum(phases.values())
    print(f"ctrkit DIN training step, {steps} steps of {BATCH} rows, T={maxlen}, "
          f"threads {threads}: {1e3 * total_s / steps:.1f} ms/step")
    for k, v in phases.items():
        print(f"  {k:14s} {1e3 * v / steps:7.1f} ms  {100 * v / total_s:5.1f}%")
    with op_timer() as ops:
        run(False)
    print_ops(ops, steps, "step", "valid behaviours M or the batch", top=20)


def profile_predict(rows: int, maxlen: int, threads: int, batches: int = 60) -> None:
    """Where ctrkit's predict time goes: per-phase wall time of ``batches`` 1024-row batches
    (run exactly as predict runs them: eval, inference mode, folded constants reused), then
    the wall time of each operator over the same loop."""
    import torch
    import ctrkit
    from ctrkit.inputs import prepare_inputs
    from ctrkit.layers.frozen import frozen_weights
    from ctrkit.utils import allocator
    torch.set_num_threads(threads)
    x, y = make_data(max(rows, batches * BATCH), maxlen)
    model = ctrkit.build("din", features(ctrkit, maxlen), seed=0)
    model.compile("adam", "binary_crossentropy")
    model.fit({k: v[:10 * BATCH] for k, v in x.items()}, y[:10 * BATCH], batch_size=BATCH,
              verbose=0)  # running statistics away from their initial values
    cols = prepare_inputs(model.features, x)
    model.eval()
    allocator.tune()
    phases = {"pack + lookups": 0.0, "attention unit + pooling": 0.0, "top MLP": 0.0}

    def loop(timed: bool) -> None:
        with torch.inference_mode(), frozen_weights():
            for i in range(batches):
                t0 = time.perf_counter()
                batch = cols.slice(i * BATCH, (i + 1) * BATCH)
                emb, q, k_valid, rows_, pos, t = model._embed_packed(batch)
                t1 = time.perf_counter()
                interest = model.attention.pool_packed(q, k_valid, rows_, pos, t)
                t2 = time.perf_counter()
                h = model.dnn(torch.cat([emb[f.name] for f in model.sparse] + [interest], -1))
                model.head(model.dnn_linear(h).squeeze(-1))
                t3 = time.perf_counter()
                if timed:
                    for k, a, b in zip(phases, (t0, t1, t2), (t1, t2, t3)):
                        phases[k] += b - a

    loop(False)
    loop(True)
    total_s = sum(phases.values())
    print(f"ctrkit DIN predict, {batches} batches of {BATCH} rows, T={maxlen}, threads "
          f"{threads}: {1e3 * total_s / batches:.2f} ms/batch ({batches * BATCH / total_s:.0f} "
          f"rows/s without the input checks)")
    for k, v in phases.items():
        print(f"  {k:26s} {1e3 * v / batches:6.2f} ms  {100 * v / total_s:5.1f}%")
    with op_timer() as ops:
        loop(False)
    print_ops(ops, batches, "batch", "a chunk of <= 8192 behaviours or the batch")


class PhaseTimers:
    """Wall time per phase, from wrappers the breakdown puts around ctrkit's functions in
    this process only (ctrkit itself is unchanged). A phase entered again while it runs
    (a wrapped function calling another of the same phase) is counted once."""

    def __init__(self) -> None:
        self.seconds: dict = {}
        self.depth: dict = {}

    def wrap(self, phase: str, fn):
        import functools

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self.depth.get(phase):
                return fn(*args, **kwargs)
            self.depth[phase] = 1
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t
                self.depth[phase] = 0
        return timed

    def wrap_iter(self, phase: str, fn):
        """``fn`` returns an iterator: time every ``next`` (the batch gathering)."""
        import functools

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            it = iter(fn(*args, **kwargs))
            while True:
                t = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t
                yield item
        return timed


def patch_phases(timers: PhaseTimers) -> None:
    """Wrap ctrkit's input conversion, metrics, backward and batch gathering in ``timers``
    (class and module attributes, this process only)."""
    import torch
    from ctrkit.metrics import prediction_store
    from ctrkit.training import keras_methods, trainer
    from ctrkit.training.data_adapters import ArrayDataAdapter
    for mod in (trainer, keras_methods):  # the data adapters: validation and conversion
        if hasattr(mod, "get_data_adapter"):
            mod.get_data_adapter = timers.wrap("input conversion", mod.get_data_adapter)
    for name in ("train_batches", "batches"):
        setattr(ArrayDataAdapter, name,
                timers.wrap_iter("batch gathering", getattr(ArrayDataAdapter, name)))
    for cls in (prediction_store.PredictionStore, prediction_store.StreamingMetrics):
        cls.add = timers.wrap("metrics", cls.add)
    trainer.Trainer.store_metrics = timers.wrap("metrics", trainer.Trainer.store_metrics)
    trainer.Trainer.train_loss = timers.wrap("forward + loss", trainer.Trainer.train_loss)
    torch.Tensor.backward = timers.wrap("backward", torch.Tensor.backward)


#: the DIN parts the op-level pass attributes time to, by the attribute names of the model's
#: children and methods (names without a match count as "other model ops")
PART_NAMES = (("embedding", ("embed", "lookup")), ("attention", ("attention", "attend", "pool")),
              ("top MLP", ("dnn", "head", "mlp")), ("L2 regularizer", ("regulari",)))


def part_of(name: str):
    name = name.lower()
    for part, keys in PART_NAMES:
        if any(k in name for k in keys):
            return part
    return None


def attribute_ops(model, trainer) -> tuple:
    """``(dispatch mode class, totals)``: time inside every aten op, attributed to the
    DIN part that ran it. Forward ops belong to the part whose child module or method is on
    the call stack; backward ops to the part whose forward created their autograd node (the
    node's sequence number, recorded between a probe node made on entering and on leaving
    each part)."""
    import functools
    import inspect
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    stack: list = []
    node_part: dict = {}
    totals: dict = {}
    probing = [False]

    def seq() -> int:
        probing[0] = True
        try:
            return torch.ones(1, requires_grad=True).mul(1).grad_fn._sequence_nr()
        finally:
            probing[0] = False

    def scoped(part: str, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            graph = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
            start = seq() if graph else None
            stack.append(part)
            try:
                return fn(*args, **kwargs)
            finally:
                stack.pop()
                if graph:
                    for n in range(start + 1, seq()):
                        node_part.setdefault(n, part)  # the innermost part leaves first
        return run

    def methods(obj, skip_private: bool):
        for attr in dir(type(obj)):
            if attr in dir(torch.nn.Module) or (skip_private and attr.startswith("_")):
                continue
            fn = getattr(obj, attr, None)
            if inspect.ismethod(fn):
                yield attr, fn

    for name, child in model.named_children():
        part = part_of(name)
        if part:
            for attr, fn in [("forward", child.forward)] + list(methods(child, True)):
                setattr(child, attr, scoped(part, fn))
    for attr, fn in methods(model, False):
        if attr != "forward" and part_of(attr):
            setattr(model, attr, scoped(part_of(attr), fn))
    # ops outside these (input conversion, batch gathering, metrics) are not the model's
    model.forward = scoped("other model ops", model.forward)
    trainer._loss = scoped("loss", trainer._loss)

    class PartTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            t = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            node = None if probing[0] else torch._C._current_autograd_node()
            if node is not None or (stack and not probing[0]):
                if node is None:
                    part = stack[-1]
                else:
                    part = node_part.get(node._sequence_nr(), "other model ops")
                    if node.name().endswith("AccumulateGrad"):
                        part = "gradient accumulation"
                totals[part] = totals.get(part, 0.0) + time.perf_counter() - t
            return out
    return PartTimer, totals


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def breakdown(rows: int, maxlen: int, threads: int, policy: str = "float32") -> None:
    """Where ``fit`` and ``predict`` spend their time on the spec, in three passes of one
    process: (1) wall time of the phases (input conversion, batch gathering, forward + loss,
    backward, optimizer, metrics; the rest is the training loop, callbacks and Python around
    them), (2) the same run under an op timer that splits the model's own work
    (forward + backward ops) between embedding lookups, attention (unit + pooling), the top
    MLP, the loss and the regularizer, (3) the same run under tracemalloc (peak of the
    Python heap, numpy included, torch tensors not); and the peak RSS of pass 1."""
    import resource as _resource
    import tracemalloc
    import torch
    import ctrkit
    torch.set_num_threads(threads)
    x, y = make_data(rows, maxlen)
    rss_data = current_rss_mb()

    def build():
        model = ctrkit.build("din", features(ctrkit, maxlen), seed=0)
        model.compile("adam", "binary_crossentropy", metrics=["logloss", "auc"],
                      dtype_policy=policy)
        return model

    def run(model, what: str) -> None:
        if what == "fit":
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        else:
            model.predict(x, batch_size=BATCH)

    timers = PhaseTimers()
    patch_phases(timers)
    model = build()
    opt = model.trainer.optimizer
    opt.step = timers.wrap("optimizer", opt.step)
    opt.zero_grad = timers.wrap("optimizer", opt.zero_grad)
    model.forward = timers.wrap("model forward", model.forward)
    if hasattr(model, "encode_inputs"):  # raw values -> ids (a no-op for ids)
        model.encode_inputs = timers.wrap("input conversion", model.encode_inputs)
    walls, phases, rss = {}, {}, {}
    for what in ("fit", "predict"):
        timers.seconds.clear()
        t = time.perf_counter()
        run(model, what)
        walls[what] = time.perf_counter() - t
        phases[what] = dict(timers.seconds)
        rss[what] = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024.0
    # pass 2: a fresh model, the same run, op-level attribution
    model = build()
    mode, totals = attribute_ops(model, model.trainer)
    parts, heap = {}, {}
    for what in ("fit", "predict"):
        totals.clear()
        with mode():
            run(model, what)
        parts[what] = dict(totals)
    # pass 3: tracemalloc alone (it slows Python code, so it is kept out of the timed passes)
    model = build()
    tracemalloc.start()
    for what in ("fit", "predict"):
        tracemalloc.reset_peak()
        run(model, what)
        heap[what] = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    print(f"ctrkit DIN breakdown, {rows} rows, T={maxlen}, batch {BATCH}, threads {threads}, "
          f"policy {policy}, one epoch then predict of every row")
    for what in ("fit", "predict"):
        wall, ph = walls[what], phases[what]
        model_s = (ph.get("forward + loss", 0.0) + ph.get("backward", 0.0)
                   if what == "fit" else ph.get("model forward", 0.0))
        op_total = sum(v for k, v in parts[what].items())
        print(f"\n{what}: {wall:.2f} s ({rows / wall:,.0f} rows/s), share of the wall time:")
        rows_out = []
        for part in ("embedding", "attention", "top MLP", "loss", "L2 regularizer",
                     "gradient accumulation", "other model ops"):
            share = parts[what].get(part, 0.0) / op_total if op_total else 0.0
            if share:
                rows_out.append((f"model: {part}", model_s * share))
        for phase in ("optimizer", "input conversion", "batch gathering", "metrics"):
            if phase in ph:
                rows_out.append((phase, ph[phase]))
        rest = wall - model_s - sum(ph.get(k, 0.0) for k in
                                    ("optimizer", "input conversion", "batch gathering",
                                     "metrics"))
        rows_out.append(("rest (loop, callbacks, checks)", rest))
        for name, sec in rows_out:
            print(f"  {name:34s} {sec:7.3f} s  {100 * sec / wall:5.1f}%")
        print(f"  (the model's {model_s:.2f} s split by the op-level pass's shares; the "
              f"op timer saw {op_total:.2f} s of aten work there)")
    print(f"\npeak memory: RSS {rss_data:.0f} MB after import + data; peak RSS (ru_maxrss) "
          f"{rss['fit']:.0f} MB by the end of fit, {rss['predict']:.0f} MB by the end of "
          f"predict; tracemalloc peak (Python heap incl. numpy, not torch tensors) "
          f"{heap['fit']:.1f} MB during fit, {heap['predict']:.1f} MB during predict")


def scaling(args) -> None:
    """Train rows/s of ctrkit for T in {10, 50, 200} and rows in args.scaling_rows."""
    print(f"scaling: ctrkit train rows/s (one epoch, fresh process each, threads {args.threads})")
    print(f"{'rows':>9s} {'T':>4s} {'mean len':>8s} {'rows/s':>9s} {'s/epoch':>8s} "
          f"{'us/row':>7s} {'us/behaviour':>12s}")
    for rows in args.scaling_rows:
        for maxlen in (10, 50, 200):
            res = run_worker(sys.executable, "ctrkit", rows, maxlen, args.threads)
            mean_len = (maxlen + 1) / 2
            us_row = 1e6 / res["train_rows_s"]
            print(f"{rows:9d} {maxlen:4d} {mean_len:8.1f} {res['train_rows_s']:9.0f} "
                  f"{rows / res['train_rows_s']:8.1f} {us_row:7.1f} {us_row / mean_len:12.2f}",
                  flush=True)


def run_worker(python: str, impl: str, rows: int, maxlen: int, threads: int = 2,
               policy: str = "float32", extra: tuple = ()) -> dict:
    cmd = [python, os.path.abspath(__file__), "--worker", impl, "--rows", str(rows),
           "--maxlen", str(maxlen), "--threads", str(threads), *extra]
    if policy != "float32":
        cmd += ["--policy", policy]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the {impl} worker failed ({' '.join(cmd)}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def has_module(python: str, module: str) -> bool:
    r = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
    return r.returncode == 0


def spread(values) -> str:
    """``median (min-max)`` of a list of numbers."""
    values = list(values)
    return (f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})")


KEYS = ("train_rows_s", "predict_rows_s", "peak_rss_mb", "auc", "train_gflops", "matmul_gflops")


def print_ratios(results: dict, a: str, b: str, label: str, targets: dict) -> None:
    """The three ratios of ``a`` over ``b``, each the median of the per-run ratios (runs
    alternated, so run i of each ran side by side) with their min-max."""
    parts = []
    for key, name in (("train_rows_s", "train rows/s"), ("predict_rows_s", "predict rows/s"),
                      ("peak_rss_mb", "peak RSS")):
        ratios = [ra[key] / rb[key] for ra, rb in zip(results[a], results[b])]
        target = f" [target {targets[key]}]" if key in targets else ""
        parts.append(f"{name} {spread(ratios)}{target}")
    print(f"  {label}: " + ", ".join(parts))


def compare(args) -> None:
    impls = ["ctrkit"]
    if args.policy != "float32":  # the same ctrkit run under the mixed policy, alternated
        impls.append(args.policy)
    if has_module(args.deepctr_python, "deepctr_torch"):
        impls.append("deepctr")
    if args.fuxictr_python:
        if not has_module(args.fuxictr_python, "fuxictr"):
            raise SystemExit(f"--fuxictr-python {args.fuxictr_python}: cannot import fuxictr "
                             f"there; install it in its own venv (see the module docstring).")
        impls.append("fuxictr")
    results = {i: [] for i in impls}
    for r in range(args.runs):
        for impl in impls:  # alternate the libraries run by run
            py = {"deepctr": args.deepctr_python,
                  "fuxictr": args.fuxictr_python}.get(impl, sys.executable)
            policy = impl if impl in ("mixed_bfloat16", "mixed_float16") else "float32"
            extra = (("--fuxictr-model-zoo", args.fuxictr_model_zoo, "--fuxictr-loader-workers",
                      str(args.fuxictr_loader_workers)) if impl == "fuxictr" else ())
            res = run_worker(py, "ctrkit" if policy != "float32" else impl, args.rows,
                             args.maxlen, args.threads, policy, extra)
            results[impl].append(res)
            print(f"run {r + 1} {impl:14s} train {res['train_rows_s']:9.0f} rows/s  predict "
                  f"{res['predict_rows_s']:9.0f} rows/s  peak RSS {res['peak_rss_mb']:7.0f} MB  "
                  f"auc {res['auc']:.4f}  {res['train_gflops']:.2f} GFLOP/s", flush=True)
    med = {i: {k: statistics.median(r[k] for r in results[i]) for k in KEYS} for i in impls}
    print(f"\nmedians (min-max) of {args.runs} runs, {os.cpu_count()} cores, torch threads "
          f"{args.threads}, {args.rows} rows, T={args.maxlen}")
    for i in impls:
        m, rs = med[i], results[i]
        rng = {k: f"{min(r[k] for r in rs):.0f}-{max(r[k] for r in rs):.0f}" for k in KEYS}
        print(f"  {i:14s} train {m['train_rows_s']:9.0f} ({rng['train_rows_s']}) rows/s  "
              f"predict {m['predict_rows_s']:9.0f} ({rng['predict_rows_s']}) rows/s  "
              f"peak RSS {m['peak_rss_mb']:5.0f} ({rng['peak_rss_mb']}) MB  auc {m['auc']:.4f}")
    x, y, prob = make_data(args.rows, args.maxlen, with_probability=True)
    print(f"  (auc: one epoch, on the training rows. The true click probabilities score "
          f"{auc_score(y, prob):.4f}: the labels are close to noise, so an auc above that "
          f"is memorised ids, a measure of how fast the first steps fit, not of quality.)")
    print("ratios, median of the per-run ratios (min-max):")
    if args.policy in med:
        print_ratios(results, args.policy, "ctrkit", f"ctrkit {args.policy} / float32",
                     {"train_rows_s": ">= 1.3x"})
    if "deepctr" in med:
        print_ratios(results, "ctrkit", "deepctr", "ctrkit / DeepCTR-Torch",
                     {"train_rows_s": ">= 6x", "predict_rows_s": ">= 7x",
                      "peak_rss_mb": "<= 0.45x"})
    if "fuxictr" in med:
        print_ratios(results, "ctrkit", "fuxictr", "ctrkit / FuxiCTR",
                     {"train_rows_s": ">= 2x", "predict_rows_s": ">= 2x",
                      "peak_rss_mb": "<= 0.5x"})
    c = med["ctrkit"]
    print(f"  roofline: ctrkit's training step achieves {c['train_gflops']:.2f} GFLOP/s of GEMM "
          f"work ({attention_flops_per_behaviour()} forward FLOPs per valid behaviour, "
          f"x3 for forward+backward, plus the top MLP); a dense {int(BATCH * (args.maxlen + 1) / 2)}"
          f"x{4 * DIM} @ {4 * DIM}x64 float32 matmul in the same process: "
          f"{c['matmul_gflops']:.1f} GFLOP/s ({100 * c['train_gflops'] / c['matmul_gflops']:.0f}%)")
    if "deepctr" not in med:
        print("  deepctr_torch not importable: no DeepCTR-Torch ratios (see the module docstring)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--worker", choices=["ctrkit", "deepctr", "fuxictr"])
    p.add_argument("--policy", default="float32",
                   choices=["float32", "mixed_bfloat16", "mixed_float16"],
                   help="also run ctrkit under this dtype policy, alternated with float32")
    p.add_argument("--rows", type=int, default=ROWS)
    p.add_argument("--maxlen", type=int, default=T)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--deepctr-python", default=sys.executable,
                   help="interpreter with deepctr_torch (its runs are skipped when it lacks it)")
    p.add_argument("--fuxictr-python", default=None,
                   help="interpreter with fuxictr 2.3.10: adds FuxiCTR's DIN to the comparison")
    p.add_argument("--fuxictr-model-zoo", default=None,
                   help="local copy of the FuxiCTR repository's model_zoo folder (DIN lives in "
                        "model_zoo/DIN/src, not in the wheel); required with --fuxictr-python")
    p.add_argument("--fuxictr-loader-workers", type=int, default=0,
                   help="num_workers of FuxiCTR's NpzDataLoader (default 0: in-process, within "
                        "the spec's threads and counted in its peak RSS)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (spec: 2)")
    p.add_argument("--scaling", action="store_true", help="train rows/s over T and rows")
    p.add_argument("--scaling-rows", type=int, nargs="+", default=[10_000, 100_000],
                   help="row counts for --scaling (add 1000000 for the slow 10^6 point)")
    p.add_argument("--profile", action="store_true", help="where ctrkit's step time goes")
    p.add_argument("--profile-predict", action="store_true",
                   help="where ctrkit's predict time goes, per 1024-row batch")
    p.add_argument("--breakdown", action="store_true",
                   help="share of fit and predict time in embeddings, attention, top MLP, "
                        "optimizer, input conversion, metrics and the rest, and peak memory")
    args = p.parse_args()
    if args.fuxictr_python or args.worker == "fuxictr":
        zoo = args.fuxictr_model_zoo
        if not zoo:
            p.error("--fuxictr-python needs --fuxictr-model-zoo PATH (a copy of FuxiCTR's "
                    "model_zoo folder, e.g. git archive of reczoo/FuxiCTR's model_zoo)")
        if not os.path.isfile(os.path.join(zoo, "DIN", "src", "DIN.py")):
            p.error(f"--fuxictr-model-zoo {zoo}: no DIN/src/DIN.py in it; pass the model_zoo "
                    f"folder of the FuxiCTR repository")
        args.fuxictr_model_zoo = os.path.abspath(zoo)
    if args.fuxictr_loader_workers < 0:
        p.error(f"--fuxictr-loader-workers {args.fuxictr_loader_workers}: must be >= 0")
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows, args.maxlen, threads=args.threads,
                                policy=args.policy, model_zoo=args.fuxictr_model_zoo or "",
                                loader_workers=args.fuxictr_loader_workers)))
    elif args.breakdown:
        breakdown(args.rows, args.maxlen, args.threads, args.policy)
    elif args.profile:
        profile(min(args.rows, 50_000), args.maxlen, args.threads)
    elif args.profile_predict:
        profile_predict(min(args.rows, 60 * BATCH), args.maxlen, args.threads)
    elif args.scaling:
        scaling(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
