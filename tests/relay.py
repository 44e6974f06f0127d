"""A TCP relay between a client and a server, whose server-to-client direction can be held.

Held, the server's bytes wait in the relay: the connection stays open and the client's requests
still reach the server, but no answer comes back, as with a broker that stops answering.
"""

from __future__ import annotations

import asyncio
import contextlib


class Relay:
    """Listens on 127.0.0.1 (a free port) and relays every connection to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def hold(self) -> None:
        """Keep what the server sends from the client until :meth:`release`."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self._target)
        up = asyncio.ensure_future(self._pipe(reader, server_writer, None))
        down = asyncio.ensure_future(self._pipe(server_reader, writer, self._flowing))
        self._tasks |= {up, down}
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for stream in (writer, server_writer):
            stream.close()

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if gate is not None:
                    await gate.wait()
                writer.write(data)
                await writer.drain()

    async def stop(self) -> None:
        self.release()
        for task in self._tasks:
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
