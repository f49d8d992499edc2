"""The QOAP simulator's firmware variants: a correct one and deliberately broken or older ones for the
conformance kit. Data only, so the command line can offer them without loading the simulator."""

from typing import Literal

Variant = Literal["ok", "bad_txt", "silent", "crashy", "profile_1_0", "unbound_identity"]
VARIANTS: tuple[Variant, ...] = ("ok", "bad_txt", "silent", "crashy", "profile_1_0", "unbound_identity")
