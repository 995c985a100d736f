"""A text corpus that is on every machine: source files of Python's own standard library.

A fixed, documented selection of modules, read as bytes. Training text is the concatenation of
``TRAIN_FILES``; validation text is ``VALIDATION_FILES``, whole files the models never see,
so the validation loss measures generalisation, not memory. The exact bytes depend on the
Python version (the files change between releases); runs of one family should share a Python.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path

TRAIN_FILES = (
    "argparse.py", "ast.py", "calendar.py", "collections/__init__.py", "configparser.py",
    "csv.py", "dataclasses.py", "datetime.py", "difflib.py", "enum.py", "fractions.py",
    "functools.py", "gettext.py", "heapq.py", "inspect.py", "ipaddress.py", "json/decoder.py",
    "json/encoder.py", "logging/__init__.py", "pprint.py", "random.py", "shutil.py",
    "statistics.py", "string.py", "subprocess.py", "tarfile.py", "textwrap.py", "threading.py",
    "typing.py", "unittest/case.py", "zipfile.py", "tokenize.py", "pickle.py",
)  # fmt: skip
VALIDATION_FILES = ("email/message.py", "http/client.py", "urllib/parse.py")
MIN_FILES_FOUND = 0.8  # tolerate a few modules moved in other Python versions


@dataclass(frozen=True)
class Corpus:
    train: bytes
    validation: bytes
    root: Path
    train_files: tuple[str, ...]
    validation_files: tuple[str, ...]


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _read(root: Path, names: tuple[str, ...]) -> tuple[bytes, tuple[str, ...]]:
    found = tuple(n for n in names if (root / n).is_file())
    if len(found) < MIN_FILES_FOUND * len(names):
        missing = sorted(set(names) - set(found))
        raise FileNotFoundError(f"standard library at {root} lacks {missing}")
    return b"\n".join((root / n).read_bytes() for n in found), found


def load_corpus(root: Path | None = None) -> Corpus:
    """The training and validation bytes, and which files they came from."""
    root = root or stdlib_root()
    train, train_found = _read(root, TRAIN_FILES)
    validation, val_found = _read(root, VALIDATION_FILES)
    return Corpus(train, validation, root, train_found, val_found)
