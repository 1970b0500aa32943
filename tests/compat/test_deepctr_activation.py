# -*- coding: utf-8 -*-
# Ported from DeepCTR-Torch's tests/layers/activation_test.py (https://github.com/shenweichen/
# DeepCTR-Torch, Apache-2.0). Changed: the imports and the constructor arguments only
# (DeepCTR's Dice(emb_size, dim) takes the width and the input rank; ctrkit's Dice(dim) takes
# the width and accepts (N, H) and (B, T, H) inputs alike).
from ctrkit.models.din import dice as activation
from deepctr_utils import layer_test


def test_dice():
    layer_test(activation.Dice, kwargs={'dim': 3},
               input_shape=(5, 3), expected_output_shape=(5,3))
    layer_test(activation.Dice, kwargs={'dim': 10},
               input_shape=(5, 3, 10), expected_output_shape=(5,3,10))
