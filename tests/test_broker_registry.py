"""A broker is its package and one line of the registry: nothing else of the backend names it.

- No module of ``backend/`` outside ``backend/brokers/`` imports a broker's package; the rest of
  the backend reaches a broker only through :data:`backend.brokers.BROKERS`.
- Every registered broker describes itself in full, the bundled simulator's dialect included,
  and the simulator plays it from that description alone.
- Importing the registry does not load the simulator: a broker's dialect is built when asked for.
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from backend.brokers import BROKERS, Broker
from backend.instruments.master import load_master
from backend.simulator import ExchangeSimulator, SimulatorCredentials
from backend.simulator.connection import SimulatedConnection
from backend.simulator.dialect import Dialect
from backend.simulator.logins import Logins

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend"
BROKER_PACKAGES = {f"backend.brokers.{name}" for name in BROKERS}


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module an ``import`` or ``from ... import`` of ``tree`` names, with each name taken
    from a package as a module of its own (``from backend.brokers import angel``)."""
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def names_a_broker_package(module: str) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in BROKER_PACKAGES)


def outside_brokers() -> list[Path]:
    brokers = BACKEND / "brokers"
    return sorted(path for path in BACKEND.rglob("*.py") if brokers not in path.parents)


def test_the_scan_sees_every_way_of_importing_a_broker_package():
    source = (
        "import backend.brokers.angel\n"
        "from backend.brokers.zerodha.protocol import SUBSCRIBE\n"
        "from backend.brokers import BROKERS, angel\n"
    )
    found = set(filter(names_a_broker_package, imported_modules(ast.parse(source))))
    assert found == {
        "backend.brokers.angel",
        "backend.brokers.zerodha.protocol",
        "backend.brokers.zerodha.protocol.SUBSCRIBE",
    }


def test_no_module_outside_the_brokers_imports_a_broker_package():
    offenders = {
        str(path.relative_to(ROOT)): sorted(filter(names_a_broker_package, modules))
        for path in outside_brokers()
        if (modules := imported_modules(ast.parse(path.read_text(), str(path))))
        and any(map(names_a_broker_package, modules))
    }
    assert offenders == {}


def is_set(value: object) -> bool:
    return value not in (None, "", ())


@pytest.mark.parametrize("name", sorted(BROKERS))
def test_every_broker_describes_itself_in_full(name):
    broker = BROKERS[name]
    assert isinstance(broker, Broker) and broker.name == name
    optional = {"browser_login", "master_files"}
    fields = [f.name for f in dataclasses.fields(Broker) if f.name not in optional]
    assert [name for name in fields if not is_set(getattr(broker, name))] == []
    assert broker.max_connections > 0 and broker.max_symbols > 0
    own = {setting.name for setting in broker.settings}
    assert broker.url_setting in own
    login = broker.browser_login
    saved_by_login = {setting.name for setting in broker.settings if setting.from_login}
    if login is None:
        assert not saved_by_login, "settings saved by a login the broker does not have"
    else:
        assert login.redirect_setting in own and set(login.required) <= own
        assert saved_by_login, "a browser login that saves none of the broker's settings"


@pytest.mark.parametrize("name", sorted(BROKERS))
def test_every_broker_provides_the_simulators_dialect_in_full(name):
    dialect = BROKERS[name].simulator_dialect()
    assert isinstance(dialect, Dialect)
    missing = [f.name for f in dataclasses.fields(Dialect) if not is_set(getattr(dialect, f.name))]
    assert missing == []
    assert dialect.path.startswith("/")
    assert issubclass(dialect.connection, SimulatedConnection) and dialect.connection.MODES
    assert isinstance(dialect.logins(SimulatorCredentials()), Logins)


@pytest.mark.parametrize("name", sorted(BROKERS))
def test_the_simulator_plays_every_broker_from_its_description(name):
    simulator = ExchangeSimulator(load_master(), broker=name)
    assert simulator.broker is BROKERS[name]
    assert simulator.dialect == BROKERS[name].simulator_dialect()
    assert simulator.instruments  # the broker's master, read back with the broker's reader


def test_importing_the_registry_does_not_load_the_simulator():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, backend.brokers; "
            "print(sorted(m for m in sys.modules if m.startswith('backend.simulator')))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
