"""SPEED ONLY: the understander's training kept between start-ups (the plain fallback: train, as without it).

Training tags every sentence of the content (a few thousand), which is most of the understander's start-up.
What it derives is plain strings (dialogs.understanding.pipeline.Trained), so it is kept as JSON, under a key
that changes with anything it is derived from: the content folder's files, the understanding code, and the
installed word lists. A missing, unreadable or foreign file is no error: the bot trains and tries to write it
again. Nothing here is needed: a read-only disk, or a container without a cache, just trains. The equivalence
test is tests/core/test_understanding_cache.py.
"""
from __future__ import annotations

import hashlib
import logging
from importlib import metadata
from pathlib import Path

import dialogs.understanding
from bot.json_file import write_atomically
from bot.json_text import dumps as encode
from bot.json_text import loads as decode
from content import Content
from dialogs.understanding import Understander
from dialogs.understanding.pipeline import Trained

log = logging.getLogger(__name__)

FORMAT = 1  # of the file below; a change of the layout changes the key


def training_key(content_root: Path) -> str:
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    code = Path(dialogs.understanding.__file__).parent
    for root in (Path(content_root), code):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for package in ("wordfreq", "hassil", "rapidfuzz"):
        try:
            digest.update(f"{package} {metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(package.encode())
    return digest.hexdigest()


def to_json(trained: Trained) -> bytes:
    return encode({"known": sorted(trained.known), "samples": [[list(f), intent] for f, intent in trained.samples],
                   "examples": trained.examples, "conflicts": {k: sorted(v) for k, v in trained.conflicts.items()}})


def from_json(raw: bytes) -> Trained:
    data = decode(raw)
    return Trained(known=frozenset(data["known"]),
                   samples=tuple((tuple(f), intent) for f, intent in data["samples"]),
                   examples=dict(data["examples"]),
                   conflicts={k: frozenset(v) for k, v in data["conflicts"].items()})


def understander(content: Content, content_root: Path, cache_dir: Path | None) -> Understander:
    """The understander for this content, its training read from `cache_dir` when there (None: always train)."""
    if cache_dir is None:
        return Understander.of(content)
    path = Path(cache_dir) / f"training-{training_key(content_root)}.json"
    trained = None
    try:
        trained = from_json(path.read_bytes())
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:  # unreadable or damaged: trained afresh below
        log.warning("understanding cache ignored", extra={"path": str(path), "error": type(exc).__name__})
    built = Understander.of(content, trained)
    if trained is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.glob("training-*.json"):
                old.unlink(missing_ok=True)  # one per machine: older contents' training is never read again
            write_atomically(path, to_json(built.trained), sync=False)
        except OSError as exc:
            log.info("understanding cache not written", extra={"path": str(path), "error": type(exc).__name__})
    return built
