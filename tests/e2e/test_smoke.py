from tests.harness import personal


async def test_register_then_status_over_http(server):
    reply = await server.say("tilmeld Aarhus", personal())
    assert "Aarhus Kommune" in reply
    reply = await server.say("status", personal())
    assert "Fase 1: Opstart" in reply and "0 af 34" in reply
