"""Context: who or what caused a change, carried with every state write and command."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

# A per-process prefix keeps ids unique across restarts without a uuid per write (hot path).
_PREFIX = os.urandom(4).hex()
_COUNTER = itertools.count(1)


class Context:
    """The origin of a change: a driver, an API client (token), a scene, the recognizer, ..."""

    __slots__ = ("_id", "may_control", "origin", "parent_id", "token_id")

    def __init__(
        self,
        origin: str = "hub",
        token_id: str | None = None,
        parent_id: str | None = None,
        id: str | None = None,
        may_control: Callable[[str], bool] | None = None,
    ) -> None:
        self._id = id
        self.origin = origin
        self.token_id = token_id
        self.parent_id = parent_id
        # The token's scope, for commands that act on further entities on its behalf (a scene's targets);
        # None: not limited (the hub itself, a schedule, the recognizer).
        self.may_control = may_control

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
