"""The brokers on Noren OMS that FeedPool knows: one :class:`Vendor` row each.

Every Noren vendor runs the same feed and the same REST API; only their hosts, their logins and
the files their symbol masters are published in differ, and those are what a row holds. Another
Noren vendor is one more row in :data:`VENDORS`.

Logins (``login``): ``oauth`` is the browser authorisation then ``GenAcsTok`` (Shoonya, Zebu);
``flattrade`` is Flattrade's browser page then its ``apitoken``. A vendor with a
``quickauth_root`` also still offers the legacy ``QuickAuth`` (password, TOTP, vendor code), which
logs in unattended. Shoonya is reported to have retired it (its legacy root answers 502), so its
row has none. Masters (``master_format``): ``noren`` is one zipped ``<EXCH>_symbols.txt`` per
exchange (Shoonya, Zebu); ``flattrade`` is Flattrade's CSV files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vendor:
    """One broker on Noren OMS: its hosts, its login and its masters."""

    #: The ``BROKER`` setting's value (OpenAlgo's name), e.g. ``shoonya``.
    name: str
    #: The name shown to people.
    label: str
    #: The REST root of the vendor's current API, without a trailing slash.
    rest_root: str
    #: The market-data WebSocket.
    ws_url: str
    #: The connect message the current login's token opens the socket with: ``a`` (the OAuth
    #: generation's ``accesstoken``) or ``c`` (the legacy ``susertoken``).
    connect: str
    #: The browser login: ``oauth`` (authorise, then ``GenAcsTok``) or ``flattrade``.
    login: str
    #: The browser login's page, before its query (``client_id`` or ``app_key``).
    authorise_url: str
    #: Where the browser login's code is traded for the session's token.
    token_url: str
    #: Where the masters are published, and their file names under it.
    master_root: str
    master_files: tuple[str, ...]
    #: ``noren`` (zipped ``<EXCH>_symbols.txt``) or ``flattrade`` (CSV).
    master_format: str
    #: Symbols per connection by default (``MAX_SYMBOLS_PER_WEBSOCKET`` may set fewer): 100 for
    #: Shoonya, where data is reported to stop past about 100 active subscriptions; 5,000, the
    #: value OpenAlgo calls conservative, for the others.
    max_symbols: int
    #: The legacy REST root that still answers ``QuickAuth``; empty where the vendor retired it.
    quickauth_root: str = ""

    @property
    def prefix(self) -> str:
        """The prefix of the vendor's settings, e.g. ``SHOONYA`` in ``SHOONYA_USER_ID``."""
        return self.name.upper()


#: The exchanges a ``noren`` master is published for, one zipped file each.
NOREN_EXCHANGES = ("NSE", "NFO", "CDS", "MCX", "BSE", "BFO")


def noren_files() -> tuple[str, ...]:
    return tuple(f"{exchange}_symbols.txt.zip" for exchange in NOREN_EXCHANGES)


VENDORS: dict[str, Vendor] = {
    vendor.name: vendor
    for vendor in (
        Vendor(
            name="shoonya",
            label="Shoonya (Finvasia)",
            rest_root="https://api.shoonya.com/NorenWClientAPI",
            ws_url="wss://api.shoonya.com/NorenWSAPI/",
            connect="a",
            login="oauth",
            authorise_url="https://api.shoonya.com/OAuthlogin/authorize/oauth",
            token_url="https://api.shoonya.com/NorenWClientAPI/GenAcsTok",
            master_root="https://api.shoonya.com",
            master_files=noren_files(),
            master_format="noren",
            max_symbols=100,
        ),
        Vendor(
            name="flattrade",
            label="Flattrade",
            rest_root="https://piconnect.flattrade.in/PiConnectAPI",
            ws_url="wss://piconnect.flattrade.in/PiConnectWSAPI/",
            connect="a",
            login="flattrade",
            authorise_url="https://auth.flattrade.in/",
            token_url="https://authapi.flattrade.in/trade/apitoken",
            master_root="https://flattrade.s3.ap-south-1.amazonaws.com/scripmaster",
            master_files=(
                "NSE_Equity.csv",
                "Nfo_Index_Derivatives.csv",
                "Nfo_Equity_Derivatives.csv",
                "Currency_Derivatives.csv",
                "Commodity.csv",
                "BSE_Equity.csv",
                "Bfo_Index_Derivatives.csv",
                "Bfo_Equity_Derivatives.csv",
            ),
            master_format="flattrade",
            max_symbols=5000,
        ),
        Vendor(
            name="zebu",
            label="Zebu (MYNT)",
            rest_root="https://go.mynt.in/NorenWClientAPI",
            ws_url="wss://go.mynt.in/NorenWSAPI/",
            connect="a",
            login="oauth",
            authorise_url="https://go.mynt.in/OAuthlogin/authorize/oauth",
            token_url="https://go.mynt.in/NorenWClientAPI/GenAcsTok",
            master_root="https://go.mynt.in",
            master_files=noren_files(),
            master_format="noren",
            max_symbols=5000,
            quickauth_root="https://go.mynt.in/NorenWClientTP",
        ),
    )
}
