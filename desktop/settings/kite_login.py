"""The trader's daily Kite login, from the app: **File > Log in to Kite**.

Kite has no unattended login. :class:`KiteLogin` opens Kite's login page in the browser and
catches Kite's redirect on the Kite app's redirect URL (``KITE_REDIRECT_URL``) on this machine,
or takes the redirect URL pasted into :class:`KiteLoginDialog`. It trades the request token for
the day's access token (:mod:`backend.brokers.zerodha.login`) and saves it as
``KITE_ACCESS_TOKEN`` (in the OS keychain where there is one), then says so, and the app
restarts the backend on the new session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from backend.brokers.session import LoginError
from backend.brokers.zerodha import login
from backend.security.secret import Secret
from desktop.settings.file import current_values, write_settings

log = logging.getLogger("feedpool.desktop.kite")

#: How long the login page may take before the app stops waiting for Kite's redirect.
LOGIN_SECONDS = 300.0


def open_in_browser(url: str) -> None:
    QDesktopServices.openUrl(QUrl(url))


class KiteLogin(QObject):
    """One Kite login: the page in the browser, the redirect caught or pasted, the token saved.

    ``open_page(url)`` shows Kite's login page (default: the desktop's browser).
    """

    #: The new access token is saved: the backend may start on it. Carries the Kite user id.
    logged_in = Signal(str)
    #: The login did not happen; the reason, without any secret.
    failed = Signal(str)

    def __init__(
        self,
        settings_path: Path,
        open_page: Callable[[str], None] = open_in_browser,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._path = settings_path
        self._open_page = open_page
        self._pasted: asyncio.Future[Secret] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin a login (one at a time)."""
        if not self.running:
            self._task = asyncio.ensure_future(self._run())

    def cancel(self) -> None:
        """Stop waiting for a login, and stop listening for Kite's redirect."""
        if self.running:
            self._task.cancel()

    def paste(self, url: str) -> None:
        """The trader pasted Kite's redirect URL."""
        try:
            token = login.request_token_from(url)
        except LoginError as exc:
            self.failed.emit(str(exc))
            return
        if self._pasted is not None and not self._pasted.done():
            self._pasted.set_result(token)

    async def _run(self) -> None:
        values = current_values(self._path)
        api_key, api_secret = Secret(values["KITE_API_KEY"]), Secret(values["KITE_API_SECRET"])
        if not api_key or not api_secret:
            self.failed.emit("Set the Kite app's API key and API secret in Settings first")
            return
        self._pasted = asyncio.get_running_loop().create_future()
        catcher = login.RedirectCatcher(values["KITE_REDIRECT_URL"])
        try:
            await catcher.start()
            self._open_page(login.login_page(api_key, values["KITE_LOGIN_URL"]))
            log.info("Waiting for Kite's login at %s", catcher.url)
            token = await self._first(catcher.request_token(LOGIN_SECONDS), self._pasted)
            session = await login.exchange(api_key, api_secret, token, values["KITE_API_URL"])
        except LoginError as exc:
            log.warning("Kite login: %s", exc)
            self.failed.emit(str(exc))
            return
        finally:
            await catcher.stop()
        write_settings({"KITE_ACCESS_TOKEN": session.access_token.reveal()}, self._path)
        self.logged_in.emit(session.user_id)

    @staticmethod
    async def _first(caught, pasted: asyncio.Future[Secret]) -> Secret:
        """The request token that comes first: caught from the redirect, or pasted."""
        catching = asyncio.ensure_future(caught)
        done, _ = await asyncio.wait({catching, pasted}, return_when=asyncio.FIRST_COMPLETED)
        for waiting in (catching, pasted):
            if waiting not in done:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError, LoginError):
                    await waiting
        return done.pop().result()


class KiteLoginDialog(QDialog):
    """Shows the login under way; a field takes a pasted redirect URL."""

    def __init__(self, kite: KiteLogin, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Log in to Kite")
        self.kite = kite
        self.status = QLabel("Kite's login page opens in your browser. Log in there.")
        self.status.setWordWrap(True)
        self.pasted = QLineEdit()
        self.pasted.setPlaceholderText("or paste the address Kite redirected the browser to")
        self.pasted.returnPressed.connect(lambda: kite.paste(self.pasted.text()))
        again = QPushButton("Try again")
        again.clicked.connect(kite.start)
        layout = QVBoxLayout(self)
        for widget in (self.status, self.pasted, again):
            layout.addWidget(widget)
        kite.logged_in.connect(self._logged_in)
        kite.failed.connect(self.status.setText)
        self.rejected.connect(kite.cancel)

    def begin(self) -> None:
        """Show the dialog and start the login."""
        self.status.setText("Kite's login page opens in your browser. Log in there.")
        self.show()
        self.kite.start()

    def _logged_in(self, user_id: str) -> None:
        self.status.setText(f"Logged in to Kite as {user_id or 'your account'}.")
        self.accept()
