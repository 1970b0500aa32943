# Ported from Keras 3's keras/src/callbacks/callback_test.py
# (https://github.com/keras-team/keras, Apache-2.0). Changed: the imports; the model (a
# keras Model subclass whose call counts itself in a variable and returns its inputs -> a
# ctrkit BaseModel subclass that counts itself in a buffer and returns its input times one
# trainable weight, initially 1: torch needs a parameter to train, Keras does not); `x` ->
# {"x": x} (docs/porting.md#from-keras); unittest's assertEqual -> assert; the class is named Test* for pytest. Every
# assertion is kept; one is added (marked) to show that the hook ran at all.
import numpy as np
import torch

from ctrkit import DenseFeat
from ctrkit.callbacks import Callback
from ctrkit.models.base import BaseModel


class TestCallback:
    def test_model_state_is_current_on_epoch_end(self):
        class TestModel(BaseModel):
            def __init__(self):
                super().__init__([DenseFeat("x", 1)], task="regression")
                self.register_buffer("iterations", torch.zeros((), dtype=torch.int64))
                self.scale = torch.nn.Parameter(torch.ones(()))

            def forward(self, inputs):
                self.iterations += 1
                return inputs["x"][:, 0] * self.scale  # one logit per row

        class CBK(Callback):
            calls = 0  # ctrkit port: added

            def on_batch_end(self, batch, logs):
                assert int(self.model.iterations) == batch + 1
                CBK.calls += 1  # ctrkit port: added

        model = TestModel()
        model.compile(optimizer="sgd", loss="mse")
        x = np.random.random((8, 1))
        y = np.random.random((8, 1))
        model.fit({"x": x}, y, callbacks=[CBK()], batch_size=2)
        assert CBK.calls == 4  # ctrkit port: added (the hook ran after each of the 4 steps)
