#!/usr/bin/env python3
"""A completion-hook receiver for the end-to-end tests.

Listens on 127.0.0.1 (a free port, written to --port-file), answers the
first --fail-first POSTs with 500 and the rest with 200, and appends one
JSON line per POST ({"path", "headers", "body", "status"}) to --out.
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--fail-first", type=int, default=0)
args = ap.parse_args()
lock = threading.Lock()
seen = [0]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("utf-8", "replace")
        with lock:
            seen[0] += 1
            status = 500 if seen[0] <= args.fail_first else 200
            with open(args.out, "a") as f:
                f.write(json.dumps({"path": self.path,
                                    "headers": dict(self.headers),
                                    "body": body, "status": status}) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(args.port_file, "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
