"""Context: who or what caused a change, carried with every state write and command."""

from __future__ import annotations

import itertools
import os

# A per-process prefix keeps ids unique across restarts without a uuid per write (hot path).
_PREFIX = os.urandom(4).hex()
_COUNTER = itertools.count(1)


class Context:
    """The origin of a change: a driver, an API client (token), a scene, the recognizer, ..."""

    __slots__ = ("_id", "origin", "parent_id", "token_id")

    def __init__(
        self,
        origin: str = "hub",
        token_id: str | None = None,
        parent_id: str | None = None,
        id: str | None = None,
    ) -> None:
        self._id = id
        self.origin = origin
        self.token_id = token_id
        self.parent_id = parent_id

    @property
    def id(self) -> str:
        # Formatted lazily: most writes never have their context id read.
        if self._id is None:
            self._id = f"{_PREFIX}{next(_COUNTER):x}"
        return self._id

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "origin": self.origin, "token_id": self.token_id, "parent_id": self.parent_id}

    def __repr__(self) -> str:
        return f"<Context {self.origin} {self.id}>"
