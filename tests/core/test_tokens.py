from pathlib import Path

from hub.storage import RegistryStore
from hub.tokens import Scopes, TokenStore


def test_tokens_are_stored_hashed_and_revocable(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "r.db")
    tokens = TokenStore(store)
    token, secret = tokens.create("phone")
    assert tokens.verify(secret) is not None and tokens.verify(secret).id == token.id  # type: ignore[union-attr]
    raw = (tmp_path / "r.db").read_bytes() + (tmp_path / "r.db-wal").read_bytes()
    assert secret.encode() not in raw
    assert tokens.verify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert tokens.verify("") is None and tokens.verify(None) is None  # type: ignore[arg-type]
    assert tokens.revoke(token.id)
    assert tokens.verify(secret) is None
    store.close()


def test_scopes() -> None:
    kids = Scopes(read_only=False, areas=frozenset({"kids_room"}))
    assert kids.can_control("light.kids_lamp", "kids_room")
    assert not kids.can_see("lock.front_door", "hall")
    assert not kids.can_control("lock.front_door", None)
    viewer = Scopes(read_only=True)
    assert viewer.can_see("lock.front_door", "hall") and not viewer.can_control("lock.front_door", "hall")
    one = Scopes(entities=frozenset({"switch.fan"}))
    assert one.can_control("switch.fan", None) and not one.can_see("switch.other", None)
    assert Scopes.from_dict(kids.to_dict()) == kids
