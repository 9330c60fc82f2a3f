"""A peer's /health on a web port, like the workers': `partitions` once it consumes, `events_scored`.

Stdlib only (it runs inside the peers' own virtualenv); a daemon thread serves the counters that the
peer's processing function bumps.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Progress:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.events = 0
        self.changes = 0

    def document(self) -> dict[str, Any]:
        owned = list(range(self.partitions)) if self.events else []
        return {"partitions": owned, "events_scored": self.events, "tier_changes": self.changes}

    def serve(self, port: int) -> None:
        progress = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(progress.document()).encode()
                self.send_response(200 if self.path == "/health" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
