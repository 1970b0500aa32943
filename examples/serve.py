"""Serve a saved ctrkit model over HTTP: ``python examples/serve.py din.ctrkit [port]``.

POST a JSON object of columns (raw values where the model carries encoders) and get the
click probabilities back::

    curl -d '{"user": [3], "item": [7], "hist_item": [[1, 7, 0, 0]], "seq_length": [2]}' \\
         localhost:8000
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np

import ctrkit


def make_server(model, port: int = 8000) -> HTTPServer:
    class Predict(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                p = model.predict({k: np.asarray(v) for k, v in body.items()})
                code, reply = 200, {"probability": p.ravel().tolist()}
            except ctrkit.CtrkitError as e:  # bad input: say what and why, keep serving
                code, reply = 400, {"error": str(e)}
            out = json.dumps(reply).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return HTTPServer(("127.0.0.1", port), Predict)


if __name__ == "__main__":
    model = ctrkit.load(sys.argv[1])  # model, features, encoders and weights from one file
    make_server(model, int(sys.argv[2]) if len(sys.argv) > 2 else 8000).serve_forever()
