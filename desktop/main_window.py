"""FeedPool's main window: the gauges and the pool's history on top, the watchlist in the centre
under a banner of alarms, its selected symbol in detail on the right (the window's full height),
logs and the API's clients at the bottom.

It assembles the panes and owns the menus, the status bar and the saved layout. It starts no
backend: a :class:`desktop.link.backend_link.BackendLink`, wired by
:func:`desktop.app.link_window`, feeds it through
:meth:`MainWindow.handle_bus_message` (``SYS.*`` topics, decoded to their
:mod:`backend.bus.messages` types) and :meth:`MainWindow.handle_feed_message`
(WebSocket API messages; the watchlist model takes its ticks itself), reports the backend's state
with :meth:`MainWindow.set_backend_state` (and the backend it is attached to with
:meth:`MainWindow.show_attachment`), subscribes on ``watchlist_model.symbols_added`` and
``symbols_removed``, restarts the backend on :attr:`MainWindow.settings_applied`, attaches on
:attr:`MainWindow.attach_requested` and tells File > Connect a strategy where the API is
(:func:`desktop.strategy.access.follow_link`).

The backend's state, the pool's statistics and health changes also go to an
:class:`~desktop.alarms.board.AlarmBoard`, whose alarms the banner over the watchlist shows until
what went down is back; the gauges say the backend's state too.

The window starts at a size that fits the screen, its docks in proportion to it
(:meth:`MainWindow.lay_out_docks`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from msgspec import Struct
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from backend.bus.messages import ConnectionHealth, Health
from backend.feed import CLIENTS_TOPIC, HEALTH_TOPIC, LOG_TOPIC, MOVES_TOPIC, POOL_TOPIC
from backend.instruments.master import InstrumentMaster
from backend.runtime.settings import Settings, SettingsError
from desktop.alarms.banner import AlarmBanner
from desktop.alarms.board import NOT_STARTED, AlarmBoard
from desktop.clients.pane import ClientsPane
from desktop.colours import state_colour
from desktop.detail.pane import DetailPane
from desktop.gauges.panel import ConnectionGauges
from desktop.history.pane import HistoryPane
from desktop.link.attachment import Attachment, AttachmentError
from desktop.link.feed_client import SESSION_REQUEST
from desktop.logs.entry import entry_from_bus
from desktop.logs.export_dialog import LogExportDialog
from desktop.logs.model import LogModel
from desktop.logs.pane import LogPane
from desktop.preferences import export_folder, preferences, remember_export_folder
from desktop.settings.attach_dialog import AttachDialog
from desktop.settings.attachments import load_attachment, saved_names
from desktop.settings.broker_login import (
    BrokerLogin,
    BrokerLoginDialog,
    browser_accounts,
    saved_settings,
)
from desktop.settings.dialog import SettingsDialog
from desktop.settings.file import current_values, validate
from desktop.strategy.dialog import ConnectStrategyDialog
from desktop.watchlist.file import (
    WatchlistFileError,
    default_watchlist_path,
    export_watchlist_csv,
    load_watchlist,
    save_watchlist,
)
from desktop.watchlist.first_run import bundled_lists_dir
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.pane import WatchlistPane

#: The window's size where the screen has room for it.
LARGEST_SIZE = QSize(1600, 1000)
#: The docks' shares of the window: the top's height, the detail's width (within its bounds),
#: the bottom's height, and the gauges' share of the top and the logs' of the bottom.
TOP_SHARE, DETAIL_SHARE, BOTTOM_SHARE = 0.3, 0.2, 0.25
DETAIL_WIDTHS = (300, 340)
GAUGES_SHARE = 0.55
#: Least room for the gauges' lines.
GAUGES_MIN_HEIGHT = 230
#: The logs' least width beside the clients (which take what shows all their columns): in a
#: window with less room, the two share the bottom as tabs.
LOGS_MIN_WIDTH = 600
GEOMETRY_KEY = "main_window/geometry"
STATE_KEY = "main_window/state"
IMPORT_FOLDER_KEY = "import/folder"
STATUS_MESSAGE_MS = 8000

logger = logging.getLogger("feedpool.desktop")


class MainWindow(QMainWindow):
    """The app's one window."""

    #: The settings dialog saved new :class:`backend.runtime.settings.Settings`.
    settings_applied = Signal(object)
    #: The trader chose an :class:`~desktop.link.attachment.Attachment` to watch.
    attach_requested = Signal(object)
    #: The window was closed: the app is quitting.
    closed = Signal()

    def __init__(
        self,
        master: InstrumentMaster | None = None,
        watchlist_path: Path | None = None,
        settings_path: Path | None = None,
        attachments_path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("FeedPool")
        self.watchlist_path = watchlist_path or default_watchlist_path()

        self.gauges = ConnectionGauges(self)
        self.log_model = LogModel(parent=self)
        self.log_pane = LogPane(self.log_model, self)
        self.watchlist_model = WatchlistModel(parent=self)
        self.watchlist_pane = WatchlistPane(self.watchlist_model, master, self)
        self.clients_pane = ClientsPane(self)
        self.history_pane = HistoryPane(self)
        self.watchlist_model.observe_tick = self.history_pane.feed_lag.observe
        self.detail_pane = DetailPane(self.watchlist_model, self)
        self.watchlist_pane.view.current_symbol_changed.connect(self.detail_pane.show_symbol)
        self.alarm_board = AlarmBoard()
        self.alarm_banner = AlarmBanner(self)
        self.setCentralWidget(self._centre())
        self._place_docks()

        self.attached_label, self.backend_label, self.bus_label = self._status_labels()
        self.set_backend_state(NOT_STARTED)

        self.settings_dialog = SettingsDialog(settings_path, self)
        self.settings_dialog.applied.connect(self.settings_applied)
        self.settings_dialog.log_in_requested.connect(self.log_in)
        self.broker_login = BrokerLogin(self.settings_dialog.path, parent=self)
        #: ``take_session(account, saved)``: hand a login's new session to the running backend;
        #: whether it was asked. The app's link sets it (:func:`desktop.app.link_window`).
        self.take_session: Callable[[str, Mapping[str, str]], bool] = lambda *_: False
        self.broker_login.logged_in.connect(self._logged_in)
        self.broker_login_dialog = BrokerLoginDialog(self.broker_login, self)
        self.attach_dialog = AttachDialog(attachments_path, self)
        self.attach_dialog.attach.connect(self.attach_requested)
        self.gauges.log_in_requested.connect(self.log_in)
        self.alarm_banner.log_in_requested.connect(self.log_in)
        self.strategy_dialog = ConnectStrategyDialog(self)
        self.log_export_dialog = LogExportDialog(self.log_pane.proxy, parent=self)
        self.log_export_dialog.exported.connect(
            lambda path, count: self._tell(f"Exported {count:,} log records to {path}")
        )
        self._create_menus()

        self._restore_watchlist()
        self.watchlist_model.symbols_added.connect(self.save_watchlist)
        self.watchlist_model.symbols_removed.connect(self.save_watchlist)

        self.resize(self.default_size())
        self.lay_out_docks()
        self._default_state = self.saveState()
        self._restore_layout()

    def _centre(self) -> QWidget:
        """The main area: the alarm banner over the watchlist."""
        centre = QWidget(self)
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.alarm_banner)
        layout.addWidget(self.watchlist_pane, 1)
        return centre

    def _place_docks(self) -> None:
        self.gauges_dock = self._dock("Connections", "gauges_dock", self.gauges)
        self.history_dock = self._dock("History", "history_dock", self.history_pane)
        self.detail_dock = self._dock("Symbol detail", "detail_dock", self.detail_pane)
        self.logs_dock = self._dock("Logs", "logs_dock", self.log_pane)
        self.clients_dock = self._dock("Clients", "clients_dock", self.clients_pane)
        self.docks = (
            self.gauges_dock,
            self.history_dock,
            self.detail_dock,
            self.logs_dock,
            self.clients_dock,
        )
        # The detail takes the right side from top to bottom: its chart above its book.
        self.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, self.gauges_dock)
        self.splitDockWidget(self.gauges_dock, self.history_dock, Qt.Orientation.Horizontal)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.detail_dock)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.logs_dock)
        self.splitDockWidget(self.logs_dock, self.clients_dock, Qt.Orientation.Horizontal)
        self.watchlist_pane.view.detail_requested.connect(lambda _: self._raise(self.detail_dock))

    @staticmethod
    def _raise(dock: QDockWidget) -> None:
        dock.show()
        dock.raise_()

    def _status_labels(self) -> tuple[QLabel, QLabel, QLabel]:
        """The status bar's: the attachment, the backend's state, and a bus that refuses the app
        (the first and the last hidden until there is something to show)."""
        labels = QLabel(self), QLabel(self), QLabel(self)
        for label in labels:
            self.statusBar().addPermanentWidget(label)
        labels[0].hide()
        labels[2].hide()
        return labels

    def default_size(self) -> QSize:
        """:data:`LARGEST_SIZE`, or the screen's room where it is smaller."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        room = screen.availableGeometry().size() if screen else LARGEST_SIZE
        return LARGEST_SIZE.boundedTo(room)

    def lay_out_docks(self) -> None:
        """Size the docks in proportion to the window: the top and bottom rows' heights, the
        detail's width, the split of each row; the logs and the clients side by side where
        there is room for both, else as tabs (the logs in front)."""
        width, height = self.width(), self.height()
        detail = min(max(round(width * DETAIL_SHARE), DETAIL_WIDTHS[0]), DETAIL_WIDTHS[1])
        rest = width - detail
        clients = self.clients_pane.preferred_width()
        side_by_side = rest - clients >= LOGS_MIN_WIDTH
        if side_by_side and self.tabifiedDockWidgets(self.logs_dock):
            self.removeDockWidget(self.clients_dock)
            self.addDockWidget(
                Qt.DockWidgetArea.BottomDockWidgetArea, self.clients_dock, Qt.Orientation.Horizontal
            )
            self.clients_dock.show()
        elif not side_by_side and not self.tabifiedDockWidgets(self.logs_dock):
            self.tabifyDockWidget(self.logs_dock, self.clients_dock)
            self.logs_dock.raise_()
        docks = [self.detail_dock, self.gauges_dock, self.history_dock]
        widths = [detail, round(rest * GAUGES_SHARE), round(rest * (1 - GAUGES_SHARE))]
        if side_by_side:
            docks += [self.logs_dock, self.clients_dock]
            widths += [rest - clients, clients]
        self.resizeDocks(docks, widths, Qt.Orientation.Horizontal)
        self.resizeDocks(
            [self.gauges_dock, self.logs_dock],
            [max(round(height * TOP_SHARE), GAUGES_MIN_HEIGHT), round(height * BOTTOM_SHARE)],
            Qt.Orientation.Vertical,
        )

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState() identifies docks by name
        dock.setWidget(widget)
        return dock

    def _action(self, text: str, slot: Any, shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        return action

    def _create_menus(self) -> None:
        self.import_action = self._action(
            "&Import symbols...", self.import_symbols, QKeySequence.StandardKey.Open
        )
        self.export_watchlist_action = self._action("Export &watchlist...", self.export_watchlist)
        self.export_logs_action = self._action(
            "Export &logs...", self.log_export_dialog.open, QKeySequence("Ctrl+E")
        )
        self.settings_action = self._action(
            "&Settings...", self.settings_dialog.open, QKeySequence("Ctrl+,")
        )
        self.strategy_action = self._action("&Connect a strategy...", self.strategy_dialog.open)
        self.broker_login_action = self._action("", lambda _=False: self.log_in())
        self.show_broker_login()
        self.settings_dialog.applied.connect(self.show_broker_login)
        self.attach_action = self._action("&Attach to a backend...", self.attach_dialog.open)
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.reset_layout_action = self._action("&Reset layout", self.reset_layout)

        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([self.import_action, self.export_watchlist_action])
        file_menu.addAction(self.export_logs_action)
        file_menu.addSeparator()
        file_menu.addAction(self.strategy_action)
        file_menu.addAction(self.settings_action)
        file_menu.addAction(self.broker_login_action)
        file_menu.addSeparator()
        file_menu.addAction(self.attach_action)
        self.saved_attachments_menu = file_menu.addMenu("Attach to a &saved backend")
        self.list_saved_attachments()
        self.attach_dialog.attach.connect(self.list_saved_attachments)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions([dock.toggleViewAction() for dock in self.docks])
        view_menu.addSeparator()
        view_menu.addAction(self.reset_layout_action)

    # Hooks for the layer that runs the backend.

    def handle_bus_message(self, topic: str, message: Struct) -> None:
        """Show a monitoring message from the bus (``SYS.POOL``, ``SYS.CLIENTS``, ``SYS.LOG``,
        ``SYS.HEALTH``, ``SYS.MOVES``), of its topic's type."""
        self.watchlist_pane.handle_bus_message(topic, message)
        if topic == POOL_TOPIC:
            self.gauges.update_stats(message)
            self.history_pane.update_stats(message)
            self.alarm_board.update_pool(message)
            self._show_alarms()
        elif topic == CLIENTS_TOPIC:
            self.clients_pane.update_clients(message)
        elif topic == LOG_TOPIC:
            self.log_model.append(entry_from_bus(message))
        elif topic == HEALTH_TOPIC:
            self.apply_health(message)
        elif topic == MOVES_TOPIC:
            self.history_pane.note_moves(message)

    def handle_feed_message(self, message: Mapping[str, Any]) -> None:
        """Use a WebSocket API message: ticks go to the watchlist, subscribe replies set status."""
        kind = message.get("type")
        if kind == "market_data":
            self.watchlist_model.push_tick(message)
        elif kind == "subscribe":
            self.watchlist_model.apply_subscribe_reply(message)
        elif kind == "set_session":
            self._tell(f"The backend took account {message.get('account')}'s new session")
        elif message.get("request_id") == SESSION_REQUEST:  # the backend refused it
            logger.warning("The backend did not take the new session: %s", message.get("message"))
            self._restart_after_login()

    def apply_health(self, health: Health) -> None:
        """A ``SYS.HEALTH`` change: the backend's goes to the status bar, a connection's to its
        gauge and, if it is an event, to the history."""
        if isinstance(health, ConnectionHealth):
            self.gauges.set_connection_state(health.connection, health.state)
            self.history_pane.note_health(health.connection, health.state)
            self.alarm_board.set_connection_state(health.connection, health.state, health.reason)
            self._show_alarms()
        else:
            self.set_backend_state(health.state, health.reason)

    def show_attachment(self, attachment: Attachment) -> None:
        """Say which backend the app watches, not having started it."""
        self.setWindowTitle(f"FeedPool: {attachment.name}")
        self.attached_label.setText(f"attached to {attachment.api_url}")
        self.attached_label.setToolTip(
            f"{attachment.name}: API {attachment.api_url}, bus {attachment.bus}"
        )
        self.attached_label.show()

    def set_backend_state(self, state: str, detail: str = "") -> None:
        """Show the backend's state (e.g. starting, connected, down) and why."""
        text = f"Backend: {state}" + (f" ({detail})" if detail else "")
        self.backend_label.setText(text)
        self.backend_label.setStyleSheet(f"color: {state_colour(state)}; font-weight: bold")
        self.gauges.set_backend_state(state, detail)
        self.watchlist_pane.set_backend_state(state, detail)
        self.alarm_board.set_backend_state(state, detail)
        self._show_alarms()

    def _show_alarms(self) -> None:
        self.alarm_banner.show_alarms(self.alarm_board.alarms())

    def set_bus_refusal(self, refusal: str) -> None:
        """Show why the bus does not serve the app (``""``: it does, and nothing is shown)."""
        self.bus_label.setText(refusal[:1].upper() + refusal[1:])
        self.bus_label.setStyleSheet(f"color: {state_colour('failed')}; font-weight: bold")
        self.bus_label.setVisible(bool(refusal))

    # Menu actions.

    def import_symbols(self) -> None:
        """Choose symbol files to import: in the bundled lists' folder the first time, then in
        the folder imported from last."""
        settings = preferences()
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            "Import symbols",
            str(settings.value(IMPORT_FOLDER_KEY) or bundled_lists_dir()),
            "Symbol lists (*.csv *.txt);;All files (*)",
        )
        if paths:
            settings.setValue(IMPORT_FOLDER_KEY, str(Path(paths[0]).parent))
            self.watchlist_pane.import_files([Path(path) for path in paths])

    def export_watchlist(self) -> None:
        """Write the watchlist as CSV, proposed in the folder exported to last (a ``.csv``
        extension added to a name without one)."""
        chosen, _ = QFileDialog.getSaveFileName(
            self,
            "Export watchlist",
            str(export_folder() / "feedpool-watchlist.csv"),
            "CSV (*.csv)",
        )
        if not chosen:
            return
        path = Path(chosen)
        if not path.suffix:
            path = path.with_suffix(".csv")
        try:
            count = export_watchlist_csv(self.watchlist_model.rows(), path)
        except OSError as exc:
            logger.error("could not export the watchlist to %s: %s", path, exc)
            self._tell(f"Could not export the watchlist to {path}: {exc.strerror or exc}")
            return
        remember_export_folder(path.parent)
        self._tell(f"Exported {count:,} symbols to {path}")

    def save_watchlist(self) -> None:
        """Save the watchlist where it is restored from at the next start."""
        try:
            save_watchlist(self.watchlist_model.entries(), self.watchlist_path)
        except OSError as exc:
            logger.error("could not save the watchlist to %s: %s", self.watchlist_path, exc)

    def _restore_watchlist(self) -> None:
        try:
            entries = load_watchlist(self.watchlist_path)
        except WatchlistFileError as exc:
            logger.error("%s; starting with an empty watchlist", exc)
            return
        self.watchlist_model.add_entries(entries)

    def list_saved_attachments(self) -> None:
        """List the saved attachments in File > Attach to a saved backend."""
        menu = self.saved_attachments_menu
        menu.clear()
        for name in saved_names(self.attach_dialog.path):
            action = menu.addAction(name)  # the menu's: deleted when it is cleared
            action.triggered.connect(lambda _=False, name=name: self.attach_saved(name))
        menu.setEnabled(not menu.isEmpty())

    def attach_saved(self, name: str) -> None:
        """Attach to the saved attachment ``name``, or show why it cannot be used as saved."""
        try:
            attachment = load_attachment(name, self.attach_dialog.path)
        except (KeyError, AttachmentError) as exc:
            self._tell(f"Cannot attach to {name}: {exc}")
            self.attach_dialog.open(name)
            return
        self.attach_requested.emit(attachment)

    def show_broker_login(self, settings: Settings | None = None) -> None:
        """Name in File > Log in to ... the configured broker (with several accounts, the first
        account the trader logs in to in the browser), enabled where there is one (never with
        the bundled simulator); the other accounts log in from their gauges and settings."""
        if settings is None:
            settings = self._saved_settings()
        accounts = browser_accounts(settings)
        label = accounts[0].broker.label if accounts else settings.broker.label
        if accounts and settings.ACCOUNTS:
            label = f"{accounts[0].name} ({label})"
        self.broker_login_action.setText(f"Lo&g in to {label.replace('&', '&&')}...")
        self.broker_login_action.setEnabled(bool(accounts))

    def log_in(self, account: str = "") -> None:
        """Log in again to the account named ``account`` (empty: the one account, or the first
        with a browser login): in the browser where that is its login, else in the settings
        that hold its credentials."""
        accounts = browser_accounts(self._saved_settings())
        if any(a.name == account or not account for a in accounts):
            self.broker_login_dialog.begin(account)
        else:
            self.settings_dialog.open()

    def _saved_settings(self) -> Settings:
        try:
            return saved_settings(self.settings_dialog.path)
        except SettingsError:
            return Settings()  # the settings dialog names what is wrong

    def _logged_in(self, user_id: str) -> None:
        """A login saved the day's session: the running backend takes it (its symbols move
        back to the account without a gap), else the backend restarts on it."""
        login = self.broker_login
        who = f"Logged in to {login.broker.label} as {user_id or 'your account'}"
        if self.take_session(login.account, login.saved):
            self._tell(f"{who}; handing the new session to the backend")
        else:
            self._tell(f"{who}; restarting the backend")
            self.settings_applied.emit(validate(current_values(self.settings_dialog.path)))

    def _restart_after_login(self) -> None:
        self._tell("The backend did not take the new session; restarting it")
        self.settings_applied.emit(validate(current_values(self.settings_dialog.path)))

    def _tell(self, message: str) -> None:
        self.statusBar().showMessage(message, STATUS_MESSAGE_MS)

    # Layout.

    def _restore_layout(self) -> None:
        settings = preferences()
        geometry = settings.value(GEOMETRY_KEY)
        state = settings.value(STATE_KEY)
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def save_layout(self) -> None:
        settings = preferences()
        settings.setValue(GEOMETRY_KEY, self.saveGeometry())
        settings.setValue(STATE_KEY, self.saveState())

    def reset_layout(self) -> None:
        """Put the docks back where they started, at the default size, and forget the saved
        layout."""
        self.restoreState(self._default_state)
        for dock in self.docks:
            dock.setFloating(False)
            dock.show()
        self.showNormal()
        self.resize(self.default_size())
        self.lay_out_docks()
        settings = preferences()
        settings.remove(GEOMETRY_KEY)
        settings.remove(STATE_KEY)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        super().closeEvent(event)
        self.closed.emit()
