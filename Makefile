# Two commands do all set-up on a fresh machine:
#   make run    set up .venv and start smoe-gui on a bundled sample image
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := resources/samples/parrots.png

.PHONY: run test setup lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# the pinned CPU torch first: a looser requirement pulls gigabytes of CUDA wheels
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smoe-gui $(SAMPLE)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check smoe_gui tests benchmarks packaging
	$(BIN)/mypy smoe_gui
	$(BIN)/lint-imports

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) out build dist *.egg-info

# --- desktop bundle (packaging/README.md) -------------------------------------------
.PHONY: bundle bundle-test icons
BUNDLE_STAMP := $(VENV)/.bundle-installed

$(BUNDLE_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e ".[bundle]"
	touch $(BUNDLE_STAMP)

# one-folder bundle with the CPU torch: dist/smoe-gui/smoe-gui (and dist/smoe-gui/smoe)
bundle: $(BUNDLE_STAMP)
	$(BIN)/pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/smoe-gui.spec
	du -sh dist/smoe-gui

# the built bundle loads a sample, initialises and trains 20 steps offscreen; it runs
# outside the checkout, as a user's would (numba then caches in ~/.cache/numba, not in
# the source tree's __pycache__, which the bundle's relative module paths would hit)
bundle-test:
	@test -x dist/smoe-gui/smoe-gui || { echo "no bundle in dist/smoe-gui: run 'make bundle' first"; exit 2; }
	cd "$$(mktemp -d)" && QT_QPA_PLATFORM=offscreen "$(CURDIR)/dist/smoe-gui/smoe-gui" --self-test

# re-render resources/icons/*.png, .ico and .icns from resources/icons/smoe-gui.svg
icons: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python packaging/make_icons.py
