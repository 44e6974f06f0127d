"""The trader's login to the broker in the browser, from the app: **File > Log in to <broker>**.

A broker without an unattended login (Zerodha Kite) describes one the trader completes in the
browser, its :class:`~backend.brokers.broker.BrowserLogin`. :class:`BrokerLogin` runs it for a
configured broker account (:func:`browser_accounts`: none with the bundled simulator, whose
accounts log in by themselves): the one of today's settings, or one of ``ACCOUNTS`` by name. It
checks that the settings the login needs are set, opens the broker's login page in the browser
and takes the address the broker then sends the browser to: caught at the broker app's redirect
URL when that is on this machine (:mod:`desktop.settings.redirect_catcher`), or pasted into
:class:`BrokerLoginDialog`. The broker trades that address for the day's session, whose settings
are saved (secrets in the OS keychain where there is one; an account's in its entry of
``ACCOUNTS`` and under its name); the app then restarts the backend on them. An address that
does not log in is reported and the login waits for another, until one logs in, the trader
cancels, or :data:`LOGIN_SECONDS` pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from backend.brokers import Broker
from backend.brokers.broker import LoginResult
from backend.brokers.session import CredentialError, LoginError
from backend.runtime.accounts import AccountSettings
from backend.runtime.settings import SIMULATOR, Settings, SettingsError
from desktop.dialog_parts import error_label
from desktop.settings.file import ACCOUNTS, current_values, saved_accounts, write_settings
from desktop.settings.redirect_catcher import RedirectCatcher, catchable

log = logging.getLogger("feedpool.desktop.login")

#: How long the login may take before the app stops waiting for the broker's redirect.
LOGIN_SECONDS = 300.0
DIALOG_WIDTH = 480


def open_in_browser(url: str) -> None:
    QDesktopServices.openUrl(QUrl(url))


def saved_settings(path: Path) -> Settings:
    """The settings saved at ``path`` over the defaults, each checked, but not for the
    credentials: a login is what gives some of them."""
    return Settings().replace(**current_values(path))


def browser_accounts(settings: Settings) -> list[AccountSettings]:
    """The accounts of ``settings`` the trader logs in to in the browser: none with the bundled
    simulator, nor those of a broker whose stored credentials log in by themselves."""
    if settings.BROKER == SIMULATOR:
        return []
    return [account for account in settings.accounts if account.broker.browser_login]


def save_login(saved: Mapping[str, str], account: str, path: Path) -> None:
    """Save what a login to ``account`` gave: into its entry of ``ACCOUNTS`` (its secrets under
    its name), or, with today's settings of one broker (``account`` not listed), as they are."""
    entries = saved_accounts(path)
    listed = [entry for entry in entries if entry.get("name") == account]
    if not listed:
        write_settings(saved, path)
        return
    listed[0].update(saved)
    write_settings({ACCOUNTS: entries}, path)


class BrokerLogin(QObject):
    """One login at a time: the page in the browser, the address caught or pasted, the session
    saved. :attr:`broker` is the broker of the latest :meth:`start`, :attr:`account` its
    account's name.

    ``open_page(url)`` shows the broker's login page (default: the desktop's browser).
    """

    #: What the trader is to do now.
    status = Signal(str)
    #: An address did not log in (the reason, without any secret); the login waits for another.
    refused = Signal(str)
    #: The login ended without logging in: the reason, without any secret.
    failed = Signal(str)
    #: The day's session is saved: the backend may start on it. Carries the broker's user id.
    logged_in = Signal(str)

    def __init__(
        self,
        settings_path: Path,
        open_page: Callable[[str], None] = open_in_browser,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._path = settings_path
        self._open_page = open_page
        self.broker: Broker | None = None
        self.account = ""
        #: What the latest login saved (the day's token), for the running backend to take.
        self.saved: dict[str, str] = {}
        self._redirects: asyncio.Queue[str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, account: str = "") -> None:
        """Begin a login to the configured account named ``account`` (empty: the first that
        logs in in the browser), stopping one under way."""
        previous, self.broker, self.account = self._task, None, account
        self.cancel()
        try:
            settings = saved_settings(self._path)
        except SettingsError as exc:
            self.failed.emit(f"{exc}: correct it in Settings")
            return
        chosen = [a for a in browser_accounts(settings) if a.name == account or not account]
        if not chosen:
            self.failed.emit("The configured broker logs in by itself, not in the browser")
            return
        self.broker, self.account = broker, account = chosen[0].broker, chosen[0].name
        login, values = broker.browser_login, chosen[0].values
        labels = {setting.name: setting.label for setting in broker.settings}
        missing = [labels[name] for name in login.required if not values[name]]
        if missing:
            self.failed.emit(f"Set {broker.label}'s {' and '.join(missing)} in Settings first")
            return
        redirect_url = values[login.redirect_setting]
        opens = f"{broker.label}'s login page opens in your browser. Log in there"
        if catchable(redirect_url):
            self.status.emit(f"{opens}, and FeedPool finishes the login.")
        else:
            self.status.emit(
                f"{opens}, then paste below the address {broker.label} sends the browser to "
                "(FeedPool catches it only at an http:// redirect URL on this machine)."
            )
        self._redirects = redirects = asyncio.Queue()
        self._task = asyncio.ensure_future(self._run(chosen[0], redirect_url, redirects, previous))

    def cancel(self) -> None:
        """Stop waiting for the login, and stop listening for the broker's redirect."""
        if self._task is not None:
            self._task.cancel()

    def paste(self, address: str) -> None:
        """The trader pasted the address the broker sent the browser to (taken while a login is
        under way)."""
        if self.running:
            self._redirects.put_nowait(address.strip())

    async def _run(
        self,
        account: AccountSettings,
        redirect_url: str,
        redirects: asyncio.Queue[str],
        previous: asyncio.Task[None] | None,
    ) -> None:
        broker, values = account.broker, account.values
        if previous is not None:
            await asyncio.wait({previous})  # until its catcher has let go of the port
        try:
            async with contextlib.AsyncExitStack() as stack:
                if catchable(redirect_url):
                    catcher = RedirectCatcher(redirect_url, redirects.put_nowait)
                    await stack.enter_async_context(catcher)
                    log.info("Waiting for %s's login at %s", broker.label, catcher.url)
                self._open_page(await broker.browser_login.page(values))
                result = await self._finish(broker, values, redirects)
            save_login(result.saved, account.name, self._path)
            self.saved = dict(result.saved)
        except LoginError as exc:
            log.warning("%s login: %s", broker.label, exc)
            self.failed.emit(str(exc))
            return
        except OSError as exc:
            self.failed.emit(f"Could not save the login to {self._path}: {exc.strerror or exc}")
            return
        self.logged_in.emit(result.user_id)

    async def _finish(
        self, broker: Broker, values: Mapping[str, Any], redirects: asyncio.Queue[str]
    ) -> LoginResult:
        """The session of the first address that logs in; the others are reported."""
        try:
            async with asyncio.timeout(LOGIN_SECONDS):
                while True:
                    redirect = await redirects.get()
                    try:
                        return await broker.browser_login.finish(values, redirect)
                    except CredentialError:
                        raise
                    except LoginError as exc:
                        log.warning("%s login: %s", broker.label, exc)
                        self.refused.emit(str(exc))
        except TimeoutError:
            minutes = f"{LOGIN_SECONDS / 60:g} minutes"
            raise LoginError(f"no login came back from {broker.label} in {minutes}") from None


class BrokerLoginDialog(QDialog):
    """Shows the login under way and takes a pasted address; **Try again** starts it over and
    **Cancel** stops it."""

    def __init__(self, login: BrokerLogin, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.login = login
        self.setMinimumWidth(DIALOG_WIDTH)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.error = error_label(self)
        self.pasted = QLineEdit(self)
        self.pasted.returnPressed.connect(lambda: login.paste(self.pasted.text()))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.try_again = buttons.addButton("Try again", QDialogButtonBox.ButtonRole.ActionRole)
        self.try_again.clicked.connect(self.begin)
        buttons.rejected.connect(self.reject)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        for button in (self.try_again, self.cancel_button):
            button.setAutoDefault(False)  # Return in the address field pastes, and only that
        layout = QVBoxLayout(self)
        for widget in (self.status, self.error, self.pasted, buttons):
            layout.addWidget(widget)
        login.status.connect(self._show_status)
        login.refused.connect(self._show_error)
        login.failed.connect(self._failed)
        login.logged_in.connect(self._logged_in)
        self.rejected.connect(login.cancel)

    def _label(self) -> str:
        return self.login.broker.label if self.login.broker else "the broker"

    def begin(self, account: str = "") -> None:
        """Show the dialog and start a login to the configured account named ``account`` (empty:
        the first that logs in in the browser)."""
        self.pasted.clear()
        self.error.hide()
        self.login.start(account)
        label = self._label()
        self.setWindowTitle(f"Log in to {label}")
        self.pasted.setPlaceholderText(f"Paste here the address {label} sent the browser to")
        self.pasted.setEnabled(self.login.running)
        self.show()

    def _show_status(self, text: str) -> None:
        self.status.setText(text)
        self.error.hide()

    def _show_error(self, text: str) -> None:
        self.error.setText(text[:1].upper() + text[1:])
        self.error.show()

    def _failed(self, reason: str) -> None:
        self.status.setText(f"Not logged in to {self._label()}. Try again, or Cancel.")
        self._show_error(reason)
        self.pasted.setEnabled(False)

    def _logged_in(self, user_id: str) -> None:
        self.status.setText(f"Logged in to {self._label()} as {user_id or 'your account'}.")
        self.accept()
