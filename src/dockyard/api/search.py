"""``GET /v1/search?q=&n=&page=``: what ``docker search`` asks, answered in Docker Hub's
format::

    {"num_results": 2, "num_pages": 1, "page": 1, "page_size": 25, "query": "app",
     "results": [{"name": "alice/app", "description": "...", "star_count": 3,
                  "is_official": false, "is_automated": false}, ...]}

Served with ``auth.builtin`` (else 404, as ``/token``). The caller is who its credentials
say: a token from this registry's token server (``Bearer``), a user name with a password or
an access token (``Basic``), or nobody; results and counts hold only what the caller may
pull, so a private repository is never found by those who may not see it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dockyard.api.base import authorize, context
from dockyard.auth.builtin import BuiltinAccess
from dockyard.auth.challenge import basic_challenge, basic_credentials
from dockyard.auth.issuer import BadCredentials, TooManyFailures
from dockyard.errors import EndpointUnknown, PaginationInvalid, TooManyRequests, Unauthorized
from dockyard.hub.search import Discovery, SearchQuery

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "get_search"]

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_PAGE = 10_000


def _discovery(request: Request) -> Discovery:
    found: Discovery | None = getattr(request.app.state, "discovery", None)
    if found is None:
        raise EndpointUnknown()
    return found


def _number(text: str | None, default: int, maximum: int, what: str) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise PaginationInvalid(message=f"{what} must be a whole number from 1 to {maximum}")
    return int(text)


async def _subject(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "").strip().lower()
    if not authorization:
        return None
    if authorization.startswith("basic"):
        access = context(request).access
        issuer = access.issuer if isinstance(access, BuiltinAccess) else None
        credentials = basic_credentials(request.headers)
        challenge = {"WWW-Authenticate": basic_challenge("dockyard")}
        if issuer is None or credentials is None:
            raise Unauthorized(message="invalid username or password", headers=challenge)
        client = request.client.host if request.client else None
        try:
            return (await issuer.authenticate(*credentials, client)).subject
        except TooManyFailures as busy:
            raise TooManyRequests(
                message="too many failed logins; try again later",
                headers={"Retry-After": str(busy.retry_after)},
            ) from None
        except BadCredentials:
            raise Unauthorized(message="invalid username or password", headers=challenge) from None
    return (await authorize(request, [])).subject


async def get_search(request: Request) -> Response:
    discovery = _discovery(request)
    params = request.query_params
    text = params.get("q", "")
    size = _number(params.get("n"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, "n")
    page = _number(params.get("page"), 1, MAX_PAGE, "page")
    principal = await discovery.authority.principal(await _subject(request))
    found = await discovery.search.search(
        principal, SearchQuery(text=text), size, (page - 1) * size
    )
    return JSONResponse(
        {
            "num_results": found.total,
            "num_pages": max(1, -(-found.total // size)),
            "page": page,
            "page_size": size,
            "query": text,
            "results": [
                {
                    "name": r.name,
                    "description": r.description,
                    "star_count": r.star_count,
                    "is_official": r.is_official,
                    "is_automated": False,
                }
                for r in found.results
            ],
        }
    )
