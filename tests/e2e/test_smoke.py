from tests.harness import personal
from tests.wording import status_of


async def test_register_then_status_over_http(server, content):
    reply = await server.say("tilmeld Aarhus", personal())
    assert "Aarhus Kommune" in reply
    status = status_of("da", await server.say("status", personal()), "Aarhus Kommune")
    assert status.current == 1 and status.phases[1][0] == content.phase(1).name.da
    assert status.total == (0, len(content.tasks))
