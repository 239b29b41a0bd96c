# The README's two commands: `make train` (the main job) and `make test` (every test).
# Each sets up what it needs: a virtual environment with the pinned versions, and data.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test data clean

# The venv's own pip.conf makes every pip run inside it honour constraints.txt, so no later
# `pip install` (nbdev_install, nbdev_docs, a student's) can swap the pinned CPU torch for a CUDA build.
$(STAMP): setup.py settings.ini constraints.txt
	$(PYTHON) -m venv $(VENV)
	printf '[global]\nconstraint = %s\n' "$(CURDIR)/constraints.txt" > $(VENV)/pip.conf
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/pip check
	touch $(STAMP)

# Full Fashion-MNIST from Debian when we can install it; otherwise minitrain uses its embedded subset.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) || \
	  echo "could not install dataset-fashion-mnist: training uses the embedded subset"; fi

train: $(STAMP) data
	$(BIN)/python -m minitrain train $(ARGS)

# nbdev_test runs two notebooks at a time with one torch thread each: two notebooks of two threads each
# on two cores make torch's threads wait for one another, and every notebook takes several times as long.
test: $(STAMP)
	$(BIN)/python scripts/check_export.py
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) _proc _docs .pytest_cache
