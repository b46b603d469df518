# 第21章 生成对抗网络 — every set-up step lives here, so that a fresh clone needs
# only `make book` (build the HTML book) and `make test` (run every test).
SHELL := /bin/bash
VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
STAMPS  := $(VENV)/.stamps
# (with HOME empty, npgan itself finds the account's home: see npgan.mnist_cache.data_dir)
ifneq ($(strip $(HOME)),)
export NPGAN_DATA ?= $(HOME)/.cache/npgan
endif
# The same arithmetic on every x86-64 machine: OpenBLAS and NumPy pick their kernels by
# CPU, and a GAN's training amplifies the last-bit differences between kernels. Measured
# 2026-12-02 on an AVX-512 machine (OpenBLAS core SkylakeX, NumPy X86_V4): the book's
# runs came out different from those on AVX2 machines (InfoGAN's c1 47.7 % against 65.3 %,
# the DCGAN's FD 13.35 against 11.68, even the real-vs-real floor 2.3517 against 2.3438);
# with OpenBLAS's Haswell kernels and NumPy's AVX-512 loops off, it gave the AVX2
# machines' evaluator and floor to the last digit, and trained no slower (a DCGAN step
# 25.6 against 27.6 ms). Set either variable yourself to choose otherwise.
ifeq ($(shell uname -m),x86_64)
export OPENBLAS_CORETYPE ?= Haswell
export NPY_DISABLE_CPU_FEATURES ?= X86_V4 AVX512_ICL AVX512_SPR
endif
APT_PACKAGES := chromium chromium-driver fonts-noto-cjk dataset-fashion-mnist
MATHJAX := _static_offline/mathjax
# --all re-reads every page (notebooks still come from the execution cache): without it a
# second build writes only changed pages and silently drops the warnings of the others.
JB_FLAGS := -W -n --keep-going --all

.PHONY: all book runs test test-unit test-notebooks test-browser bench lab data evaluators figures gan-zoo-counts clean help \
        notebook-outputs numbering fresh-notebook-cache

help:
	@echo "make book   build the HTML book in _build/html (trains every model two at a time: 40 min measured cold on 2 idle cores, see benchmarks/README.md)"
	@echo "make test   every test: unit tests, notebooks (quick mode), browser test of the book"
	@echo "make bench  speed benchmark (benchmarks/bench_train.py)"
	@echo "make lab    open the notebooks in JupyterLab with this project's kernel"

# ---------------------------------------------------------------- set-up
$(STAMPS)/venv: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (npgan)" >/dev/null
	mkdir -p $(STAMPS) && touch $@

$(STAMPS)/torch: $(STAMPS)/venv
	$(PIP) install -q torch==2.13.0
	touch $@

$(STAMPS)/apt: Makefile   # re-checked when APT_PACKAGES changes
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	  rm -rf $(HOME)/.cache/matplotlib; \
	fi
	mkdir -p $(STAMPS) && touch $@

data: $(STAMPS)/venv
	$(PY) -m npgan fetch-data

# The tests read the evaluators (and the retired MLP one, which a test compares); the book
# trains its evaluators beside the runs instead (make runs), and needs no MLP evaluator.
evaluators: $(STAMPS)/venv data
	$(PY) -m npgan fetch-data --evaluator

# The book's training runs, side by side (one process and one BLAS thread per model, as many
# at once as there are cores); the notebooks then find them done. Each run is reused while
# its recipe is unchanged. (A notebook opened on its own trains its run in the cell.)
runs: $(STAMPS)/venv data
	time $(PY) -m npgan book-runs
	@$(MAKE) --no-print-directory fresh-notebook-cache

# The execution cache keys a notebook by its code alone: after a run was trained again (a new
# recipe), the evaluator that scores the runs changed (a new version), or a committed result a
# notebook reads changed (experiments/*.csv, benchmarks/*.csv and recorded.json), it would go on
# showing the old results. So it is dropped whenever any of these differ from those of the last
# build (names, sizes and times, in one fingerprint).
RUNS_FINGERPRINT := _build/.runs-fingerprint
fresh-notebook-cache: $(STAMPS)/venv
	@new=$$($(PY) -c "import hashlib; from npgan.data import data_dir; from npgan.evaluator import DATASETS, evaluator_path; \
	  files = sorted(p for p in (data_dir() / 'runs').glob('book-*/epoch_*.npz') if 'subset' not in p.parent.name); \
	  files += [p for p in map(evaluator_path, DATASETS) if p.is_file()]; \
	  from pathlib import Path; files += sorted(Path('experiments').glob('*.csv')) + sorted(Path('benchmarks').glob('*.csv')) + [Path('benchmarks/recorded.json')]; \
	  print(hashlib.sha256(''.join(f'{p}:{p.stat().st_size}:{p.stat().st_mtime_ns};' for p in files).encode()).hexdigest())"); \
	if [ "$$new" != "$$(cat $(RUNS_FINGERPRINT) 2>/dev/null)" ]; then \
	  if [ -d _build/.jupyter_cache ]; then echo "the book's runs, evaluators or committed results changed: every notebook runs again"; fi; \
	  rm -rf _build/.jupyter_cache; mkdir -p _build; echo "$$new" > $(RUNS_FINGERPRINT); \
	fi

# MathJax served from the build itself, so the book reads offline (not committed).
$(MATHJAX)/tex-mml-chtml.js:
	rm -rf $(MATHJAX) .mathjax-tmp && mkdir -p .mathjax-tmp $(MATHJAX)
	cd .mathjax-tmp && npm pack --silent mathjax@3.2.2 >/dev/null && tar xzf mathjax-3.2.2.tgz
	cp -r .mathjax-tmp/package/es5/{tex-mml-chtml.js,input,output,ui,a11y,adaptors} $(MATHJAX)/
	rm -rf .mathjax-tmp

# The chapter's own figures → images/out/ (git-ignored); unchanged files are left alone.
figures: $(STAMPS)/venv $(STAMPS)/apt
	$(PY) images/make_figures.py

# Re-derive images/gan_zoo_monthly.csv from the-gan-zoo list in ../shared/data/gan-zoo.tsv
# (the committed CSV is all the book needs; the list itself is never committed).
gan-zoo-counts: $(STAMPS)/venv
	$(PY) images/make_figures.py --from-tsv --only gan_zoo_cumulative

# ---------------------------------------------------------------- the book
# The notebooks run two at a time into the build's execution cache first (Jupyter Book
# would run them one after the other); the build then reads them from there.
book: $(STAMPS)/venv $(STAMPS)/apt data runs $(MATHJAX)/tex-mml-chtml.js figures
	time $(PY) _ext/execute_notebooks.py --cache _build/.jupyter_cache notebooks/*.ipynb
	time $(VENV)/bin/jupyter-book build . $(JB_FLAGS)
	@echo "open _build/html/index.html"

# ---------------------------------------------------------------- tests
test: test-unit test-notebooks test-browser

test-unit: $(STAMPS)/venv $(STAMPS)/torch $(STAMPS)/apt evaluators
	$(PY) -m pytest tests -q

test-notebooks: $(STAMPS)/venv $(STAMPS)/apt evaluators
	NPGAN_QUICK=1 $(PY) -m pytest -q --nbval-lax -p no:cacheprovider notebooks

# Quick-mode build in _build_quick (own execution cache), then every page in headless
# chromium: no 404, nothing from another host, math typeset, images shown, search works.
# Then the generator widgets of the pages, through Selenium and chromium-driver (check_demo.py).
# Screenshots: _build_quick/screenshots/. Extra options: make test-browser BROWSER_ARGS=--no-build
test-browser: $(STAMPS)/venv $(STAMPS)/apt evaluators $(MATHJAX)/tex-mml-chtml.js figures
	$(PY) tests/browser/check_book.py $(BROWSER_ARGS)
	$(PY) tests/browser/check_demo.py $(DEMO_ARGS)

bench: $(STAMPS)/venv $(STAMPS)/torch data
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_train.py --threads 2 --no-memory --json benchmarks/results/threads-2.json
	$(PY) benchmarks/record.py
	$(PY) benchmarks/bench_busy.py

lab: $(STAMPS)/venv data
	$(PIP) install -q jupyterlab==4.4.9
	$(VENV)/bin/jupyter lab notebooks

# After `make book`: the executed notebooks of the full build's cache (_build/.jupyter_cache)
# become the committed notebooks' outputs, so a code browser shows the book's numbers.
# Refuses a notebook changed since the build, or a quick-mode cache. Commit notebooks/ after it.
notebook-outputs: $(STAMPS)/venv
	$(PY) _ext/notebook_outputs.py --cache _build/.jupyter_cache

# Figures 图21-N and tables 表21-N in reading order, every reference fixed (after adding a page).
numbering: $(STAMPS)/venv
	$(PY) _ext/numbering.py --fix

clean:
	rm -rf _build _build_quick .pytest_cache $(MATHJAX) images/out
