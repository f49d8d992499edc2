"""Run one target under atheris (libFuzzer): ``python -m fuzz.main TARGET [libFuzzer flags] [CORPUS]``.

fuzz/run.py calls this in a child process; use that instead unless you want raw libFuzzer flags.
"""

from __future__ import annotations

import importlib
import logging
import sys

import atheris


class _ErrorLog(logging.Handler):
    """A logged exception (``_LOGGER.exception``) is a bug the code caught: the fuzzer must see it as a crash."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Only caught exceptions: a library's plain error message about a bad advert is its way to refuse it.
        if record.exc_info:
            self.records.append(record)


def main() -> None:
    name = sys.argv[1]
    instrument = importlib.import_module(f"fuzz.targets.{name}").INSTRUMENT
    with atheris.instrument_imports(include=list(instrument)):
        for module in instrument:
            importlib.import_module(module)
    target = importlib.import_module(f"fuzz.targets.{name}")
    if hasattr(target, "setup"):
        target.setup()
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    logging.getLogger().setLevel(logging.WARNING)

    def one(data: bytes) -> None:
        errors.records.clear()
        target.one(data)
        if errors.records:
            record = errors.records[0]
            raise AssertionError(f"logged error: {record.getMessage()}\n"
                                 f"{logging.Formatter().formatException(record.exc_info) if record.exc_info else ''}")

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
