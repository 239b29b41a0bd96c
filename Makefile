# The README's commands: `make train` (the main job), `make test` (every test) and `make lab` (the course
# in JupyterLab). Each sets up what it needs: a virtual environment with the pinned versions, and data.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_STAMP := $(VENV)/.lab
KERNEL := $(VENV)/share/jupyter/kernels/minitrain/kernel.json
# `make lab` opens a browser where there is a display (or a Mac); elsewhere (ssh, containers) it prints
# the URL to open instead. Root needs --allow-root. More options: `make lab LAB_ARGS="--port 8890"`.
LAB_FLAGS := $(if $(DISPLAY)$(WAYLAND_DISPLAY)$(filter Darwin,$(shell uname -s)),,--no-browser) \
             $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: train test lab browser-test docs data clean

# The venv's own pip.conf makes every pip run inside it honour constraints.txt, so no later
# `pip install` (nbdev_install, nbdev_docs, a student's) can swap the pinned CPU torch for a CUDA build.
$(STAMP): setup.py settings.ini constraints.txt
	$(PYTHON) -m venv $(VENV)
	printf '[global]\nconstraint = %s\n' "$(CURDIR)/constraints.txt" > $(VENV)/pip.conf
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/pip check
	touch $(STAMP)

# The kernel "minitrain" is registered inside the venv (ipykernel --sys-prefix): it goes away with the
# venv, writes nothing to $HOME, and checkouts side by side each get their own. The notebooks name it
# in their metadata. The same step adds the venv's Jupyter save hook (scripts/jupyter_course.py).
$(KERNEL): $(STAMP) scripts/jupyter_course.py
	$(BIN)/python scripts/jupyter_course.py install

$(LAB_STAMP): $(STAMP)
	$(BIN)/pip install -q -c constraints.txt jupyterlab
	$(BIN)/pip check
	touch $(LAB_STAMP)

# Full Fashion-MNIST from Debian when we can install it; otherwise minitrain uses its embedded subset.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) || \
	  echo "could not install dataset-fashion-mnist: training uses the embedded subset"; fi

train: $(STAMP) data
	$(BIN)/python -m minitrain train $(ARGS)

# The notebooks are tested twice, two at a time with one torch thread each (two of two threads on two cores
# make torch's threads wait for one another): by nbdev_test, as nbdev runs them (without the `#| eval: false`
# and `#| slow` cells, so a later cell cannot lean on one of those), and by "Run All" in the `minitrain`
# kernel, every cell as a student runs them (no error, no machine paths in outputs, nothing written in the
# repo, 120 s at most each). Same here and in CI.
test: $(KERNEL)
	$(BIN)/python scripts/check_export.py
	$(BIN)/python scripts/jupyter_course.py check
	$(BIN)/python scripts/check_docs.py
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2
	$(BIN)/python scripts/jupyter_course.py run-all --jobs 2
	$(BIN)/python -m pytest -q tests

lab: $(LAB_STAMP) $(KERNEL) data
	$(BIN)/jupyter lab --ServerApp.root_dir=nbs $(LAB_FLAGS) $(LAB_ARGS)

# Headless Chromium (Debian's chromium + chromium-driver, installed when run as root) opens 04_learner in
# JupyterLab, runs all and checks for errors and a progress widget. Not part of `make test` (nor CI).
browser-test: $(LAB_STAMP) $(KERNEL)
	@if ! command -v chromedriver >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1) || \
	  echo "could not install chromium: the browser test will be skipped"; fi
	$(BIN)/pip install -q -c constraints.txt selenium
	MINITRAIN_BROWSER=1 $(BIN)/python -m pytest -q -rs tests/test_browser.py

# The website needs Quarto (https://quarto.org/docs/get-started/), which pip cannot install.
docs: $(STAMP)
	@command -v quarto >/dev/null || { echo "make docs needs Quarto: install it from https://quarto.org/docs/get-started/ (a .deb on Debian/Ubuntu), then run make docs again"; exit 1; }
	$(BIN)/nbdev_docs

clean:
	rm -rf $(VENV) _proc _docs .pytest_cache
