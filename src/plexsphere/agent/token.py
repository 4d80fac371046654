"""What the agent can read from a bootstrap token without asking the server (DECISIONS 3):
`psb_<env>_<base32(project uuid bytes), lowercase, unpadded>_<kind>_<base32 random>`."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass

_TOKEN = re.compile(r"^psb_([a-z]+)_([a-z2-7]{26})_([a-z]+)_([a-z2-7]+)$")


class TokenFormatError(ValueError):
    pass


@dataclass(frozen=True)
class BootstrapTokenInfo:
    env: str
    project_id: uuid.UUID
    kind: str

    def __repr__(self) -> str:
        return f"BootstrapTokenInfo(env={self.env}, project_id={self.project_id}, kind={self.kind})"


def parse_bootstrap_token(token: str) -> BootstrapTokenInfo:
    match = _TOKEN.match(token.strip())
    if not match:
        raise TokenFormatError("the bootstrap token does not have the psb_<env>_<project>_<kind>_<random> shape")
    env, project, kind, _random = match.groups()
    try:
        raw = base64.b32decode(project.upper() + "=" * (-len(project) % 8))
    except (binascii.Error, ValueError):
        raise TokenFormatError("the bootstrap token's project segment is not base32") from None
    if len(raw) != 16:
        raise TokenFormatError("the bootstrap token's project segment is not a UUID")
    return BootstrapTokenInfo(env=env, project_id=uuid.UUID(bytes=raw), kind=kind)
