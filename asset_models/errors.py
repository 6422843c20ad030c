"""The errors of the asset model layer: what went wrong, with the object it concerns.

    ModelError (sitewise_edge.errors)
    ├── ModelInvalid       documents or a control-plane request that do not check (``problems``, one a line)
    ├── ModelNotFound      no model, asset, property or hierarchy by that reference (``ref``)
    └── ModelConflict      the operation clashes with an existing object (``resource_id``, ``resource_type``)
        ├── ModelExists    an id, external id, name or link already used
        └── ModelInUse     a delete refused while the object is associated or used

The model layer knows nothing of HTTP: the API maps these to SiteWise's error shapes in one
place (``api/sitewise/errors.py``), e.g. :class:`ModelExists` to ``ResourceAlreadyExistsException``
with ``resourceId`` and ``resourceArn``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sitewise_edge.errors import ModelError

ResourceType = Literal["asset", "asset-model", "time-series"]
"""The kind of object a conflict names (as in its ARN: ``...:asset/<id>``, ``...:asset-model/<id>``)."""


class ModelInvalid(ModelError):
    """Documents or a request that do not check; ``problems`` holds one line per problem."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))


class ModelNotFound(ModelError):
    """No object answers ``ref`` (a UUID or ``externalId:...``, as given)."""

    def __init__(self, message: str, ref: str) -> None:
        super().__init__(message)
        self.ref = ref


class ModelConflict(ModelError):
    """The operation clashes with the object ``resource_id`` (of ``resource_type``)."""

    def __init__(self, message: str, resource_id: str, resource_type: ResourceType) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.resource_type: ResourceType = resource_type


class ModelExists(ModelConflict):
    """An id, external id or name another object already has, or a link that already exists."""


class ModelInUse(ModelConflict):
    """A delete refused: the object is still associated, has assets, or is held by a hierarchy."""
