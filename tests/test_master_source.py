"""A real broker's instrument master: downloaded from the simulator over HTTP, cached for the day.

Every download here is a real HTTP GET of a real server on 127.0.0.1: the exchange simulator's
master endpoint (the bundled instruments in the broker's published format), a simulator that
no longer listens, or a small origin server answering what a test tells it to. The cache's age
is set with ``os.utime`` or ``now=``; nothing waits on the clock.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import re
import signal
import socket
from pathlib import Path

import pytest
from proxy_client import Client

from backend.brokers import BROKERS
from backend.instruments.master import InstrumentMaster, MasterFormatError
from backend.instruments.sources import MasterUnavailableError, broker_master, cache_dir
from backend.runtime.settings import log_dir
from backend.simulator import ExchangeSimulator

#: India's time zone, written here on its own: a copy is current on its trading date in India.
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
DAY = 24 * 60 * 60
START_TIMEOUT = 30.0
SECRET = "secret123"
#: Instruments whose symbols each broker's format must carry through unchanged.
SAMPLES = [
    ("SBIN", "NSE"),
    ("NIFTY", "NSE_INDEX"),
    ("NIFTY29DEC2626000CE", "NFO"),
    ("USDINR29DEC26FUT", "CDS"),
]


def keys(master: InstrumentMaster) -> set[tuple[str, str]]:
    return {(i.symbol, i.exchange) for i in master}


def the_cache_file(folder: Path) -> Path:
    """The one file in ``folder``; fails if there is none or more than one."""
    files = sorted(folder.iterdir())
    assert len(files) == 1, files
    assert files[0].is_file()
    return files[0]


def set_mtime(path: Path, timestamp: float) -> None:
    os.utime(path, (timestamp, timestamp))


def india_date(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, IST).date().isoformat()


def master_lines(caplog, level: int | None = None) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "feedpool.master" and (level is None or r.levelno == level)
    ]


def downloading(caplog) -> list[str]:
    return [line for line in master_lines(caplog) if line.startswith("Downloading")]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    """Record INFO lines of every logger, as the backend's log does (root at INFO)."""
    caplog.set_level(logging.INFO)


class Origin:
    """A plain HTTP/1.1 server on 127.0.0.1 answering every GET with what it is told.

    ``status`` and ``body``; with ``short`` it promises the whole body's length and closes after
    half of it, like a dropped download.
    """

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        self.short = False
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/OpenAPI_File/files/OpenAPIScripMaster.json"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.requests += 1
        body = self.body[: len(self.body) // 2] if self.short else self.body
        head = (
            f"HTTP/1.1 {self.status} Answer\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def origin():
    server = Origin()
    await server.start()
    yield server
    await server.stop()


# Download, cache, progress


@pytest.mark.parametrize("name", ["angel", "zerodha"])
async def test_downloads_the_brokers_master_into_one_cache_file_with_progress(
    make_simulator, master, tmp_path, caplog, name
):
    broker = BROKERS[name]
    simulator = await make_simulator(broker=name)

    got = await broker_master(broker, simulator.master_url + f"?api_key={SECRET}", folder=tmp_path)

    assert isinstance(got, InstrumentMaster)
    assert keys(got) == keys(master)
    for symbol, exchange in SAMPLES:
        assert got.get(symbol, exchange).symbol == symbol
    cached = the_cache_file(tmp_path)
    assert cached.name.startswith(name)
    assert keys(InstrumentMaster(broker.read_master(cached.read_bytes(), "cache"))) == keys(master)
    assert india_date(cached.stat().st_mtime) == india_date(datetime.datetime.now(IST).timestamp())

    lines = downloading(caplog)
    assert any(
        line.startswith(f"Downloading the instrument master from {simulator.master_url} (")
        for line in lines
    ), lines
    percentages = [int(m[1]) for line in lines if (m := re.search(r": (\d+)% of [\d.]+ MB$", line))]
    assert percentages, lines
    assert percentages == sorted(percentages) and all(0 < p < 100 for p in percentages)
    assert all("?" not in line and SECRET not in line for line in master_lines(caplog))


async def test_no_log_line_and_no_error_shows_the_master_urls_query_string(
    make_simulator, tmp_path, caplog
):
    """A master URL may carry a credential in its query: no log line of any logger names it."""
    angel = BROKERS["angel"]
    simulator = await make_simulator()
    url = simulator.master_url + f"?api_key={SECRET}"
    await broker_master(angel, url, folder=tmp_path)  # downloaded
    await simulator.stop()
    cached = the_cache_file(tmp_path)
    set_mtime(cached, cached.stat().st_mtime - DAY)
    await broker_master(angel, url, folder=tmp_path)  # refresh fails: the cached copy
    with pytest.raises(MasterUnavailableError) as raised:
        await broker_master(angel, url, folder=tmp_path / "empty")  # no copy

    assert SECRET not in str(raised.value)
    assert downloading(caplog) and master_lines(caplog, logging.WARNING)
    leaks = [f"{r.name}: {r.getMessage()}" for r in caplog.records if SECRET in r.getMessage()]
    assert not leaks


async def test_the_default_cache_is_the_user_cache_dir(make_simulator, master):
    simulator = await make_simulator(broker="zerodha")

    got = await broker_master(BROKERS["zerodha"], simulator.master_url)

    assert keys(got) == keys(master)
    cached = the_cache_file(Path(os.environ["XDG_CACHE_HOME"]) / "FeedPool" / "masters")
    assert cached.name.startswith("zerodha")


# The day's copy and its refresh


async def test_a_copy_of_the_same_trading_date_is_used_without_a_download(
    make_simulator, master, tmp_path, caplog
):
    angel = BROKERS["angel"]
    simulator = await make_simulator()
    url = simulator.master_url
    await broker_master(angel, url, folder=tmp_path)
    cached = the_cache_file(tmp_path)
    stamp = cached.stat().st_mtime_ns
    await simulator.stop()
    caplog.clear()

    again = await broker_master(angel, url, folder=tmp_path, now=cached.stat().st_mtime)
    today = await broker_master(angel, url, folder=tmp_path)  # the real clock: still today

    assert keys(again) == keys(today) == keys(master)
    assert downloading(caplog) == []
    assert not master_lines(caplog, logging.WARNING)
    assert cached.stat().st_mtime_ns == stamp
    assert the_cache_file(tmp_path) == cached


async def test_the_copy_is_current_until_midnight_india_time(make_simulator, tmp_path, caplog):
    """10:00 and 23:59:59 IST fall on one UTC date with 00:00 IST the next day (18:30 UTC)."""
    angel = BROKERS["angel"]
    simulator = await make_simulator()
    url = simulator.master_url
    await broker_master(angel, url, folder=tmp_path)
    cached = the_cache_file(tmp_path)
    set_mtime(cached, datetime.datetime(2026, 3, 10, 10, 0, tzinfo=IST).timestamp())
    midnight = datetime.datetime(2026, 3, 11, 0, 0, tzinfo=IST).timestamp()
    caplog.clear()

    await broker_master(angel, url, folder=tmp_path, now=midnight - 1)
    assert downloading(caplog) == []

    await broker_master(angel, url, folder=tmp_path, now=midnight)
    assert downloading(caplog)


@pytest.mark.parametrize("aged_by", ["os.utime", "now="])
async def test_an_older_copy_is_downloaded_again_and_the_cache_renewed(
    make_simulator, master, tmp_path, caplog, aged_by
):
    angel = BROKERS["angel"]
    simulator = await make_simulator()
    url = simulator.master_url
    await broker_master(angel, url, folder=tmp_path)
    cached = the_cache_file(tmp_path)
    now = None
    if aged_by == "os.utime":
        set_mtime(cached, cached.stat().st_mtime - DAY)
    else:
        now = cached.stat().st_mtime + DAY
    before = cached.stat().st_mtime_ns
    caplog.clear()

    got = await broker_master(angel, url, folder=tmp_path, now=now)

    assert keys(got) == keys(master)
    assert any(
        line.startswith("Downloading the instrument master from") for line in downloading(caplog)
    )
    assert the_cache_file(tmp_path) == cached
    assert cached.stat().st_mtime_ns > before
    assert india_date(cached.stat().st_mtime) == india_date(datetime.datetime.now(IST).timestamp())


@pytest.mark.parametrize(
    "copy_time",
    [
        pytest.param(lambda mtime: mtime - DAY, id="a-day-old"),
        # 20:00 UTC on 5 January is 01:30 IST on 6 January: the copy is of 2026-01-06.
        pytest.param(
            lambda _: datetime.datetime(2026, 1, 5, 20, 0, tzinfo=datetime.UTC).timestamp(),
            id="late-evening-utc",
        ),
    ],
)
async def test_a_failed_refresh_uses_the_cached_copy_with_a_warning_naming_its_date(
    make_simulator, master, tmp_path, caplog, copy_time
):
    angel = BROKERS["angel"]
    simulator = await make_simulator()
    url = simulator.master_url
    await broker_master(angel, url, folder=tmp_path)
    await simulator.stop()
    cached = the_cache_file(tmp_path)
    stale = copy_time(cached.stat().st_mtime)
    set_mtime(cached, stale)
    content = cached.read_bytes()
    caplog.clear()

    got = await broker_master(angel, url, folder=tmp_path)

    assert keys(got) == keys(master)
    warnings = master_lines(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings
    assert india_date(stale) in warnings[0]
    if india_date(stale) == "2026-01-06":
        assert "2026-01-05" not in warnings[0]
    assert "cannot download" in warnings[0]
    assert cached.read_bytes() == content
    assert cached.stat().st_mtime == stale
    assert the_cache_file(tmp_path) == cached


# No master to be had, and masters that are not one


@pytest.mark.parametrize("name", ["angel", "zerodha"])
async def test_no_server_and_no_cached_copy_is_master_unavailable(make_simulator, tmp_path, name):
    broker = BROKERS[name]
    simulator = await make_simulator(broker=name)
    url = simulator.master_url
    await simulator.stop()  # nothing listens at the master's URL any more

    with pytest.raises(MasterUnavailableError, match=f"{broker.label}.*no cached copy") as raised:
        await broker_master(broker, url, folder=tmp_path)

    assert isinstance(raised.value, MasterFormatError)
    assert url in str(raised.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["angel", "zerodha"])
@pytest.mark.parametrize("where", ["websocket-endpoint", "not-the-master-path"])
async def test_a_url_that_is_not_the_master_is_a_clear_error_and_caches_nothing(
    make_simulator, tmp_path, name, where
):
    broker = BROKERS[name]
    simulator = await make_simulator(broker=name)
    if where == "websocket-endpoint":
        url, status = simulator.url.replace("ws://", "http://", 1), r"40[13]"
    else:
        url, status = simulator.master_url + "-not-the-master", "404"

    with pytest.raises(MasterUnavailableError, match=f"no cached copy.*answered HTTP {status}"):
        await broker_master(broker, url, folder=tmp_path)

    assert list(tmp_path.iterdir()) == []


async def test_a_master_in_another_format_is_a_clear_error_and_caches_nothing(
    make_simulator, tmp_path
):
    """Angel One's reader on Kite's CSV: the body arrives whole (HTTP 200) and is refused."""
    simulator = await make_simulator(broker="zerodha")

    with pytest.raises(MasterUnavailableError, match=r"no cached copy.*not a JSON scrip master"):
        await broker_master(BROKERS["angel"], simulator.master_url, folder=tmp_path)

    assert list(tmp_path.iterdir()) == []


async def test_a_404_at_the_masters_url_leaves_the_cached_copy_untouched(master, tmp_path, caplog):
    """The simulator's port is taken over by a Kite simulator, which has no Angel One master."""
    angel = BROKERS["angel"]
    first = ExchangeSimulator(master, broker="angel")
    await first.start()
    try:
        url = first.master_url
        port = int(url.split(":")[2].split("/")[0])
        await broker_master(angel, url, folder=tmp_path)
    finally:
        await first.stop()
    cached = the_cache_file(tmp_path)
    set_mtime(cached, cached.stat().st_mtime - DAY)
    content, stamp = cached.read_bytes(), cached.stat().st_mtime_ns
    second = ExchangeSimulator(master, broker="zerodha")
    await second.start(port=port)
    caplog.clear()
    try:
        got = await broker_master(angel, url, folder=tmp_path)
    finally:
        await second.stop()

    assert keys(got) == keys(master)
    [warning] = master_lines(caplog, logging.WARNING)
    assert "answered HTTP 404" in warning
    assert cached.read_bytes() == content and cached.stat().st_mtime_ns == stamp
    assert the_cache_file(tmp_path) == cached


BAD_DOWNLOADS = {
    # what the origin answers the second time: status, body (None: the good one), cut short
    "html": ((200, b"<html>Service Unavailable</html>", False), "not a JSON"),
    "json-object": ((200, b'{"message": "rate limited"}', False), "JSON list"),
    "http-500": ((500, b"[]", False), "answered HTTP 500"),
    "cut-short": ((200, None, True), "cannot download"),
}


@pytest.mark.parametrize("case", BAD_DOWNLOADS)
async def test_a_bad_download_leaves_the_cached_copy_untouched(
    origin, master, tmp_path, caplog, case
):
    (status, body, short), reason = BAD_DOWNLOADS[case]
    angel = BROKERS["angel"]
    good = angel.write_master(master)
    origin.body = good
    await broker_master(angel, origin.url, folder=tmp_path)
    cached = the_cache_file(tmp_path)
    set_mtime(cached, cached.stat().st_mtime - DAY)
    stamp = cached.stat().st_mtime_ns
    origin.status, origin.body, origin.short = status, good if body is None else body, short
    caplog.clear()

    got = await broker_master(angel, origin.url, folder=tmp_path)

    assert origin.requests == 2
    assert keys(got) == keys(master)
    [warning] = master_lines(caplog, logging.WARNING)
    assert reason in warning
    assert cached.read_bytes() == good and cached.stat().st_mtime_ns == stamp
    assert the_cache_file(tmp_path) == cached


# A local file


@pytest.mark.parametrize("name", ["angel", "zerodha"])
async def test_a_local_file_in_the_brokers_format_is_read_as_it_is(
    make_simulator, master, tmp_path, caplog, name
):
    simulator = await make_simulator(broker=name)
    path = tmp_path / "master-file"
    path.write_bytes(simulator.master_document)
    await simulator.stop()
    cache = tmp_path / "cache"

    got = await broker_master(BROKERS[name], str(path), folder=cache)

    assert keys(got) == keys(master)
    assert not cache.exists()
    assert downloading(caplog) == []


async def test_a_missing_local_file_names_the_path(tmp_path):
    path = tmp_path / "no-such-master.json"
    with pytest.raises(MasterFormatError, match=re.escape(str(path))):
        await broker_master(BROKERS["angel"], str(path), folder=tmp_path / "cache")


# The backend process on a real broker (the simulator, in this process)


def cached_masters() -> list[Path]:
    """The masters the backends of this test have kept in the user cache dir."""
    folder = cache_dir()
    return sorted(folder.iterdir()) if folder.is_dir() else []


def angel_settings(simulator: ExchangeSimulator, master_source: str) -> dict[str, str]:
    account = simulator.credentials
    return {
        "BROKER": "angel",
        "ANGEL_WS_URL": simulator.url,
        "ANGEL_CLIENT_CODE": account.client_code,
        "ANGEL_API_KEY": account.api_key,
        "ANGEL_FEED_TOKEN": account.feed_token,
        "ANGEL_AUTH_TOKEN": account.auth_token,
        "INSTRUMENT_MASTER": master_source,
    }


def secrets_of(simulator: ExchangeSimulator) -> list[str]:
    account = simulator.credentials
    return [account.api_key, account.feed_token, account.auth_token]


async def test_the_backend_without_a_master_or_a_cached_copy_says_so_and_exits_1(
    make_simulator, backends
):
    simulator = await make_simulator()
    nowhere = f"http://127.0.0.1:{closed_port()}/x.json?api_key={SECRET}"

    process, line = await backends(**angel_settings(simulator, nowhere))

    assert await asyncio.wait_for(process.process.wait(), 10) == 1
    assert line["event"] == "error" and line["code"] == "INSTRUMENT_MASTER_ERROR"
    assert "Angel One" in line["message"] and "no cached copy" in line["message"]
    everything = json.dumps(line) + process.stderr.read_text()
    for secret in [*secrets_of(simulator), SECRET]:
        assert secret not in everything
    assert cached_masters() == []


async def test_the_backend_downloads_the_master_then_serves_a_subscription(
    make_simulator, master, backends
):
    simulator = await make_simulator()

    process, ready = await backends(**angel_settings(simulator, simulator.master_url))

    assert ready["event"] == "ready" and ready["broker"] == "angel", ready
    [cached] = cached_masters()
    assert keys(InstrumentMaster(BROKERS["angel"].read_master(cached.read_bytes(), "c"))) == keys(
        master
    )
    client = await Client.open(ready["ws"])
    try:
        reply = await client.subscribe([("SBIN", "NSE"), ("NIFTY29DEC2626000CE", "NFO")], mode=1)
        assert reply["status"] == "success", reply
        sbin = await client.tick(mode=1, symbol="SBIN", exchange="NSE")
        option = await client.tick(mode=1, symbol="NIFTY29DEC2626000CE", exchange="NFO")
    finally:
        await client.close()
    assert sbin["data"]["ltp"] > 0 and option["data"]["ltp"] > 0
    text = process.stderr.read_text()
    assert "Downloading the instrument master from" in text
    assert all(secret not in text for secret in secrets_of(simulator))
    process.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.process.wait(), 10) == 0


async def test_the_backends_log_never_shows_the_master_urls_query_string(make_simulator, backends):
    """The log goes to stderr, the log file and the bus: a query credential must stay out."""
    simulator = await make_simulator()

    process, ready = await backends(
        **angel_settings(simulator, simulator.master_url + f"?api_key={SECRET}")
    )

    assert ready["event"] == "ready", ready
    process.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.process.wait(), 10) == 0
    logged = process.stderr.read_text().splitlines()
    logged += (log_dir() / "backend.log").read_text().splitlines()
    assert any("Downloading the instrument master from" in line for line in logged)
    leaks = [line for line in logged if SECRET in line]
    assert not leaks
