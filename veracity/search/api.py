"""The person search API: one Powertools resolver for API Gateway (REST) events,
served by the Lambda in AWS and by ``veracity serve`` locally.

Every request is answered only for a verified token, and audited once whatever the
outcome (answered, bad request, unauthorised, not found, error).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from veracity.search.audit import AuditEntry, AuditLog
from veracity.search.auth import Unauthorised, User, Verifier
from veracity.search.query import BadRequest, check_person_id, check_purpose, parse_search
from veracity.search.service import NotFound, Redirect, SearchService

SEARCH_ROUTE = "/api/persons/search"
PERSON_ROUTE = "/api/persons/<person_id>"
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}


def _json(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _response(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(status, "application/json", json.dumps(body, default=_json), {**HEADERS, **(headers or {})})


def create_app(service: Callable[[], SearchService], verifier: Verifier, audit: AuditLog) -> APIGatewayRestResolver:
    """``service`` gives the search service over the current index (loaded lazily)."""
    app = APIGatewayRestResolver()

    def handle(route: str, answer: Callable[[User, dict], tuple[int, dict, list[str], dict | None]]) -> Response:
        params = {k: v for k, v in (app.current_event.query_string_parameters or {}).items()}
        entry = AuditEntry(route=route, query={**params, **(app.current_event.path_parameters or {})}, status=500, outcome="error")
        try:
            user = verifier.user(app.current_event.headers.get("Authorization") or app.current_event.headers.get("authorization"))
            entry.user, entry.groups = user.name, list(user.groups)
            entry.purpose = params.get("purpose")
            status, body, ids, headers = answer(user, params)
            entry.status, entry.outcome, entry.person_ids = status, "answered" if status < 300 else "redirected", ids
            return _response(status, body, headers)
        except Unauthorised as exc:
            entry.status, entry.outcome, entry.detail = 401, "unauthorised", str(exc)
            return _response(401, {"error": "unauthorised", "detail": str(exc)}, {"WWW-Authenticate": "Bearer"})
        except BadRequest as exc:
            entry.status, entry.outcome, entry.detail = 400, "bad_request", str(exc)
            return _response(400, {"error": "bad_request", "detail": str(exc)})
        except NotFound as exc:
            entry.status, entry.outcome, entry.detail = 404, "not_found", f"no person {exc}"
            return _response(404, {"error": "not_found", "detail": f"no person {exc}"})
        except Exception as exc:  # noqa: BLE001 - audited, then answered without internals
            entry.detail = type(exc).__name__
            return _response(500, {"error": "internal_error", "request_id": entry.request_id})
        finally:
            audit.record(entry)

    @app.get(SEARCH_ROUTE)
    def search() -> Response:
        def answer(user: User, params: dict):
            query = parse_search(params)
            results = service().search(query, user)
            return 200, {"results": results}, [r["person_id"] for r in results], None
        return handle(SEARCH_ROUTE, answer)

    @app.get(PERSON_ROUTE)
    def person(person_id: str) -> Response:
        def answer(user: User, params: dict):
            check_purpose(params)
            unknown = sorted(set(params) - {"purpose"})
            if unknown:
                raise BadRequest(f"{unknown[0]}: not a parameter of this route (only purpose)")
            found = service().person(check_person_id(person_id), user)
            if isinstance(found, Redirect):
                location = f"/api/persons/{found.person_id}?{urlencode({'purpose': params['purpose']})}"
                return 301, {"redirect_to": found.person_id, "merged": person_id}, [found.person_id], {"Location": location}
            return 200, found, [person_id], None
        return handle(PERSON_ROUTE, answer)

    @app.not_found
    def not_found(_exc) -> Response:
        def answer(_user: User, _params: dict):
            raise NotFound(app.current_event.path)
        return handle(app.current_event.path, answer)

    return app
