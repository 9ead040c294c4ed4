"""A local HTTP server that stands in for a provider: it answers from a script of responses per
path (the last one repeats) and records every request it got (header names in lower case)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Provider:
    def __init__(self):
        self.scripts = {}
        self.requests = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                provider.requests.append({
                    "method": self.command, "path": url.path, "query": parse_qs(url.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                })
                script = provider.scripts.get(url.path) or [(404, {"error": "no such path"})]
                status, payload = script.pop(0) if len(script) > 1 else script[0]
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path, *responses):
        self.scripts[path] = list(responses)

    def calls(self, path):
        return [r for r in self.requests if r["path"] == path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
