"""Who is asking: JSON Web Tokens verified against a JWKS, as Cognito issues them.

In AWS the tokens come from the Cognito user pool (its JWKS at
``<issuer>/.well-known/jwks.json``); locally ``LocalSigner`` mints them with a key
kept in the lake, and publishes its JWKS. Both are verified by ``Verifier``: the
signature by the key the token names, then issuer, expiry, token use and client.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from veracity.lake import Lake
from veracity.schema import SENSITIVITY_LEVELS

# What each Cognito group may see, as Lake Formation grants it (stacks/catalog.py):
# analysts read general columns only; officers likewise; admins (investigators) every
# column, identifiers and restricted (intelligence) fields included.
GROUP_ACCESS: dict[str, tuple[str, ...]] = {
    "officer": ("general",),
    "analyst": ("general",),
    "admin": SENSITIVITY_LEVELS,
}
GROUPS = tuple(GROUP_ACCESS)
LOCAL_KEY = ("state", "search", "signing_key.pem")
LOCAL_CLIENT_ID = "veracity-local"
ALGORITHM = "RS256"


class Unauthorised(Exception):
    """No token, or one that does not verify: the API answers 401."""


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]

    @property
    def access(self) -> frozenset[str]:
        return frozenset(level for g in self.groups for level in GROUP_ACCESS.get(g, ()))

    def may_see(self, sensitivity: str) -> bool:
        return sensitivity in self.access


class Verifier:
    """Verifies a bearer token issued by ``issuer`` for ``client_id``, with the keys of ``jwks``."""

    def __init__(self, jwks: dict | Callable[[], dict], issuer: str, client_id: str):
        self._jwks = jwks
        self._keys: dict | None = None
        self.issuer, self.client_id = issuer, client_id

    @classmethod
    def for_cognito(cls, region: str, user_pool_id: str, client_id: str) -> Verifier:
        """Verifies the user pool's tokens with its JWKS, fetched at the first request."""
        issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        client = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json")
        return cls(lambda: {"keys": [k._jwk_data for k in client.get_jwk_set().keys]}, issuer, client_id)

    def _key(self, kid: str | None):
        if self._keys is None:
            jwks = self._jwks() if callable(self._jwks) else self._jwks
            self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
        return self._keys.get(kid)

    def user(self, authorization: str | None) -> User:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorised("missing bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            key = self._key(jwt.get_unverified_header(token).get("kid"))
            if key is None:
                raise Unauthorised("token signed with an unknown key")
            claims = jwt.decode(token, key.key, algorithms=[ALGORITHM], issuer=self.issuer,
                                options={"require": ["exp", "iss", "token_use"], "verify_aud": False})
        except jwt.PyJWTError as exc:
            raise Unauthorised(f"invalid token: {exc}") from None
        # Cognito: an id token names the client in aud, an access token in client_id.
        use = claims.get("token_use")
        client = claims.get("aud") if use == "id" else claims.get("client_id") if use == "access" else None
        if client != self.client_id:
            raise Unauthorised("token not issued for this client")
        name = claims.get("cognito:username") or claims.get("username") or claims.get("sub")
        groups = tuple(g for g in claims.get("cognito:groups", []) if g in GROUP_ACCESS)
        if not name or not groups:
            raise Unauthorised("token names no user or no known group")
        return User(str(name), groups)


class LocalSigner:
    """A signing key kept in a local lake, for ``veracity token`` and ``veracity serve``."""

    def __init__(self, lake: Lake):
        if not lake.exists(*LOCAL_KEY):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            lake.write_bytes(pem, *LOCAL_KEY)
            if lake.is_local:
                os.chmod(lake.path(*LOCAL_KEY), 0o600)
        self._key = serialization.load_pem_private_key(lake.read_bytes(*LOCAL_KEY), password=None)
        self.issuer = f"veracity-local:{lake.display()}"
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self.kid = hashlib.sha256(json.dumps(public, sort_keys=True).encode()).hexdigest()[:16]
        self.jwks = {"keys": [{**public, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}]}

    def verifier(self) -> Verifier:
        return Verifier(self.jwks, self.issuer, LOCAL_CLIENT_ID)

    def mint(self, user: str, groups: list[str], ttl_seconds: int = 3600) -> str:
        """An access token shaped as Cognito's: the same claims the verifier reads."""
        unknown = sorted(set(groups) - set(GROUP_ACCESS))
        if unknown:
            raise ValueError(f"unknown group {unknown[0]!r}: use {', '.join(GROUPS)}")
        now = int(time.time())
        claims = {"sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.issuer}/{user}")), "username": user,
                  "cognito:groups": groups, "iss": self.issuer, "client_id": LOCAL_CLIENT_ID, "token_use": "access",
                  "iat": now, "exp": now + ttl_seconds, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
