# FeedPool: `make run` starts the app, `make test` runs the suite. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench soak screenshots package system-packages clean

# Debian packages that the tests and the build need: the libraries Qt loads, even offscreen,
# binutils (PyInstaller's objdump and strip) and the Python library the app bundles.
PYTHON_VERSION = $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
DEBIAN_PACKAGES = libglib2.0-0 libgl1 libegl1 libfontconfig1 libxkbcommon0 libdbus-1-3 \
	binutils libpython$(PYTHON_VERSION)
HAS_SYSTEM_PACKAGES := $(BIN)/python -c 'import PySide6.QtWidgets' && command -v objdump && \
	$(BIN)/python -c 'from PyInstaller.depend.bindepend import get_python_library_path as f; assert f()'

# Debian's python3 keeps venv in a package of its own: installed here when missing (as root).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv && \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The legacy official Noren client shares its module's file with NorenRestApiOAuth (in the
	# dev extra): it gets a folder of its own, which its test puts first on its path.
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/noren-legacy \
		NorenRestApiPy==0.0.22
	touch $(STAMP)

run: $(STAMP) system-packages
	$(BIN)/python -m desktop

test: $(STAMP) system-packages
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile
	$(MAKE) package
	dist/FeedPool/FeedPool --self-test

# The one-folder app: dist/FeedPool/FeedPool (and dist/FeedPool.app on macOS).
package: $(STAMP) system-packages
	$(BIN)/pyinstaller --noconfirm --clean build.spec

# Installs DEBIAN_PACKAGES when something is missing (on Debian, as root only).
system-packages: $(STAMP)
	@{ $(HAS_SYSTEM_PACKAGES); } >/dev/null 2>&1 || { \
		[ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null || { \
			echo "Install these packages first: $(DEBIAN_PACKAGES)" >&2; exit 1; }; \
		apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); }

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/failover.py
	$(BIN)/python bench/overload.py
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(BIN)/python bench/gui_lag.py
	QT_QPA_PLATFORM=$${QT_QPA_PLATFORM:-offscreen} $(BIN)/python bench/gui_lag.py \
		--broker zerodha --symbols 9000 --rate 5

# The soak: faults on a schedule at the open's load, 3 minutes (SOAK_ARGS="--minutes 30").
soak: $(STAMP)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# The README's screenshots (resources/screenshots/), the app offscreen on the simulator.
screenshots: $(STAMP) system-packages
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m desktop.screenshots
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m desktop.screenshots --accounts

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
