"""The Noren OMS family: Shoonya, Flattrade, Zebu and any other vendor in
:data:`~backend.brokers.noren.vendors.VENDORS`, one :class:`Broker` each, and how the bundled
simulator plays them.

The vendors share the feed (:mod:`~backend.brokers.noren.protocol`, the adapter), the logins and
the masters' readers; each has its own hosts, login and master files, its row of the vendor
table. One WebSocket per session (:data:`~backend.brokers.noren.adapter.MAX_CONNECTIONS`); the
symbols per connection are the vendor's row's ``max_symbols``, a conservative default the
``MAX_SYMBOLS_PER_WEBSOCKET`` setting changes.
"""

from __future__ import annotations

import functools
import http
from typing import TYPE_CHECKING

from backend.brokers.broker import Broker
from backend.brokers.noren import login, master, oauth
from backend.brokers.noren.adapter import MAX_CONNECTIONS, NorenAdapter
from backend.brokers.noren.vendors import VENDORS, Vendor

if TYPE_CHECKING:
    from backend.simulator.dialect import Dialect


@functools.cache
def simulator_dialect(vendor: Vendor) -> Dialect:
    """``vendor``'s WebSocket and REST logins as the simulator plays them (one per vendor)."""
    from backend.brokers.noren import simulated_logins, simulated_stream
    from backend.simulator.dialect import Dialect

    return Dialect(
        path=simulated_stream.path(vendor),
        refusal_status=http.HTTPStatus.BAD_REQUEST,
        refused=simulated_stream.refused,
        account=simulated_stream.account,
        connection_limit=simulated_stream.CONNECTION_LIMIT,
        key=NorenAdapter.key,
        exchange_of=simulated_stream.exchange_of,
        connection=simulated_stream.NorenFeedConnection,
        logins=functools.partial(simulated_logins.NorenLogins, vendor),
        rest_routes=simulated_logins.routes,
        closes_oldest=True,
    )


def broker(vendor: Vendor) -> Broker:
    """The :class:`Broker` of one Noren vendor."""
    return Broker(
        name=vendor.name,
        label=vendor.label,
        max_connections=MAX_CONNECTIONS,
        max_symbols=vendor.max_symbols,
        settings=login.settings(vendor),
        url_setting=f"{vendor.prefix}_WS_URL",
        session=functools.partial(login.session, vendor),
        simulator_settings=functools.partial(login.simulator_settings, vendor),
        simulator_credentials=functools.partial(login.simulator_credentials, vendor),
        user_id=login.user_id,
        adapter=NorenAdapter,
        check=NorenAdapter.check,
        master_url=master.url(vendor),
        master_path=master.path(vendor),
        master_files=vendor.master_files,
        read_master=master.read_master,
        write_master=master.writer(vendor),
        simulator_dialect=functools.partial(simulator_dialect, vendor),
        browser_login=oauth.browser_login(vendor),
    )


BROKERS: tuple[Broker, ...] = tuple(broker(vendor) for vendor in VENDORS.values())
