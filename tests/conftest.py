from __future__ import annotations

from pathlib import Path

import pytest

from content import load_content
from tests.harness import BotServer


@pytest.fixture(scope="session")
def content():
    return load_content()


@pytest.fixture(scope="session", autouse=True)
def _content_loaded_once_per_folder(content):
    """Every test server builds its own app, catalogs and store on its own data dir; the validated content of
    one content folder (immutable data) and the understander trained on it (Understander.of) are shared, as
    they would be by one process serving many conversations. A test with its own content folder loads it."""
    import bot.app
    from content.loader import CONTENT_ROOT

    def version(root: Path) -> tuple:
        """The folder as it is now: a test that edits a file between two servers gets the edited content."""
        return tuple(sorted((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in root.rglob("*") if f.is_file()))

    loaded = {version(CONTENT_ROOT.resolve()): content}
    original = bot.app.load_content

    def load(root=CONTENT_ROOT):
        key = version(Path(root).resolve())
        if key not in loaded:
            loaded[key] = original(root)
        return loaded[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bot.app, "load_content", load)
        yield


@pytest.fixture
async def server(tmp_path):
    bot = BotServer(data_dir=tmp_path / "data")
    await bot.start()
    yield bot
    await bot.close()
