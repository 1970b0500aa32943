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


EXAMPLE = '{"user": [3], "item": [7], "hist_item": [[181, 258]]}'


class BadRequest(Exception):
    """The request body is not a JSON object of columns; answered with HTTP 400."""


def parse_body(raw: bytes) -> dict:
    """The request body as a dict of columns, or BadRequest saying what was wrong and the fix."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise BadRequest(f"The request body is not UTF-8 text ({e}). Send a JSON object of "
                         f"columns, e.g. {EXAMPLE}.") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"The request body is not JSON ({e.msg} at line {e.lineno} column "
                         f"{e.colno}). Send a JSON object of columns, e.g. {EXAMPLE}.") from None
    if not isinstance(body, dict):
        raise BadRequest(f"The request body is a JSON {type(body).__name__}, not an object. "
                         f"Send one object of columns (one list per feature, one entry per "
                         f"row), e.g. {EXAMPLE}.")
    encoded = body.get("encoded")
    if encoded is not None and not isinstance(encoded, bool):
        raise BadRequest(f"'encoded' must be true or false, got {encoded!r}.")
    for name, column in body.items():
        if name != "encoded" and not isinstance(column, list):
            raise BadRequest(f"Feature '{name}' must be a list with one entry per row, got "
                             f"{json.dumps(column)[:80]}; e.g. {{\"{name}\": [...]}}.")
    return body


def make_server(model, port: int = 8000) -> HTTPServer:
    class Predict(BaseHTTPRequestHandler):
        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = parse_body(self.rfile.read(length))
                encoded = body.pop("encoded", None)
                p = model.predict(body, encoded=encoded)  # lists as sent: ragged histories too
                code, reply = 200, {"probability": p.ravel().tolist()}
            except (BadRequest, ctrkit.CtrkitError) as e:  # bad input: say what, keep serving
                code, reply = 400, {"error": str(e)}
            except (TypeError, ValueError) as e:  # values predict could not read at all
                code, reply = 400, {"error": f"The columns could not be read: {e}. Send lists "
                                             f"of ids/values, e.g. {EXAMPLE}."}
            except Exception as e:  # a server fault: answer it, log it, keep serving
                self.log_error("predict failed: %r", e)
                code, reply = 500, {"error": f"Internal error: {type(e).__name__}: {e}"}
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
