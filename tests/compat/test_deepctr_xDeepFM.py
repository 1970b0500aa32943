# -*- coding: utf-8 -*-
# Ported from DeepCTR-Torch's tests/models/xDeepFM_test.py (https://github.com/shenweichen/
# DeepCTR-Torch, Apache-2.0). Changed: the imports and the constructor call only.
import pytest

import ctrkit
from deepctr_utils import get_test_data, SAMPLE_SIZE, check_model, get_device


@pytest.mark.parametrize(
    'dnn_hidden_units,cin_layer_size,cin_split_half,cin_activation,sparse_feature_num,dense_feature_dim',
    [((), (), True, 'linear', 1, 2),
     ((8,), (), True, 'linear', 1, 1),
     ((), (8,), True, 'linear', 2, 2),
     ((8,), (8,), False, 'relu', 2, 0)]
)
def test_xDeepFM(dnn_hidden_units, cin_layer_size, cin_split_half, cin_activation, sparse_feature_num,
                 dense_feature_dim):
    model_name = 'xDeepFM'

    sample_size = SAMPLE_SIZE
    x, y, feature_columns = get_test_data(
        sample_size, sparse_feature_num=sparse_feature_num, dense_feature_num=sparse_feature_num)
    model = ctrkit.build("xdeepfm", feature_columns, linear_feature_columns=feature_columns,
                         dnn_hidden_units=dnn_hidden_units, cin_layer_size=cin_layer_size,
                         cin_split_half=cin_split_half, cin_activation=cin_activation, dnn_dropout=0.5,
                         device=get_device())
    check_model(model, model_name, x, y)


if __name__ == '__main__':
    pass
