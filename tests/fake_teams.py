"""A loopback HTTPS receiver standing in for a Teams Workflows webhook ("When a Teams webhook request is received").

It records every request (path, headers, JSON body) and answers from a script: a list of
(status, headers) taken one per request, then 202 Accepted (the Workflows trigger's answer) once
the script is done. Its URL has a `sig` query parameter like a real workflow URL, so tests can check
that the credential never leaks. TLS with a test CA (trustme), as tests/fake_entra.py does.
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

SIG = "s3cr3t-Sig_value-0123456789abcdef"


class FakeTeams:
    def __init__(self, tmp: Path) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.ca = trustme.CA()
        self.ca_path = tmp / "teams-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body.decode("utf-8")), "bytes": len(body)})
                status, headers = receiver.script.pop(0) if receiver.script else (202, {})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        port = self.server.server_address[1]
        self.url = (f"https://127.0.0.1:{port}/workflows/4f1c7e0a2b9d/triggers/manual/paths/invoke"
                    f"?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}")

    def env(self, name: str = "PRESENCESYNC_TEAMS_WEBHOOK") -> dict[str, str]:
        return {name: self.url, "REQUESTS_CA_BUNDLE": str(self.ca_path)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
