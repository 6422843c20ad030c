"""Who a request comes from: a SigV4 signature, a session cookie or a bearer token.

    auth = Authenticator(api_config, clock)
    principal = auth.identify(request_parts, body)   # a Principal, None (no credentials), or raises ApiError

Three ways in, each the one its clients already speak:

- **SigV4** (boto3, the AWS CLI, Grafana's SiteWise plugin): the signature is recomputed with botocore's own
  signer (``botocore.auth.SigV4Auth``: its canonical request, string to sign and signature) from the secret
  of the access key the request names: one of ``api.access_keys``, or a temporary key that ``Authenticate``
  handed out (then the request must carry its ``X-Amz-Security-Token``). The request time must be within
  15 minutes of the gateway's clock, as AWS requires.
- **A session cookie** (the dashboard): ``POST /auth/login`` with a user and password of ``api.users``.
- **A bearer token** (scripts): ``api.token`` as ``Authorization: Bearer`` or ``x-api-token``.

A credential that is sent is checked, even where the route would need none: a wrong key is refused rather
than read as anonymous. Refusals carry AWS's codes (``UnrecognizedClientException``,
``InvalidSignatureException``, ``IncompleteSignatureException``, 403/400) in SiteWise's error shape, are
counted by code (``failures``, shown in ``/metrics``) and logged once per code and key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.datastructures import Headers

from sitewise_edge.clock import Clock
from sitewise_edge.config import ApiConfig
from sitewise_edge.errors import ApiError

log = logging.getLogger(__name__)

Access = Literal["read", "write"]
SIGV4 = "AWS4-HMAC-SHA256"
SERVICE = "iotsitewise"
MAX_SKEW_S = 15 * 60
"""How far a signed request's time may be from the gateway's clock (AWS: 15 minutes)."""
SESSION_COOKIE = "sitewise_edge_session"
MAX_SESSIONS = 10_000
"""Sessions and temporary keys held at once; past it the oldest is dropped (its user signs in again)."""
EDGE_REGION = "edge"
"""The region ``Authenticate`` answers, as SiteWise Edge does."""


@dataclass(frozen=True)
class Principal:
    name: str
    """The access key id, the user's name, or ``token``."""
    access: Access
    how: Literal["sigv4", "session", "token"]


@dataclass(frozen=True)
class RequestParts:
    """What a signature covers, as the request arrived (the raw path and query, not decoded)."""

    method: str
    scheme: str
    raw_path: str
    query_string: str
    headers: Headers


@dataclass
class _Grant:
    user: str
    access: Access
    expires: float  # monotonic seconds
    secret: str = ""
    session_token: str = ""


def _denied(code: str, message: str) -> ApiError:
    return ApiError(code, message)


class Authenticator:
    """Checks credentials against the ``api`` section; holds the sessions and temporary keys it handed out."""

    def __init__(self, config: ApiConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.keys: dict[str, tuple[str, Access]] = {k.id: (k.secret, k.access) for k in config.access_keys}
        self.users: dict[str, tuple[str, Access]] = {u.name: (u.password, u.access) for u in config.users}
        self.sessions: OrderedDict[str, _Grant] = OrderedDict()  # cookie value -> grant
        self.temporary: OrderedDict[str, _Grant] = OrderedDict()  # access key id -> grant
        self.failures: Counter[str] = Counter()
        self._signing_keys: dict[tuple[str, str, str, str], bytes] = {}  # (secret, date, region, service) -> key
        self._signers: dict[tuple[str, str, str | None, str], _Signer] = {}  # (key id, secret, token, region)
        self._logged: set[tuple[str, str]] = set()

    @property
    def verifies_sigv4(self) -> bool:
        """Whether signatures are checked (keys configured, or users who may get temporary keys)."""
        return bool(self.keys or self.users)

    def wants_body(self, headers: Headers) -> bool:
        """Whether :meth:`identify` needs the body (a SigV4 signature covers its hash)."""
        return self.verifies_sigv4 and headers.get("authorization", "").startswith(SIGV4)

    # --- identify ---------------------------------------------------------------------------

    def identify(self, parts: RequestParts, body: bytes | None) -> Principal | None:
        """The principal behind the request's credentials, None without any; ApiError for wrong ones."""
        try:
            return self._identify(parts, body)
        except ApiError as exc:
            self._count(exc.code, exc.message)
            raise

    def _identify(self, parts: RequestParts, body: bytes | None) -> Principal | None:
        headers = parts.headers
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer ") or "x-api-token" in headers:
            given = authorization[7:].strip() if authorization.lower().startswith("bearer ") else headers[
                "x-api-token"]
            if not self.config.token or not hmac.compare_digest(given.encode(), self.config.token.encode()):
                raise _denied("UnauthorizedException", "the API token is not valid")
            return Principal("token", "write", "token")
        if authorization.startswith(SIGV4) and self.verifies_sigv4:
            return self._verify_sigv4(parts, authorization, body or b"")
        cookie = self._session_cookie(headers)
        if cookie is not None:
            grant = self._live(self.sessions, cookie)
            if grant is not None:
                return Principal(grant.user, grant.access, "session")
        return None

    def _verify_sigv4(self, parts: RequestParts, authorization: str, body: bytes) -> Principal:
        fields = _parse_authorization(authorization)
        try:
            key_id, date, region, service, terminator = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            signature = fields["Signature"]
        except (KeyError, ValueError):
            raise _denied("IncompleteSignatureException", "the Authorization header is not a complete "
                          "AWS4-HMAC-SHA256 signature (Credential, SignedHeaders, Signature)") from None
        headers = parts.headers
        amz_date = headers.get("x-amz-date", "")
        if terminator != "aws4_request" or "host" not in signed or "x-amz-date" not in signed or \
                not amz_date.startswith(date):
            raise _denied("IncompleteSignatureException", "the signature must cover the host and x-amz-date "
                          "headers, and its credential scope must end in <date>/<region>/<service>/aws4_request")
        secret, access, token = self._secret(key_id, headers)
        if service != SERVICE:
            raise _denied("InvalidSignatureException", f"the signature is for service {service!r}, not {SERVICE!r}")
        try:
            signed_at = _amz_time(amz_date)
        except ValueError:
            raise _denied("IncompleteSignatureException", f"x-amz-date {amz_date!r} is not a time such as "
                          "20261202T121500Z") from None
        now = self.clock.time()
        if abs(now - signed_at) > MAX_SKEW_S:
            raise _denied("InvalidSignatureException", f"Signature expired: {amz_date} is more than 15 minutes "
                          "from the gateway's clock (check the clocks of the client and the gateway)")
        body_hash = hashlib.sha256(body).hexdigest()
        digest = headers.get("x-amz-content-sha256")
        if digest is not None and digest != body_hash:
            raise _denied("InvalidSignatureException", "x-amz-content-sha256 is not the hash of the body")
        query = f"?{parts.query_string}" if parts.query_string else ""
        request = AWSRequest(method=parts.method, url=f"{parts.scheme}://{headers.get('host', '')}"
                             f"{parts.raw_path}{query}", headers={name: headers.get(name, "") for name in signed})
        request.context["timestamp"] = amz_date
        request.context["body_hash"] = body_hash
        signer = self._signers.get((key_id, secret, token, region))
        if signer is None:  # one per key and region: botocore's Credentials and signer are built once, not per request
            if len(self._signers) > MAX_SESSIONS:
                self._signers.clear()
            signer = self._signers[(key_id, secret, token, region)] = _Signer(
                Credentials(key_id, secret, token), service, region, self._signing_keys)
        # a header the signer leaves out (user-agent...) changes the canonical request: the signature then differs
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if not hmac.compare_digest(expected, signature):
            raise _denied("InvalidSignatureException", "The request signature we calculated does not match the "
                          "signature you provided. Check your AWS Secret Access Key and signing method.")
        return Principal(key_id, access, "sigv4")

    def _secret(self, key_id: str, headers: Headers) -> tuple[str, Access, str | None]:
        if key_id in self.keys:
            secret, access = self.keys[key_id]
            return secret, access, None
        grant = self._live(self.temporary, key_id)
        if grant is not None:
            token = headers.get("x-amz-security-token", "")
            if not hmac.compare_digest(token.encode(), grant.session_token.encode()):
                raise _denied("UnrecognizedClientException", "The security token included in the request is "
                              "invalid (the session token does not belong to the access key)")
            return grant.secret, grant.access, token
        raise _denied("UnrecognizedClientException", f"The security token included in the request is invalid: "
                      f"access key {key_id!r} is not one of this gateway's (api.access_keys) or has expired")

    # --- sessions and temporary keys -----------------------------------------------------------

    def check_password(self, user: str, password: str) -> Access | None:
        """The user's access when the password is theirs, else None (counted)."""
        known, access = self.users.get(user, ("", "read"))
        # compared even for an unknown user, so the time taken does not tell which names exist
        ok = hmac.compare_digest(password.encode(), known.encode()) and bool(known)
        if not ok:
            self._count("AccessDeniedException", f"wrong user name or password (user {user!r})")
            return None
        return access

    def start_session(self, user: str, access: Access) -> str:
        """A new session of ``user``: the cookie value."""
        cookie = secrets.token_urlsafe(32)
        self._hold(self.sessions, cookie, _Grant(user, access, self._expiry()))
        return cookie

    def end_session(self, cookie: str) -> None:
        self.sessions.pop(cookie, None)

    def temporary_key(self, user: str, access: Access) -> dict[str, str]:
        """Temporary SigV4 credentials for ``user``, in the shape of SiteWise Edge's ``Authenticate``."""
        key_id = "ASIA" + secrets.token_hex(8).upper()
        grant = _Grant(user, access, self._expiry(), secrets.token_urlsafe(30), secrets.token_urlsafe(48))
        self._hold(self.temporary, key_id, grant)
        return {"accessKeyId": key_id, "secretAccessKey": grant.secret, "sessionToken": grant.session_token,
                "region": EDGE_REGION}

    def session_of(self, headers: Headers) -> Principal | None:
        cookie = self._session_cookie(headers)
        grant = self._live(self.sessions, cookie) if cookie else None
        return Principal(grant.user, grant.access, "session") if grant else None

    def _expiry(self) -> float:
        return self.clock.monotonic() + self.config.session_timeout

    @staticmethod
    def _hold(table: OrderedDict[str, _Grant], key: str, grant: _Grant) -> None:
        table[key] = grant
        while len(table) > MAX_SESSIONS:
            table.popitem(last=False)

    def _live(self, table: OrderedDict[str, _Grant], key: str) -> _Grant | None:
        grant = table.get(key)
        if grant is not None and grant.expires < self.clock.monotonic():
            del table[key]
            return None
        return grant

    @staticmethod
    def _session_cookie(headers: Headers) -> str | None:
        raw = headers.get("cookie")
        if not raw or SESSION_COOKIE not in raw:
            return None
        for part in raw.split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                return value
        return None

    def _count(self, code: str, message: str) -> None:
        self.failures[code] += 1
        if (code, message) not in self._logged and len(self._logged) < 1000:
            self._logged.add((code, message))
            log.warning("API request refused (%s): %s; further ones are counted in /metrics "
                        "(sitewise_edge_api_auth_failures_total)", code, message)


class _Signer(SigV4Auth):
    """botocore's signer, with the day's signing key derived once per key, date, region and service (the four
    HMACs of ``SigV4Auth.signature`` are the same for every request of a day) and the body's hash given in the
    request's context. Stateless across requests: one serves every request of its key."""

    def __init__(self, credentials: Credentials, service: str, region: str,
                 cache: dict[tuple[str, str, str, str], bytes]) -> None:
        super().__init__(credentials, service, region)
        self._cache = cache
        self._secret, self._service, self._region = credentials.secret_key or "", service, region

    def payload(self, request: AWSRequest) -> str:
        # the body's hash, taken once from the bytes received (SigV4Auth.payload would prepare the request again)
        return str(request.context["body_hash"])

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        date = str(request.context["timestamp"][0:8])
        key = (self._secret, date, self._region, self._service)
        signing_key = self._cache.get(key)
        if signing_key is None:
            signing_key = f"AWS4{self._secret}".encode()
            for part in (date, self._region, self._service, "aws4_request"):  # as SigV4Auth.signature
                signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
            if len(self._cache) > MAX_SESSIONS:
                self._cache.clear()
            self._cache[key] = signing_key
        return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _amz_time(text: str) -> float:
    """``20261202T121500Z`` -> seconds since the epoch (strptime is ten times slower)."""
    if len(text) != 16 or text[8] != "T" or text[15] != "Z":
        raise ValueError(text)
    return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[11:13]),
                    int(text[13:15]), tzinfo=UTC).timestamp()


def _parse_authorization(value: str) -> dict[str, str]:
    """``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` -> its fields."""
    out: dict[str, str] = {}
    for part in value[len(SIGV4):].split(","):
        name, _, field = part.strip().partition("=")
        out[name] = field
    return out
