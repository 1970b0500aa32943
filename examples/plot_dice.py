"""Dice vs ReLU vs LeakyReLU, drawn with ctrkit's own Dice (the DIN tutorial's figure).

Run: python examples/plot_dice.py [out.png]

Left: the activations f(s). Dice is evaluated in eval mode with running statistics
E[s] = 0, Var[s] = 1 and α = 0.1 (LeakyReLU uses the same slope), so its only difference from
LeakyReLU is the smooth, data-centred switch. Right: the control function p(s) that mixes the
two slopes, f(s) = p(s)·s + (1 − p(s))·α·s — a step at 0 for (Leaky)ReLU/PReLU, a sigmoid of
the standardised input for Dice (DIN paper, Fig. 3).
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's ctrkit
from ctrkit.models.din import Dice  # noqa: E402
from ctrkit.plot import _pyplot, save_figure  # noqa: E402

ALPHA = 0.1


def dice_curves(s: torch.Tensor, mean: float = 0.0, var: float = 1.0, alpha: float = ALPHA):
    """(f(s), p(s)) of a one-unit ctrkit Dice in eval mode with the given statistics."""
    dice = Dice(1)
    with torch.no_grad():
        dice.running_mean.fill_(mean)
        dice.running_var.fill_(var)
        dice.alpha.fill_(alpha)
        dice.eval()
        f = dice(s.reshape(-1, 1)).reshape(-1)
    p = torch.sigmoid((s - mean) / (var + dice.eps) ** 0.5)
    return f, p


def main(path: str = "dice_vs_relu.png") -> str:
    torch.set_num_threads(1)
    plt = _pyplot()
    s = torch.linspace(-4, 4, 401)
    fig, (ax_f, ax_p) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_f.plot(s, torch.relu(s), label="ReLU")
    ax_f.plot(s, torch.nn.functional.leaky_relu(s, ALPHA), label=f"LeakyReLU (slope {ALPHA})")
    for mean, var, style in ((0.0, 1.0, "-"), (1.0, 0.25, "--")):
        f, _ = dice_curves(s, mean, var)
        ax_f.plot(s, f, style, label=f"Dice (E[s]={mean:g}, Var[s]={var:g}, α={ALPHA})")
    ax_f.set_title("activation f(s)")
    ax_p.step(s, (s > 0).float(), where="post", label="ReLU / PReLU: step at 0")
    for mean, var, style in ((0.0, 1.0, "-"), (1.0, 0.25, "--")):
        _, p = dice_curves(s, mean, var)
        ax_p.plot(s, p, style, label=f"Dice: sigmoid((s-{mean:g})/sqrt({var:g}+ε))")
    ax_p.set_title("control function p(s)")
    for ax in (ax_f, ax_p):
        ax.set_xlabel("s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="PNG to write (default: dice_vs_relu.png)")
    out = parser.parse_args().out
    print("wrote", main(*([out] if out else [])))
