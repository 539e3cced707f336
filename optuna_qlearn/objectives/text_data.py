"""Character-level text corpora for the learning-rate workload.

Three corpora are supported, each returned as a :class:`CharCorpus` (train/val/test token
arrays plus the vocabulary):

* ``shakespeare_char`` -- "tiny Shakespeare" (1,115,394 bytes, 65 characters), from a local
  path or its public URL, checked against its published SHA-256. The usual split: the first
  90% for training, the last 10% for validation (no test split).
* ``enwik8`` -- the first 10^8 bytes of an English Wikipedia XML dump, from the standard
  ``enwik8.zip``; byte-level tokens; the standard 90M/5M/5M train/validation/test split.
* ``text8`` -- 10^8 characters of cleaned Wikipedia text (``a``-``z`` and space), from the
  standard ``text8.zip``; the standard 90M/5M/5M split.

Tokens are stored as ``numpy.uint8`` (every vocabulary here has at most 256 symbols), so the
two 100 MB corpora take 100 MB of memory, not 800 MB.

Example:
    .. code-block:: python

        from optuna_qlearn.objectives.text_data import load_corpus

        corpus = load_corpus("shakespeare_char", "../shared/data/shakespeare_char/input.txt")
        print(corpus.vocab_size, len(corpus.train), len(corpus.val))
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
ENWIK8_URL = "http://mattmahoney.net/dc/enwik8.zip"
TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
#: enwik8 and text8 are both exactly 10^8 symbols long; that is what the loaders check
#: (no SHA-256 of the zip files is published by their author).
HUTTER_SIZE = 100_000_000
#: The standard split of enwik8/text8: 90M train, 5M validation, 5M test.
HUTTER_SPLIT = (90_000_000, 5_000_000, 5_000_000)

CORPORA = ("shakespeare_char", "enwik8", "text8")


@dataclass(frozen=True)
class CharCorpus:
    """A tokenized character-level corpus.

    Attributes:
        name: Corpus name (``"shakespeare_char"``, ``"enwik8"``, ``"text8"`` or custom).
        vocab: The symbols, in token-id order (``bytes`` for byte-level corpora, else ``str``).
        train: Training token ids (``numpy.uint8``).
        val: Validation token ids.
        test: Test token ids (empty when the corpus has no test split).
    """

    name: str
    vocab: tuple[str, ...] | bytes
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def vocab_size(self) -> int:
        """Number of distinct symbols."""
        return len(self.vocab)

    def split(self, name: str) -> np.ndarray:
        """Return the token array of split ``name`` (``"train"``, ``"val"`` or ``"test"``).

        Raises:
            ValueError: If ``name`` is not a split name.
        """
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; expected 'train', 'val' or 'test'")
        return getattr(self, name)

    def encode(self, text: str | bytes) -> np.ndarray:
        """Encode text (``str``) or bytes (byte-level corpora) into token ids.

        Raises:
            ValueError: If the text has a symbol outside the vocabulary.
        """
        if isinstance(self.vocab, bytes):
            data = text.encode("utf-8") if isinstance(text, str) else text
            table = {b: i for i, b in enumerate(self.vocab)}
            symbols: list[int] | str = list(data)
        else:
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            table = {c: i for i, c in enumerate(self.vocab)}  # type: ignore[misc]
            symbols = text
        try:
            return np.array([table[s] for s in symbols], dtype=np.uint8)  # type: ignore[index]
        except KeyError as exc:
            raise ValueError(
                f"symbol {exc.args[0]!r} is not in the {self.name} vocabulary"
            ) from None

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """Decode token ids to text (byte-level corpora as UTF-8, errors replaced)."""
        if isinstance(self.vocab, bytes):
            return bytes(self.vocab[int(i)] for i in ids).decode("utf-8", errors="replace")
        return "".join(self.vocab[int(i)] for i in ids)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike[str], sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` (atomically), verifying ``sha256`` when given.

    An existing ``dest`` is reused when its checksum matches (or no checksum is given).

    Args:
        url: Source URL (``https://``, ``http://`` or ``file://``).
        dest: Destination file path; parent directories are created.
        sha256: Expected hex SHA-256 of the file, or ``None`` to skip the check.

    Returns:
        The destination path.

    Raises:
        ValueError: If the downloaded file's checksum differs from ``sha256``.
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url) as response:
            shutil.copyfileobj(response, out)
        if sha256 is not None:
            got = sha256_of(tmp)
            if got != sha256:
                raise ValueError(
                    f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}"
                )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def default_cache_dir() -> Path:
    """Where downloads go: ``$OPTUNA_QLEARN_DATA`` or ``~/.cache/optuna_qlearn/data``."""
    env = os.environ.get("OPTUNA_QLEARN_DATA")
    return Path(env) if env else Path.home() / ".cache" / "optuna_qlearn" / "data"


def corpus_from_text(name: str, text: str, train_frac: float = 0.9) -> CharCorpus:
    """Tokenize ``text`` by character: the first ``train_frac`` for training, the rest validation.

    Args:
        name: Corpus name.
        text: The text (at most 256 distinct characters).
        train_frac: Fraction of the text used for training.

    Returns:
        The corpus (sorted characters as vocabulary; empty test split).

    Raises:
        ValueError: If the text has more than 256 distinct characters or ``train_frac`` is
            not in (0, 1).
    """
    if not 0.0 < train_frac < 1.0:
        raise ValueError(f"train_frac must be in (0, 1), got {train_frac}")
    vocab = tuple(sorted(set(text)))
    if len(vocab) > 256:
        raise ValueError(f"{name}: {len(vocab)} distinct characters; at most 256 are supported")
    table = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((table[c] for c in text), dtype=np.uint8, count=len(text))
    n_train = int(len(ids) * train_frac)
    return CharCorpus(name, vocab, ids[:n_train], ids[n_train:], ids[:0])


def load_shakespeare_char(
    path: str | os.PathLike[str] | None = None,
    *,
    download_if_missing: bool = False,
    verify: bool = True,
) -> CharCorpus:
    """Load tiny Shakespeare with the usual 90%/10% train/validation split.

    Args:
        path: The ``input.txt`` file. ``None`` means ``<cache>/shakespeare_char/input.txt``
            (see :func:`default_cache_dir`).
        download_if_missing: Fetch the file from :data:`SHAKESPEARE_URL` when it is missing.
        verify: Check the file against :data:`SHAKESPEARE_SHA256`.

    Returns:
        The corpus (65 symbols; empty test split).

    Raises:
        FileNotFoundError: If the file is missing and ``download_if_missing`` is false.
        ValueError: If ``verify`` is true and the checksum differs.
    """
    p = Path(path) if path is not None else default_cache_dir() / "shakespeare_char" / "input.txt"
    if not p.is_file():
        if not download_if_missing:
            raise FileNotFoundError(
                f"shakespeare_char corpus not found at {p}; pass download_if_missing=True to "
                f"fetch it from {SHAKESPEARE_URL}"
            )
        download(SHAKESPEARE_URL, p, SHAKESPEARE_SHA256)
    if verify:
        got = sha256_of(p)
        if got != SHAKESPEARE_SHA256:
            raise ValueError(
                f"{p} is not tiny Shakespeare: sha256 {got}, expected {SHAKESPEARE_SHA256} "
                "(pass verify=False to use a modified copy)"
            )
    return corpus_from_text("shakespeare_char", p.read_text(encoding="utf-8"), 0.9)


def _read_zip_member(path: Path, member: str) -> bytes:
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a zip file")
    with zipfile.ZipFile(path) as zf:
        if member not in zf.namelist():
            raise ValueError(f"{path} has no member {member!r} (members: {zf.namelist()[:5]})")
        return zf.read(member)


def _split_hutter(
    name: str, data: bytes, split: tuple[int, int, int] | None, vocab: bytes | tuple[str, ...]
) -> CharCorpus:
    if split is None:
        if len(data) != HUTTER_SIZE:
            raise ValueError(
                f"{name} should hold exactly {HUTTER_SIZE:,} symbols, found {len(data):,}; "
                "pass split=(n_train, n_val, n_test) for a custom file"
            )
        split = HUTTER_SPLIT
    n_train, n_val, n_test = split
    if min(split) < 0 or n_train + n_val + n_test > len(data):
        raise ValueError(f"{name}: split {split} does not fit into {len(data):,} symbols")
    if isinstance(vocab, bytes):
        lut = np.zeros(256, dtype=np.uint8)
        lut[np.frombuffer(vocab, dtype=np.uint8)] = np.arange(len(vocab), dtype=np.uint8)
    else:
        lut = np.zeros(256, dtype=np.uint8)
        for i, c in enumerate(vocab):
            lut[ord(c)] = i
    ids = lut[np.frombuffer(data, dtype=np.uint8)]
    a, b = n_train, n_train + n_val
    return CharCorpus(name, vocab, ids[:a], ids[a:b], ids[b : b + n_test])


def _resolve_zip(
    path: str | os.PathLike[str] | None, name: str, url: str, download_if_missing: bool
) -> Path:
    p = Path(path) if path is not None else default_cache_dir() / name / f"{name}.zip"
    if not p.is_file():
        if not download_if_missing:
            raise FileNotFoundError(
                f"{name} zip not found at {p}; pass download_if_missing=True to fetch {url}"
            )
        download(url, p)
    return p


def load_enwik8(
    path: str | os.PathLike[str] | None = None,
    *,
    split: tuple[int, int, int] | None = None,
    download_if_missing: bool = False,
) -> CharCorpus:
    """Load enwik8 from ``enwik8.zip`` as byte-level tokens.

    The vocabulary is the set of byte values present in the file, sorted (205 for the real
    enwik8). The standard split is the first 90M bytes for training, the next 5M for
    validation and the last 5M for test.

    Args:
        path: The ``enwik8.zip`` file (member ``enwik8``); ``None`` means the cache directory.
        split: ``(n_train, n_val, n_test)``; ``None`` requires the real 10^8-byte file and uses
            :data:`HUTTER_SPLIT`.
        download_if_missing: Fetch :data:`ENWIK8_URL` when the file is missing.

    Returns:
        The corpus.

    Raises:
        FileNotFoundError: If the file is missing and ``download_if_missing`` is false.
        ValueError: If the file is not a zip with an ``enwik8`` member, or has the wrong size.
    """
    p = _resolve_zip(path, "enwik8", ENWIK8_URL, download_if_missing)
    data = _read_zip_member(p, "enwik8")
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    vocab = bytes(int(b) for b in np.flatnonzero(counts))
    return _split_hutter("enwik8", data, split, vocab)


def load_text8(
    path: str | os.PathLike[str] | None = None,
    *,
    split: tuple[int, int, int] | None = None,
    download_if_missing: bool = False,
) -> CharCorpus:
    """Load text8 from ``text8.zip``: 27 symbols (space and ``a``-``z``), 90M/5M/5M split.

    Args:
        path: The ``text8.zip`` file (member ``text8``); ``None`` means the cache directory.
        split: ``(n_train, n_val, n_test)``; ``None`` requires the real 10^8-character file.
        download_if_missing: Fetch :data:`TEXT8_URL` when the file is missing.

    Returns:
        The corpus.

    Raises:
        FileNotFoundError: If the file is missing and ``download_if_missing`` is false.
        ValueError: If the file is not a text8 zip (wrong member, size or characters).
    """
    p = _resolve_zip(path, "text8", TEXT8_URL, download_if_missing)
    data = _read_zip_member(p, "text8")
    vocab = tuple(" abcdefghijklmnopqrstuvwxyz")
    allowed = np.zeros(256, dtype=bool)
    allowed[[ord(c) for c in vocab]] = True
    if not allowed[np.frombuffer(data, dtype=np.uint8)].all():
        raise ValueError(f"{p}: text8 may only contain spaces and lowercase a-z")
    return _split_hutter("text8", data, split, vocab)


def load_corpus(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    download_if_missing: bool = False,
    split: tuple[int, int, int] | None = None,
) -> CharCorpus:
    """Load one of :data:`CORPORA` by name.

    Args:
        name: ``"shakespeare_char"``, ``"enwik8"`` or ``"text8"``.
        path: The corpus file (``input.txt`` or the zip file); ``None`` means the cache directory.
        download_if_missing: Fetch the corpus from its public URL when it is missing.
        split: For enwik8/text8 only: a custom ``(n_train, n_val, n_test)``.

    Returns:
        The corpus.

    Raises:
        ValueError: If ``name`` is unknown, or ``split`` is given for shakespeare_char.
    """
    if name == "shakespeare_char":
        if split is not None:
            raise ValueError("shakespeare_char always uses its 90%/10% split; split must be None")
        return load_shakespeare_char(path, download_if_missing=download_if_missing)
    if name == "enwik8":
        return load_enwik8(path, split=split, download_if_missing=download_if_missing)
    if name == "text8":
        return load_text8(path, split=split, download_if_missing=download_if_missing)
    raise ValueError(f"unknown corpus {name!r}; expected one of {CORPORA}")
