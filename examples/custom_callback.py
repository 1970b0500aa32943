"""Write your own callback: log how well the predicted CTR is calibrated after every epoch.

A callback subclasses ``ctrkit.callbacks.Callback`` and overrides the hooks it needs. Keys it
adds to the epoch ``logs`` appear in ``history.history``, in the verbose output and in any
later callback (here EarlyStopping could monitor them too).

Training stops early once val_auc has not improved for 2 epochs (EarlyStopping, verbose=1
prints why and restores the best epoch); the script ends by saying how many epochs ran and why.

Run: python examples/custom_callback.py
"""
import argparse
import numpy as np
import torch

import ctrkit
from ctrkit.callbacks import Callback, EarlyStopping
from ctrkit.datasets import make_synthetic


class Calibration(Callback):
    """Logs ``val_calibration`` = mean predicted CTR / observed CTR on held-out rows.

    1.0 means the model predicts as many clicks as there are; ads systems bid on these
    probabilities, so a model with a good AUC but calibration 1.3 still overspends.
    """

    def __init__(self, x_val, y_val):
        super().__init__()
        self.x_val, self.y_val = x_val, np.asarray(y_val)

    def on_train_begin(self, logs=None):
        self.per_epoch = []  # reset here, so one instance can serve several fits

    def on_epoch_end(self, epoch, logs=None):
        pred = self.model.predict(self.x_val, batch_size=4096).ravel()  # eval mode, restored after
        ratio = float(pred.mean() / self.y_val.mean())
        self.per_epoch.append(ratio)
        logs["val_calibration"] = ratio


def main():
    torch.set_num_threads(1)
    x, y, features = make_synthetic(n_rows=10000, n_users=200, n_items=400, n_categories=20,
                                    maxlen=10, embedding_dim=8, seed=0)
    n_val = 2000
    x_train, y_train = {k: v[:-n_val] for k, v in x.items()}, y[:-n_val]
    x_val, y_val = {k: v[-n_val:] for k, v in x.items()}, y[-n_val:]

    model = ctrkit.build("din", features, dnn_hidden_units=(32, 16), att_hidden_size=(16,),
                         seed=0)
    model.compile("adam", "binary_crossentropy", metrics=["auc"], lr=0.01)
    calibration = Calibration(x_val, y_val)
    # Stops when val_auc has not improved for 2 epochs; verbose=1 prints why and which epoch's
    # weights it restores, so a run shorter than `epochs` is never a mystery.
    stop = EarlyStopping("val_auc", patience=2, restore_best_weights=True, verbose=1)
    epochs = 6
    history = model.fit(x_train, y_train, batch_size=256, epochs=epochs, verbose=2,
                        validation_data=(x_val, y_val), callbacks=[calibration, stop])
    print("val_calibration per epoch:", [round(v, 3) for v in history.history["val_calibration"]])
    ran = len(history.epoch)
    if stop.stopped_epoch:  # 0: it did not stop (Keras's convention)
        print(f"ran {ran} of {epochs} epochs: EarlyStopping stopped it (val_auc best "
              f"{stop.best:.4f} at epoch {stop.best_epoch + 1}; the model keeps that epoch's weights)")
    else:
        print(f"ran all {epochs} epochs: val_auc kept improving, so EarlyStopping never fired")
    return model, history, calibration


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
