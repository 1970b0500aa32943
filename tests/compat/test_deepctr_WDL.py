# -*- coding: utf-8 -*-
# Ported from DeepCTR-Torch's tests/models/WDL_test.py (https://github.com/shenweichen/
# DeepCTR-Torch, Apache-2.0). Changed: the imports and the constructor call only.
import pytest

import ctrkit
from deepctr_utils import get_test_data, SAMPLE_SIZE, check_model, get_device


@pytest.mark.parametrize(
    'sparse_feature_num,dense_feature_num',
    [(2, 0), (0, 2), (2, 2)
     ]
)
def test_WDL(sparse_feature_num, dense_feature_num):
    model_name = "WDL"
    sample_size = SAMPLE_SIZE
    x, y, feature_columns = get_test_data(
        sample_size, sparse_feature_num=sparse_feature_num, dense_feature_num=dense_feature_num)

    model = ctrkit.build("wdl", feature_columns, linear_feature_columns=feature_columns, dnn_activation='prelu',
                         dnn_hidden_units=[32, 32], dnn_dropout=0.5, device=get_device())
    check_model(model, model_name, x, y)


if __name__ == "__main__":
    pass
