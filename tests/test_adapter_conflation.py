"""An adapter that is behind publishes the newest tick of each subscription and counts the rest."""

from __future__ import annotations

from proxy_client import eventually
from websockets.asyncio.server import serve

from backend.brokers import BROKERS
from backend.brokers.adapter import BEHIND_TICKS
from backend.brokers.angel import protocol
from backend.brokers.angel.adapter import SmartStreamAdapter
from backend.bus.publisher import ZmqPublisher
from backend.feed import QUOTE
from backend.instruments.master import Instrument
from backend.simulator import SimulatorCredentials
from backend.wire.batch import send_batch

SBIN = Instrument("3045", "SBIN", "State Bank of India", "NSE", "EQ", 1, 0.05)
INFY = Instrument("1594", "INFY", "Infosys", "NSE", "EQ", 1, 0.05)
BURST = 2 * BEHIND_TICKS  # of each symbol, in one write: reads bring more than BEHIND_TICKS


def quote(token: str, ltp: int, sequence: int) -> bytes:
    packet = protocol.Packet(QUOTE, 1, token, sequence, 1_764_060_000_000 + sequence, ltp)
    return protocol.encode(packet)


async def ticks_through_an_adapter(burst: int) -> tuple[list[tuple[bytes, bytes]], int]:
    """What an adapter publishes of ``burst`` ticks each of SBIN and INFY sent in one write,
    and how many it shed."""

    async def broker(websocket):
        async for message in websocket:
            if message == "ping":
                await websocket.send("pong")
                continue
            frames = [quote("3045", 80_000 + n, n) for n in range(burst)]
            frames += [quote("1594", 150_000 + n, n) for n in range(burst)]
            await send_batch(websocket, frames, text=False)

    published: list[tuple[bytes, bytes]] = []
    publisher = ZmqPublisher(port=0)
    publisher.tick_listener = lambda topic, payload: published.append((topic, payload))
    async with serve(broker, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/smart-stream"
        credentials = BROKERS["angel"].simulator_credentials(SimulatorCredentials())
        adapter = SmartStreamAdapter(1, url, credentials, publisher=publisher)
        try:
            await adapter.connect()
            assert await adapter.hold([SBIN, INFY], QUOTE) == []
            await eventually(lambda: adapter.ticks_received == 2 * burst)
        finally:
            await adapter.close()
            publisher.close()
    return published, adapter.ticks_shed


async def test_a_burst_in_one_read_publishes_the_newest_tick_of_each_subscription():
    """A broker that sends ticks faster than they are read: they arrive many to a read."""
    published, shed = await ticks_through_an_adapter(BURST)
    newest = {}
    for topic, payload in published:
        newest[topic] = payload
    assert set(newest) == {b"NSE_SBIN_QUOTE", b"NSE_INFY_QUOTE"}
    last = BURST - 1  # the last of the burst, in paise over 800 and 1500 rupees
    assert f'"ltp":{(80_000 + last) / 100}'.encode() in newest[b"NSE_SBIN_QUOTE"]
    assert f'"ltp":{(150_000 + last) / 100}'.encode() in newest[b"NSE_INFY_QUOTE"]
    assert len(published) < 2 * BURST  # the burst came in fewer reads than frames
    assert shed == 2 * BURST - len(published)


async def test_an_adapter_that_keeps_up_publishes_every_tick():
    published, shed = await ticks_through_an_adapter(50)
    assert shed == 0
    assert [p for t, p in published if t == b"NSE_SBIN_QUOTE"][-1].count(b'"ltp":800.49') == 1
    assert len(published) == 100
