"""What can be told about an inbound Authorization header without any network: a channel's token is a JWT
signed RS256 with a key id. Anything else is refused at once (401), before the signing keys are even looked at."""
from __future__ import annotations

import jwt

ALGORITHM = "RS256"


def refusal(header: str | None) -> str | None:
    """Why the header cannot carry a channel token ("missing", "scheme", "malformed", "algorithm", "kid"),
    or None when it may (its signature and claims are then checked against the keys)."""
    if not header:
        return "missing"
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token or " " in token.strip():
        return "scheme"
    try:
        fields = jwt.get_unverified_header(token.strip())
    except jwt.PyJWTError:
        return "malformed"
    if fields.get("alg") != ALGORITHM:
        return "algorithm"  # "none", HS256 with the public key as secret, …: never worth a key lookup
    if not isinstance(fields.get("kid"), str) or not fields["kid"]:
        return "kid"
    return None
