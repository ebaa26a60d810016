from __future__ import annotations

import pytest

from content import load_content
from tests.harness import BotServer


@pytest.fixture(scope="session")
def content():
    return load_content()


@pytest.fixture
async def server(tmp_path):
    bot = BotServer(data_dir=tmp_path / "data")
    await bot.start()
    yield bot
    await bot.close()
