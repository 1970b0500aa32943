# -*- coding: utf-8 -*-
# Ported from DeepCTR-Torch's tests/models/DCN_test.py (https://github.com/shenweichen/
# DeepCTR-Torch, Apache-2.0). Changed: the imports and the constructor call only (ctrkit's dcn
# has no linear part, so linear_feature_columns is not passed).
import pytest

import ctrkit
from deepctr_utils import check_model, get_test_data, SAMPLE_SIZE, get_device


@pytest.mark.parametrize(
    'embedding_size,cross_num,hidden_size,sparse_feature_num,cross_parameterization',
    [(8, 2, (32,), 2, 'vector'), (8, 1, (32,), 2, 'matrix'),
     ]  # ('auto', 1, (32,), 3) , ('auto', 1, (), 1), ('auto', 1, (32,), 3)
)
def test_DCN(embedding_size, cross_num, hidden_size, sparse_feature_num, cross_parameterization):
    model_name = "DCN"

    sample_size = SAMPLE_SIZE
    x, y, feature_columns = get_test_data(
        sample_size, sparse_feature_num=sparse_feature_num, dense_feature_num=sparse_feature_num)

    model = ctrkit.build("dcn", feature_columns, cross_num=cross_num,
                         cross_parameterization=cross_parameterization,
                         dnn_hidden_units=hidden_size, dnn_dropout=0.5, device=get_device())
    check_model(model, model_name, x, y)


if __name__ == "__main__":
    pass
