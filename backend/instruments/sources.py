"""Where the instrument master comes from: the broker's published file, cached for the day.

For a real broker the master is downloaded from ``INSTRUMENT_MASTER`` (default: the URL the
broker publishes it at) and kept in the user cache dir. A copy fetched on today's trading date
(India time) is used as it is; an older one is refreshed before the pool subscribes anything.
When a refresh fails, the cached copy is used with a warning naming its date; with no copy the
backend cannot start. ``INSTRUMENT_MASTER`` may also name a local file in the broker's format.

Downloads report their progress in the log, at most one line per :data:`PROGRESS_STEP`.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import io
import logging
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import platformdirs

from backend.brokers import Broker
from backend.instruments.master import Instrument, InstrumentMaster, MasterFormatError

log = logging.getLogger("feedpool.master")
# httpx logs each request with its whole URL, query included; this module logs what matters.
logging.getLogger("httpx").setLevel(logging.WARNING)

#: The exchanges' time zone: a master is current on the trading date it was fetched.
INDIA = datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST")
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
PROGRESS_STEP = 0.25  # a log line each quarter of the download
CHUNK_BYTES = 1 << 16


class MasterUnavailableError(MasterFormatError):
    """No instrument master could be had: no download and no cached copy."""


def cache_dir() -> Path:
    """The user cache dir's folder for downloaded masters."""
    return Path(platformdirs.user_cache_dir("FeedPool", appauthor=False)) / "masters"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def shown(url: str) -> str:
    """``url`` without its query string or user info, which may carry credentials."""
    return str(httpx.URL(url).copy_with(query=None, userinfo=b""))


async def download(url: str, what: str = "instrument master") -> bytes:
    """The body at ``url``, with progress in the log; :class:`OSError` if it cannot be had."""
    started = time.monotonic()
    try:
        async with (
            httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            response.raise_for_status()
            total = int(response.headers.get("content-length") or 0)
            log.info("Downloading the %s from %s (%s)", what, shown(url), _size(total))
            chunks, received, reported = [], 0, 0.0
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                chunks.append(chunk)
                received += len(chunk)
                if total and received / total >= reported + PROGRESS_STEP and received < total:
                    reported = received / total
                    log.info("Downloading the %s: %d%% of %s", what, 100 * reported, _size(total))
    except httpx.HTTPStatusError as exc:
        raise OSError(f"{shown(url)} answered HTTP {exc.response.status_code}") from None
    except httpx.HTTPError as exc:
        raise OSError(f"cannot download {shown(url)}: {exc or type(exc).__name__}") from None
    body = b"".join(chunks)
    log.info("Downloaded the %s: %s in %.1f s", what, _size(len(body)), time.monotonic() - started)
    return body


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count else "size unknown"


Reader = Callable[[bytes, str], list[Instrument]]


async def broker_master(
    broker: Broker, source: str = "", *, folder: Path | None = None, now: float | None = None
) -> InstrumentMaster:
    """The instrument master of ``broker`` from ``source`` (default: its published URL).

    A URL is fetched through the cache in ``folder`` (default :func:`cache_dir`); a path is
    read as a file. :class:`MasterFormatError` says why no master could be had.
    """
    source = source or broker.master_url
    if not is_url(source):
        return InstrumentMaster(_read_file(Path(source), broker.read_master))
    cached = cache_path(broker, source, folder)
    today = _trading_date(time.time() if now is None else now)
    if cached.is_file() and _trading_date(cached.stat().st_mtime) == today:
        log.info("Instrument master: today's copy from %s", shown(source))
        return InstrumentMaster(_read_file(cached, broker.read_master))
    try:
        body = await _download_published(broker, source)
        instruments = broker.read_master(body, shown(source))
    except (OSError, MasterFormatError) as exc:
        if not cached.is_file():
            raise MasterUnavailableError(
                f"cannot get {broker.label}'s instrument master and there is no cached copy: {exc}"
            ) from None
        log.warning(
            "Instrument master not refreshed (%s); using the copy of %s",
            exc,
            _trading_date(cached.stat().st_mtime).isoformat(),
        )
        return InstrumentMaster(_read_file(cached, broker.read_master))
    _keep(cached, body)
    log.info("Instrument master: %d instruments from %s", len(instruments), shown(source))
    return InstrumentMaster(instruments)


async def _download_published(broker: Broker, source: str, *what: str) -> bytes:
    """What ``source`` publishes; for a broker publishing its master in several files
    (:attr:`~backend.brokers.broker.Broker.master_files`), all of them beside it, as one zip."""
    if not broker.master_files:
        return await download(source, *what)
    root = source.rsplit("/", 1)[0]
    bodies = await asyncio.gather(
        *(download(f"{root}/{name}", *what) for name in broker.master_files)
    )
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as files:
        for name, body in zip(broker.master_files, bodies, strict=True):
            files.writestr(name, body)
    return packed.getvalue()


def cache_path(broker: Broker, source: str = "", folder: Path | None = None) -> Path:
    """Where the master downloaded from ``source`` (default: the published URL) is kept."""
    digest = hashlib.sha256(shown(source or broker.master_url).encode()).hexdigest()[:12]
    return (cache_dir() if folder is None else folder) / f"{broker.name}-{digest}"


def cached_master(broker: Broker, source: str = "") -> InstrumentMaster | None:
    """The master the backend last downloaded from ``source``, without downloading; or none."""
    path = Path(source) if source and not is_url(source) else cache_path(broker, source)
    return InstrumentMaster(_read_file(path, broker.read_master)) if path.is_file() else None


async def served_master(broker: Broker, url: str) -> InstrumentMaster:
    """The master the bundled simulator serves at ``url``, in ``broker``'s format; no cache."""
    try:
        body = await _download_published(broker, url, "simulator's instrument master")
    except OSError as exc:
        raise MasterFormatError(str(exc)) from None
    return InstrumentMaster(broker.read_master(body, shown(url)))


def _read_file(path: Path, reader: Reader) -> list[Instrument]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MasterFormatError(f"cannot read the instrument master {path}: {exc}") from None
    return reader(data, str(path))


def _keep(path: Path, body: bytes) -> None:
    """Write ``body`` to ``path`` whole or not at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(body)
        os.replace(partial, path)
    except OSError as exc:
        log.warning("Instrument master not cached: %s", exc)


def _trading_date(timestamp: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(timestamp, INDIA).date()
