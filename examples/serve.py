"""Serve a saved ctrkit model over HTTP: ``python examples/serve.py din.ctrkit [port]``.

POST a JSON object of columns and get the click probabilities back. Values are raw (a model
saved with encoders encodes them, every feature of a table with that table's vocabulary; send
``"encoded": true`` in the object if the columns already hold ids). Histories are unpadded
lists, oldest first: ctrkit keeps the most recent ``maxlen`` and derives the length column::

    curl -d '{"user": [3], "item": [7], "hist_item": [[181, 258]], "hist_cate": [[4, 9]]}' \\
         localhost:8000
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

import ctrkit


def make_server(model, port: int = 8000) -> HTTPServer:
    class Predict(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                encoded = body.pop("encoded", None)
                p = model.predict(body, encoded=encoded)  # lists as sent: ragged histories too
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a file written by model.save")
    parser.add_argument("port", nargs="?", type=int, default=8000)
    args = parser.parse_args()
    model = ctrkit.load(args.model)  # model, features, encoders and weights from one file
    make_server(model, args.port).serve_forever()
