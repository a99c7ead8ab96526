# Two entry points: `make demo` lints the bundled examples, `make test` runs the test suite.
# Each creates the local virtualenv it needs. torch is pinned: an unpinned torch pulls CUDA wheels.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0

.PHONY: demo test bench clean

$(BIN)/lora-lint: pyproject.toml requirements/test-constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements/test-constraints.txt "$(TORCH)" -e ".[torch,test,lightning,xdist,trl,ray,mlflow,tensorboard,wandb]"
	touch $@

demo: $(BIN)/lora-lint
	@$(BIN)/lora-lint check examples/ || echo "(exit code $$?: the bad examples are meant to fail)"
	$(BIN)/lora-lint params examples/lora-config/good-qlora.yaml --ranks 4,8,16,32

test: $(BIN)/lora-lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: $(BIN)/lora-lint
	$(BIN)/python benchmarks/check_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info
