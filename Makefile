# The README's commands: `make train` (the main job), `make test` (every test) and `make lab` (the course
# in JupyterLab). Each sets up what it needs: a virtual environment with the pinned versions, and data.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_STAMP := $(VENV)/.lab
BROWSER_STAMP := $(VENV)/.browser
KERNEL := $(VENV)/share/jupyter/kernels/minitrain/kernel.json
# `make lab` opens a browser where there is a display (or a Mac); elsewhere (ssh, containers) it prints
# the URL to open instead. Root needs --allow-root. More options: `make lab LAB_ARGS="--port 8890"`.
LAB_FLAGS := $(if $(DISPLAY)$(WAYLAND_DISPLAY)$(filter Darwin,$(shell uname -s)),,--no-browser) \
             $(if $(filter 0,$(shell id -u)),--allow-root)
# The Lab's root is the repository, so its file browser shows nbs/, solutions/, exercises/ and README.md (every
# "solutions" link of a Try it section opens its file), and it opens on the course map, nbs/index.ipynb.
LAB_OPEN := --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/nbs/index.ipynb

.PHONY: train test lab browser-test chromium reset docs data clean

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

# selenium drives Chromium in tests/test_browser.py (make test runs it when Chromium is installed).
$(BROWSER_STAMP): $(LAB_STAMP)
	$(BIN)/pip install -q -c constraints.txt selenium
	$(BIN)/pip check
	touch $(BROWSER_STAMP)

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
# repo, 120 s at most each). Then pytest, which drives the Lab in headless Chromium when Chromium is installed
# (tests/test_browser.py; `.ci/run` installs it, and `-rs` says when it was skipped). Same here and in CI.
test: $(KERNEL) $(BROWSER_STAMP)
	$(BIN)/python scripts/check_export.py
	$(BIN)/python scripts/jupyter_course.py check
	$(BIN)/python scripts/check_docs.py
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2
	$(BIN)/python scripts/jupyter_course.py run-all --jobs 2
	$(BIN)/python -m pytest -q -rs tests

lab: $(LAB_STAMP) $(KERNEL) data
	$(BIN)/jupyter lab $(LAB_OPEN) $(LAB_FLAGS) $(LAB_ARGS)

# Debian's chromium and chromium-driver, for the browser test (as root, where apt-get is; .ci/run does it too).
chromium:
	@if ! command -v chromedriver >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -q >/dev/null 2>&1; apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  echo "could not install chromium: the browser test will be skipped"; fi

# Only the browser test: headless Chromium opens the course map and 04_learner in JupyterLab, as `make lab` starts it.
browser-test: $(KERNEL) $(BROWSER_STAMP) chromium
	$(BIN)/python -m pytest -q -rs tests/test_browser.py

# A notebook back as it shipped (your changes to it are lost): make reset NB=04
reset:
	@set -- nbs/$(NB)*.ipynb; if [ -z "$(NB)" ] || [ $$# != 1 ] || [ ! -f "$$1" ]; then \
	  echo "name one notebook by the start of its name: make reset NB=04"; exit 1; fi; \
	  echo "git checkout -- $$1"; git checkout -- "$$1"

# The website needs Quarto (https://quarto.org/docs/get-started/), which pip cannot install.
docs: $(STAMP)
	@command -v quarto >/dev/null || { echo "make docs needs Quarto: install it from https://quarto.org/docs/get-started/ (a .deb on Debian/Ubuntu), then run make docs again"; exit 1; }
	$(BIN)/nbdev_docs

clean:
	rm -rf $(VENV) _proc _docs .pytest_cache
