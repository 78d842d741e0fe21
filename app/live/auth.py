"""Who is on the other end of a WebSocket, and whether their page may open it.

Two ways in, as for the REST API:
- a browser sends Django's session cookie with the handshake (Channels' cookie, session and auth middleware);
- a script sends `Authorization: Token <key>` (Django REST framework's token), which browsers cannot set on a
  WebSocket, so a foreign page can never use it.

The cookie is sent by the browser whatever page opened the socket, so a handshake that carries an `Origin` header
must come from one of ALLOWED_HOSTS. A handshake without `Origin` cannot come from a browser and is let through:
it authenticates by token or stays anonymous.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

from channels.auth import AuthMiddleware
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator as ChannelsOriginValidator
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from live.pool import pooled_read


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


# Handshakes look tokens up in the default thread pool, not on the one thread database_sync_to_async uses by default:
# after an Apache restart a whole audience reconnects at once, and their lookups need not queue behind each other.
@pooled_read
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


# Tokens recently seen valid in this process: key -> (valid until, user). Short-lived, and emptied for a user whose
# account or token is revoked (live/access.py), so a revoked token opens nothing once that is announced.
TOKEN_CACHE_SECONDS = 10.0
TOKEN_CACHE_SIZE = 10_000
_token_cache: dict[str, tuple[float, object]] = {}


async def user_for_token(key: str):
    """The active user owning this DRF token, or None (the same rule as TokenAuthentication)."""
    now = time.monotonic()
    cached = _token_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    user = await _user_for_token(key)
    if user is not None:
        if len(_token_cache) >= TOKEN_CACHE_SIZE:
            _token_cache.clear()
        _token_cache[key] = (now + TOKEN_CACHE_SECONDS, user)
    else:
        _token_cache.pop(key, None)
    return user


def forget_tokens_of(user_id: int) -> None:
    """Drop every cached token of this user (their account or a token of theirs was revoked)."""
    for key, (_, user) in list(_token_cache.items()):
        if user.pk == user_id:
            _token_cache.pop(key, None)


class WebSocketAuthMiddleware(BaseMiddleware):
    """Put the connecting user in scope["user"]: from the token header if there is one, else from the session.

    A token header that names no active user leaves the user anonymous and sets scope["auth_failed"], so that
    the consumer refuses the socket (4401) instead of quietly serving a script that believes it is signed in.
    """

    keyword = b"token"

    def __init__(self, inner):
        super().__init__(inner)
        # The session path is Channels' own stack, untouched (it also saves a session the consumer changes).
        self.session_stack = CookieMiddleware(SessionMiddleware(AuthMiddleware(inner)))

    async def __call__(self, scope, receive, send):
        authorization = _header(scope, b"authorization")
        if authorization is None:
            return await self.session_stack(scope, receive, send)
        scope = dict(scope)
        scope["user"] = AnonymousUser()
        parts = authorization.split()
        if len(parts) == 2 and parts[0].lower() == self.keyword:
            try:
                user = await user_for_token(parts[1].decode("ascii"))
            except UnicodeDecodeError:
                user = None
            if user is not None:
                scope["user"] = user
                # For the access watcher (live/access.py): a socket opened with a token closes when it is deleted.
                scope["auth_token"] = parts[1].decode("ascii")
        if not scope["user"].is_authenticated:
            scope["auth_failed"] = True
        return await self.inner(scope, receive, send)


class OriginValidator(ChannelsOriginValidator):
    """Refuse a handshake whose Origin is not an allowed host; allow one without Origin (not a browser).

    Channels' AllowedHostsOriginValidator refuses a missing Origin, which would shut out scripts; its matching of
    hosts (ports, schemes, `.example.com` subdomains) is reused unchanged. The allowed list is read from
    settings.ALLOWED_HOSTS on each handshake unless one is given.
    """

    def __init__(self, application, allowed_origins: list[str] | None = None):
        super().__init__(application, allowed_origins)

    @property
    def allowed_hosts(self) -> list[str]:
        if self.allowed_origins is not None:
            return self.allowed_origins
        hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            # Django's own rule for DEBUG with an empty ALLOWED_HOSTS.
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        return hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("OriginValidator guards WebSocket connections only")
        origin = _header(scope, b"origin")
        if origin is None or self.origin_allowed(origin.decode("latin1")):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

    def origin_allowed(self, origin: str) -> bool:
        """A present Origin must parse and match an allowed host; `null` and garbage do not."""
        try:
            parsed = urlparse(origin)
            parsed.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            return False
        return any(pattern == "*" or self.match_allowed_origin(parsed, pattern) for pattern in self.allowed_hosts)
