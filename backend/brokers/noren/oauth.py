"""The Noren vendors' browser logins, which give the day's session token.

Shoonya and Zebu (``login`` ``oauth``):

1. :func:`page` is the vendor's authorise page for the OAuth client,
   ``{<PREFIX>_AUTH_URL}?client_id=<PREFIX>_CLIENT_ID``.
2. After the trader signs in, the vendor sends the browser to the client's redirect URL with a
   one-time ``code``.
3. :func:`finish` trades it at ``<PREFIX>_TOKEN_URL`` (``GenAcsTok``) with the raw body
   ``jData={"code", "checksum", "uid"}``, the checksum SHA-256 hex of client ID + secret key +
   code, as the official client sends it; the answer's ``access_token`` is the session token.

Flattrade (``login`` ``flattrade``): the page is ``{FLATTRADE_AUTH_URL}?app_key=<API key>``; the
redirect carries a ``code`` (the request code), traded at ``FLATTRADE_TOKEN_URL`` (``apitoken``)
with the JSON body ``{"api_key", "request_code", "api_secret"}``, ``api_secret`` being SHA-256
hex of API key + request code + API secret; the answer's ``token`` is the session token.

Either saves the token as ``<PREFIX>_ACCESS_TOKEN`` and the user as ``<PREFIX>_USER_ID``. The
token lasts the day (Flattrade's until 05:00 IST); when the vendor refuses it the trader logs in
again. A refusal naming the client, secret or checksum is a
:class:`~backend.brokers.session.CredentialError` naming the setting to check; one of the code
(spent or expired) says to log in again. No key, secret, code or token reaches a log line or an
error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from backend.brokers.broker import BrowserLogin, LoginResult
from backend.brokers.noren.login import Refused, call, refused_settings, sha256
from backend.brokers.noren.vendors import Vendor
from backend.brokers.session import LoginError

log = logging.getLogger("feedpool.noren")

#: The setting (after the vendor's prefix) a refusal of the token call points at, by a word of
#: its ``emsg`` (lower case), first match first.
OAUTH_REFUSED = (("checksum", "SECRET_KEY"), ("secret", "SECRET_KEY"), ("client", "CLIENT_ID"))
FLATTRADE_REFUSED = (("secret", "API_SECRET"), ("checksum", "API_SECRET"), ("key", "API_KEY"))


def code_from(vendor: Vendor, url: str) -> str:
    """The one-time ``code`` of the vendor's redirect URL; :class:`LoginError` if it has none."""
    code = parse_qs(urlsplit(url.strip()).query).get("code", [""])[0]
    if not code:
        raise LoginError(
            f"the redirect URL carries no code: copy the whole address {vendor.label} "
            "redirected the browser to"
        )
    return code


def browser_login(vendor: Vendor) -> BrowserLogin:
    """``vendor``'s browser login."""
    p = vendor.prefix
    flattrade = vendor.login == "flattrade"
    table = FLATTRADE_REFUSED if flattrade else OAUTH_REFUSED

    async def page(values: Mapping[str, Any]) -> str:
        if flattrade:
            query = {"app_key": values[f"{p}_API_KEY"].reveal()}
        else:
            query = {"client_id": values[f"{p}_CLIENT_ID"]}
        return f"{values[f'{p}_AUTH_URL'] or vendor.authorise_url}?{urlencode(query)}"

    async def finish(values: Mapping[str, Any], redirect: str) -> LoginResult:
        code = code_from(vendor, redirect)
        url = values[f"{p}_TOKEN_URL"] or vendor.token_url
        try:
            if flattrade:
                key = values[f"{p}_API_KEY"].reveal()
                checksum = sha256(key + code + values[f"{p}_API_SECRET"].reveal())
                body = {"api_key": key, "request_code": code, "api_secret": checksum}
                answer = await call(vendor.label, url, "log in", body=body)
                token, user = answer.get("token"), answer.get("client")
            else:
                client_id = values[f"{p}_CLIENT_ID"]
                checksum = sha256(client_id + values[f"{p}_SECRET_KEY"].reveal() + code)
                fields = {"code": code, "checksum": checksum}
                if values[f"{p}_USER_ID"]:
                    fields["uid"] = values[f"{p}_USER_ID"]
                answer = await call(
                    vendor.label, url, "log in", content="jData=" + json.dumps(fields)
                )
                token, user = answer.get("access_token"), answer.get("USERID")
        except Refused as exc:
            raise refused_settings(exc, vendor, table) from None
        if not isinstance(token, str) or not token:
            raise LoginError(f"{vendor.label} answered the login with no session token")
        user_id = str(user or values[f"{p}_USER_ID"] or "")
        log.info("%s: logged in as %s", vendor.label, user_id or "the account")
        saved = {f"{p}_ACCESS_TOKEN": token}
        if user_id:
            saved[f"{p}_USER_ID"] = user_id
        return LoginResult(saved=saved, user_id=user_id)

    required = (
        (f"{p}_API_KEY", f"{p}_API_SECRET") if flattrade else (f"{p}_CLIENT_ID", f"{p}_SECRET_KEY")
    )
    return BrowserLogin(
        redirect_setting=f"{p}_REDIRECT_URL", required=required, page=page, finish=finish
    )
