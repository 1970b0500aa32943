"""examples/serve.py answers with what model.predict returns, and explains bad input."""
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

import ctrkit


def test_serving_a_saved_model(tmp_path, tutorial):
    from serve import make_server
    x, y, features, hist = tutorial
    model = ctrkit.build("din", features, history_feature_list=hist)
    model.compile("adagrad")
    model.fit(x, y, batch_size=3, epochs=2, verbose=0)
    model.save(tmp_path / "din.ctrkit")
    server = make_server(ctrkit.load(tmp_path / "din.ctrkit"), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def post(body):
        req = urllib.request.Request(url, data=json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    try:
        body = {k: np.asarray(v).tolist() for k, v in x.items()}
        got = post(body)["probability"]
        np.testing.assert_allclose(got, model.predict(x).ravel(), rtol=0, atol=1e-12)
        # unpadded histories, no length column (seen: clients had to pad to exactly maxlen)
        ragged = {k: v for k, v in body.items() if k != "seq_length"}
        for name in ("hist_item", "hist_item_gender"):
            ragged[name] = [row[:n] for row, n in zip(body[name], body["seq_length"])]
        assert ragged["hist_item"] == [[1, 2, 3], [3, 2, 1], [1, 2]]
        assert post(ragged)["probability"] == got
        body["item"] = [1, 2, 99]
        with pytest.raises(urllib.error.HTTPError) as err:
            post(body)
        assert err.value.code == 400
        assert "Feature 'item' has id 99" in json.loads(err.value.read())["error"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("raw, status, message", [
    (b"user=3&item=7", 400, r"not JSON \(Expecting value at line 1 column 1\).*JSON object"),
    (b"\xff\xfe", 400, r"not UTF-8 text"),
    (b"[[1, 2, 3]]", 400, r"a JSON list, not an object.*one list per feature"),
    (b'"user"', 400, r"a JSON str, not an object"),
    (b'{"user": 3, "item": [1]}', 400, r"Feature 'user' must be a list.*got 3"),
    (b'{"user": [0], "encoded": "yes"}', 400, r"'encoded' must be true or false, got 'yes'"),
    (b'{"user": [[0, 1]], "item": [1], "gender": [0], "item_gender": [1], "score": [0.5], '
     b'"hist_item": [[1]], "hist_item_gender": [[1]]}', 400, r"'user'"),
])
def test_malformed_bodies_get_400_with_a_json_error_and_serving_goes_on(tutorial, raw, status,
                                                                        message):
    import re
    from serve import make_server
    x, y, features, hist = tutorial
    model = ctrkit.build("din", features, history_feature_list=hist)
    server = make_server(model, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(url, data=raw), timeout=10)
        assert err.value.code == status
        assert re.search(message, json.loads(err.value.read())["error"])
        good = {k: np.asarray(v).tolist() for k, v in x.items()}  # the server still answers
        with urllib.request.urlopen(urllib.request.Request(url, data=json.dumps(good).encode()),
                                    timeout=10) as r:
            np.testing.assert_allclose(json.loads(r.read())["probability"],
                                       model.predict(x).ravel(), rtol=0, atol=1e-12)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
