"""Requests that race in the pool: many clients at once for the same new symbol, with the pool
opening its first connection meanwhile. Real clients of the proxy, a real simulator."""

from __future__ import annotations

import asyncio

from proxy_client import Client, eventually, now_ms

RACERS = 39
LATE_RACERS = 20


def connection_loads(pool) -> list[int]:
    return [c.symbols for c in pool.get_stats().connections]


async def subscribe_all(clients: list[Client], symbol: tuple[str, str]) -> list[dict]:
    """Every client asks for ``symbol`` at once; their replies."""
    for client in clients:
        await client.send(
            {
                "action": "subscribe",
                "symbols": [{"symbol": symbol[0], "exchange": symbol[1]}],
                "mode": 1,
            }
        )
    return await asyncio.gather(*(client.reply(20) for client in clients))


async def test_racing_first_subscriptions_make_one_slot_and_every_holder_keeps_its_ticks(
    serve, symbols
):
    proxy = await serve(ticks_per_second=20)
    pool = proxy.pool
    wanted, other = symbols(2)
    opener = await Client.open(proxy.url)
    racers = list(await asyncio.gather(*(Client.open(proxy.url) for _ in range(RACERS))))

    # The opener's request opens connection 1 while the racers' requests for one new symbol
    # queue behind it; each of them finds the symbol unplaced.
    await opener.send(
        {"action": "subscribe", "symbols": [{"symbol": other[0], "exchange": other[1]}]}
    )
    replies = await subscribe_all(racers, wanted)
    assert (await opener.reply(20))["status"] == "success"
    assert [r["status"] for r in replies] == ["success"] * RACERS, replies
    assert pool.total_symbols == 2
    assert connection_loads(pool) == [2]

    for client in racers[:-1]:
        await client.close()
    await eventually(lambda: len(proxy.sessions) == 2)
    assert connection_loads(pool) == [2]
    last = racers[-1]
    last.drain_ticks()
    since = now_ms()
    tick = await last.tick(within=10, symbol=wanted[0])
    while tick["data"]["timestamp"] <= since:
        tick = await last.tick(within=10, symbol=wanted[0])

    await asyncio.gather(last.close(), opener.close())
    await eventually(lambda: pool.total_symbols == 0 and connection_loads(pool) == [0])


async def test_every_racing_request_gets_its_reply(serve, symbols):
    proxy = await serve(ticks_per_second=1)
    pool = proxy.pool
    wanted, other = symbols(2)
    opener = await Client.open(proxy.url)
    clients = list(
        await asyncio.gather(*(Client.open(proxy.url) for _ in range(RACERS + LATE_RACERS)))
    )
    first, late = clients[:RACERS], clients[RACERS:]
    await opener.send(
        {"action": "subscribe", "symbols": [{"symbol": other[0], "exchange": other[1]}]}
    )
    first_replies = asyncio.ensure_future(subscribe_all(first, wanted))
    # The late ones ask once the symbol has its slot, while the first ones' requests are still
    # under way.
    await eventually(lambda: pool.total_symbols == 2)
    late_replies = await subscribe_all(late, wanted)
    replies = await first_replies + late_replies
    assert [r["status"] for r in replies] == ["success"] * len(clients)
    assert (await opener.reply(20))["status"] == "success"
    assert pool.total_symbols == 2 and connection_loads(pool) == [2]

    await asyncio.gather(opener.close(), *(client.close() for client in clients))
    await eventually(lambda: not proxy.sessions and pool.total_symbols == 0)
    assert connection_loads(pool) == [0]
