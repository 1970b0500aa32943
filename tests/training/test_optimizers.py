"""Named optimizers: torch's updates and state, without importing torch._dynamo."""
import subprocess
import sys
import textwrap

import pytest
import torch

from ctrkit.optimizers import create_optimizer

TORCH = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
         "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop}


def _params(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(40, 8, generator=g)),
            torch.nn.Parameter(torch.randn(8, generator=g))]


@pytest.mark.parametrize("name", sorted(TORCH))
def test_named_optimizer_updates_equal_torchs_own_class(name):
    ours, ref = _params(0), _params(0)
    opt = create_optimizer(name, ours, lr=0.05)
    kwargs = {"fused": opt.defaults["fused"]} if "fused" in opt.defaults else {}
    torch_opt = TORCH[name](ref, lr=0.05, **kwargs)
    assert isinstance(opt, TORCH[name])
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for p, q, gr in zip(ours, ref, grads):
            p.grad, q.grad = gr.clone(), gr.clone()
        opt.step()
        torch_opt.step()
        opt.zero_grad()
        torch_opt.zero_grad()
    for p, q in zip(ours, ref):
        assert torch.equal(p, q)
        assert p.grad is None
    # state round-trips through torch's own class in both directions
    torch_opt.load_state_dict(opt.state_dict())
    opt.load_state_dict(torch_opt.state_dict())
    assert opt.state_dict()["param_groups"][0]["lr"] == 0.05


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_step_runs_without_autograd_restores_grad_mode_and_runs_hooks(name):
    params = _params(0)
    opt = create_optimizer(name, params, **({"fused": False} if name == "adam" else {}))
    calls = []
    opt.register_step_post_hook(lambda *a: calls.append(1))
    params[0].grad = torch.ones_like(params[0])
    before = params[0].detach().clone()
    with torch.enable_grad():  # an in-place update of a leaf under autograd would raise
        opt.step()
        assert torch.is_grad_enabled()
    assert params[0].is_leaf and params[0].grad_fn is None
    assert not torch.equal(params[0].detach(), before)
    assert calls == [1]


def test_training_with_named_optimizer_does_not_import_dynamo():
    code = textwrap.dedent("""
        import sys, numpy as np, torch, ctrkit
        from ctrkit.callbacks import ReduceLROnPlateau
        feats = [ctrkit.SparseFeat("u", 5, 4), ctrkit.SparseFeat("i", 7, 4)]
        rng = np.random.default_rng(0)
        x = {"u": rng.integers(0, 5, 64), "i": rng.integers(0, 7, 64)}
        y = rng.integers(0, 2, 64).astype("float32")
        m = ctrkit.build("base", feats, seed=0)
        m.compile("adam", "binary_crossentropy", metrics=["auc"], clipnorm=1.0)
        m.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25,
              callbacks=[ReduceLROnPlateau(monitor="val_loss", patience=0)])
        m.predict(x)
        print("torch._dynamo" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
