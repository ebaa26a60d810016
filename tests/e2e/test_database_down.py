"""PostgreSQL unreachable: the bot says so and changes nothing; /healthz alive, /readyz names the database."""
from __future__ import annotations

from tests.harness import BotServer, free_port, personal
from tests.wording import prefix


async def test_an_unreachable_database_gets_an_honest_answer_never_silence(tmp_path):
    bot = BotServer(data_dir=tmp_path / "data",
                    config_overrides={"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/none"})
    await bot.start()
    try:
        for text in ("tilmeld Aarhus", "status", "marker Udpeg projektejer som udført"):
            reply = await bot.say(text, personal())
            assert reply.startswith(prefix("da", "turn.failed")) or reply.startswith(prefix("da", "store.unavailable")), reply
        async with bot.session.get(f"{bot.url}/healthz") as response:
            assert response.status == 200
        async with bot.session.get(f"{bot.url}/readyz") as response:
            assert response.status == 503 and "database not writable" in (await response.json())["problems"]
        assert not list((tmp_path / "data").glob("**/*.json*"))  # nothing went to a data dir instead
    finally:
        await bot.close()
