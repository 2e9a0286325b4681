"""A small HTTP server on 127.0.0.1 for resource-file tests: each path answers what the test says.

    with serving({"/data.txt": (200, b"hello")}) as url:      # any other path: 404
        ...                                                    # f"{url}/data.txt"

A path mapped to None never answers (until the server stops): a download that times out.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def serving(answers: Mapping[str, tuple[int, bytes] | None]) -> Iterator[str]:
    """Serve `answers` (path -> (status, body), or None for no answer); yield the base URL."""
    gate = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer = answers.get(self.path, (404, b""))
            if answer is None:
                gate.wait(10)
                return
            status, body = answer
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        gate.set()
        server.shutdown()
        server.server_close()
