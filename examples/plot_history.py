"""The DeepCTR-Torch DIN tutorial's training loss, plotted to a PNG.

Run: python examples/plot_history.py [path]     (default: history.png)
"""
import argparse

import torch

import ctrkit
from din_quickstart import get_xy_fd


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="history.png", help="PNG to write")
    path = parser.parse_args(argv).path
    torch.set_num_threads(1)
    x, y, feature_columns, behavior_feature_list = get_xy_fd()
    model = ctrkit.build("din", feature_columns, history_feature_list=behavior_feature_list,
                         att_weight_normalization=True)
    model.compile("adagrad", "binary_crossentropy", metrics=["binary_crossentropy", "auc"])
    history = model.fit(x, y, batch_size=3, epochs=10, verbose=0, validation_split=0.0)
    history.plot(keys=("loss",), path=path)
    print(f"loss {history.history['loss'][0]:.4f} -> {history.history['loss'][-1]:.4f} over "
          f"{len(history.epoch)} epochs; plot written to {path}")
    return path


if __name__ == "__main__":
    main()
