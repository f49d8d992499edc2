"""Matter setup codes: the QR payload (``MT:...``) and the 11- or 21-digit manual code, read per the Matter core
specification (5.1.3 QR code, 5.1.4 manual pairing code).

The hub needs only what they say about *which* appliance they open, to match a code to a commissionable
appliance in the inbox: a QR payload carries the full 12-bit discriminator and the vendor and product ids, a
manual code only the discriminator's top 4 bits (so several appliances may share one; the QR code is the one to
use then). The passcode is read to validate the code and never shown.
"""

from __future__ import annotations

from dataclasses import dataclass

_BASE38 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-."
# Verhoeff check digit tables (dihedral group D5): the manual code's last digit.
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
# Passcodes the specification forbids (trivial ones); a code carrying one is not a real appliance's.
_INVALID_PASSCODES = frozenset({0, 11111111, 22222222, 33333333, 44444444, 55555555, 66666666, 77777777,
                                88888888, 99999999, 12345678, 87654321})


class SetupCodeError(ValueError):
    """Not a Matter setup code; the message says what is wrong without repeating the code."""


@dataclass(frozen=True, slots=True)
class SetupCode:
    text: str  # as given (normalised): what matter-server is handed
    discriminator: int  # 12 bits from a QR payload, 4 bits (the top ones) from a manual code
    long_discriminator: bool
    vendor_id: int | None = None
    product_id: int | None = None

    def __repr__(self) -> str:  # the passcode is in ``text``: never print it
        return (f"SetupCode(discriminator={self.discriminator}, long={self.long_discriminator}, "
                f"vendor_id={self.vendor_id}, product_id={self.product_id})")

    def matches(self, discriminator: int, vendor_id: int | None, product_id: int | None) -> bool:
        """Whether an appliance announcing these values is one this code may open."""
        mine = self.discriminator
        theirs = discriminator if self.long_discriminator else discriminator >> 8
        if mine != theirs:
            return False
        for own, other in ((self.vendor_id, vendor_id), (self.product_id, product_id)):
            if own and other is not None and own != other:
                return False
        return True


def _verhoeff_ok(digits: str) -> bool:
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


def _base38_decode(text: str) -> bytes:
    out = bytearray()
    for start in range(0, len(text), 5):
        chunk = text[start:start + 5]
        value = 0
        for ch in reversed(chunk):
            index = _BASE38.find(ch)
            if index < 0:
                raise SetupCodeError("a Matter QR payload uses only 0-9, A-Z, '-' and '.' after 'MT:'")
            value = value * 38 + index
        size = {5: 3, 4: 2, 2: 1}.get(len(chunk))
        if size is None:
            raise SetupCodeError("a Matter QR payload has a length that base-38 cannot have")
        out += value.to_bytes(size + 1, "little")[:size]
    return bytes(out)


def _parse_qr(text: str) -> SetupCode:
    data = _base38_decode(text[3:])
    if len(data) < 11:
        raise SetupCodeError("a Matter QR payload is at least 11 bytes")
    bits = int.from_bytes(data[:11], "little")

    def take(offset: int, width: int) -> int:
        return (bits >> offset) & ((1 << width) - 1)

    version, vendor, product = take(0, 3), take(3, 16), take(19, 16)
    discriminator, passcode = take(45, 12), take(57, 27)
    if version != 0:
        raise SetupCodeError(f"Matter QR payload version {version} is not known (0 is)")
    if passcode in _INVALID_PASSCODES or passcode >= 1 << 27:
        raise SetupCodeError("the QR payload's passcode is not valid")
    return SetupCode(text, discriminator, True, vendor or None, product or None)


def _parse_manual(text: str) -> SetupCode:
    digits = text.replace("-", "").replace(" ", "")
    if not digits.isdigit() or len(digits) not in (11, 21):
        raise SetupCodeError("a manual pairing code is 11 or 21 digits (dashes and spaces allowed)")
    if not _verhoeff_ok(digits):
        raise SetupCodeError("the manual pairing code's check digit is wrong (mistyped?)")
    first = int(digits[0])
    if first > 7:
        raise SetupCodeError("the manual pairing code's first digit must be 0-7")
    chunk2, chunk3 = int(digits[1:6]), int(digits[6:10])
    discriminator = ((first & 0x3) << 2) | (chunk2 >> 14)
    passcode = (chunk2 & 0x3FFF) | (chunk3 << 14)
    if passcode in _INVALID_PASSCODES or passcode >= 1 << 27:
        raise SetupCodeError("the manual pairing code's passcode is not valid")
    long_form = bool(first & 0x4)
    if long_form != (len(digits) == 21):
        raise SetupCodeError("the manual pairing code's length does not match its first digit")
    vendor = int(digits[10:15]) if long_form else None
    product = int(digits[15:20]) if long_form else None
    return SetupCode(digits, discriminator, False, vendor or None, product or None)


def parse_setup_code(text: str) -> SetupCode:
    """A QR payload (``MT:...``) or a manual pairing code; :class:`SetupCodeError` otherwise."""
    if not isinstance(text, str):
        raise SetupCodeError("a Matter setup code is text")
    text = text.strip()
    if len(text) > 512:
        raise SetupCodeError("a Matter setup code is much shorter than that")
    if text.upper().startswith("MT:"):
        return _parse_qr("MT:" + text[3:])
    return _parse_manual(text)


__all__ = ["SetupCode", "SetupCodeError", "parse_setup_code"]
