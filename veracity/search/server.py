"""``veracity serve``: the search API and its web page on one machine.

Each HTTP request under ``/api/`` becomes the API Gateway (REST proxy) event the
Lambda receives in AWS and is answered by the same resolver; the page is served from
``veracity/search/web`` as CloudFront serves it from S3.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from veracity.lake import Lake
from veracity.search.api import create_app
from veracity.search.audit import AuditLog
from veracity.search.auth import LocalSigner
from veracity.search.index import SnapshotIndex
from veracity.search.service import SearchService

WEB_DIR = Path(__file__).resolve().parent / "web"
# How the page signs in, fetched by the page: here with a pasted token (veracity token);
# the search stack deploys one naming Cognito's managed login instead.
PAGE_CONFIG = "config.json"
LOCAL_PAGE_CONFIG = b'{"sign_in": "token"}'

STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/app.css": ("app.css", "text/css; charset=utf-8")}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_URL = 2048


@dataclass
class _Context:
    """The parts of a Lambda context the resolver reads."""

    aws_request_id: str
    function_name: str = "veracity-search-local"
    memory_limit_in_mb: int = 0
    invoked_function_arn: str = "local"


def api_event(method: str, target: str, headers: dict[str, str]) -> dict:
    """The API Gateway REST proxy event for one request."""
    url = urlsplit(target)
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    return {
        "resource": url.path, "path": url.path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"requestId": str(uuid.uuid4()), "httpMethod": method, "path": url.path, "stage": "local",
                           "identity": {"sourceIp": "127.0.0.1"}},
    }


def response_headers(result: dict) -> dict[str, str]:
    """The headers of an API Gateway proxy response, single- and multi-valued."""
    headers = dict(result.get("headers") or {})
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    return headers


class SearchServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, lake: Lake, host: str = "127.0.0.1", port: int = 8080):
        self.lake = lake
        signer = LocalSigner(lake)
        self._service: SearchService | None = None
        self._loading = threading.Lock()
        self.app = create_app(self.service, signer.verifier(), AuditLog(lake))
        super().__init__((host, port), _Handler)

    def service(self) -> SearchService:
        """The search service over the published snapshot, loaded once."""
        with self._loading:
            if self._service is None:
                self._service = SearchService(SnapshotIndex(self.lake))
            return self._service

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: SearchServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the audit log records each API request
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if len(self.path) > MAX_URL:
            self._send(414, b'{"error": "uri_too_long"}', {"Content-Type": "application/json"})
            return
        path = urlsplit(self.path).path
        if path == f"/{PAGE_CONFIG}":
            self._send(200, LOCAL_PAGE_CONFIG, {"Content-Type": "application/json", **PAGE_HEADERS})
            return
        if path in STATIC:
            name, content_type = STATIC[path]
            self._send(200, (WEB_DIR / name).read_bytes(), {"Content-Type": content_type, **PAGE_HEADERS})
            return
        headers = {k: v for k, v in self.headers.items()}
        result = self.server.app.resolve(api_event("GET", self.path, headers), _Context(str(uuid.uuid4())))
        self._send(result["statusCode"], (result.get("body") or "").encode(), response_headers(result))

    def do_POST(self) -> None:  # noqa: N802
        self._send(405, b'{"error": "method_not_allowed"}', {"Content-Type": "application/json", "Allow": "GET"})

    do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

