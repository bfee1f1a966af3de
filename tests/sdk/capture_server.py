"""A capturing stand-in for the gateway, for the golden corpus of
gateway/tests/sdk_golden.rs: answers every SDK request the way Sluice does
when all is well (200, {"success":true} or {"status":1}, CORS) and writes
each request's path, headers and body (base64) to OUT_DIR/NNN.json.

    python3 tests/sdk/capture_server.py PORT OUT_DIR &
    SLUICE_URL=http://127.0.0.1:PORT SLUICE_KEY=sk_test_team_a SDK_RUN=golden \
      SDK_EVENTS=3 NODE_PATH=~/.cache/sluice/sdk-node/node_modules node tests/sdk/segment-node.js

(one server and one OUT_DIR per SDK script: segment, posthog-node, python,
browser), then tests/sdk/make_golden_corpus.py CAPTURE_ROOT.
"""

import base64, json, os, sys, threading
out = sys.argv[2]; os.makedirs(out, exist_ok=True)
n = [0]; lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    def cors(self):
        self.send_header('Access-Control-Allow-Origin', '*')
        self.send_header('Access-Control-Allow-Headers', self.headers.get('Access-Control-Request-Headers') or '*')
        self.send_header('Access-Control-Allow-Methods', 'POST, OPTIONS')
    def do_OPTIONS(self):
        self.send_response(204); self.cors(); self.end_headers()
    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length)
        with lock:
            n[0] += 1; i = n[0]
        rec = {'path': self.path, 'headers': {k.lower(): v for k, v in self.headers.items()}, 'body_b64': base64.b64encode(body).decode()}
        with open(os.path.join(out, '%03d.json' % i), 'w') as f: json.dump(rec, f, indent=1)
        reply = b'{"success":true}' if self.path.startswith('/v1/') else b'{"status":1}'
        self.send_response(200); self.cors()
        self.send_header('Content-Type', 'application/json'); self.send_header('Content-Length', str(len(reply))); self.end_headers()
        self.wfile.write(reply)
    def do_GET(self):
        self.send_response(200); self.cors(); self.send_header('Content-Length','2'); self.end_headers(); self.wfile.write(b'{}')
ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
