# agentload: `make run` and `make test` each set up what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The local Kafka broker; deploy/kafka/README.md lists its settings (KAFKA_PORT, KAFKA_DATA_DIR, ...).
BROKER := deploy/kafka/broker
export KAFKA_PYTHON ?= $(abspath $(BIN))/python

.PHONY: install run test bench clean kafka-up kafka-down

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "agentload needs Python 3.11 or newer; run e.g. make PYTHON=python3.11 $(MAKECMDGOALS)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/agentload run $(ARGS)

# Installs promtool for the rule tests (Debian's prometheus package) and Debian's chromium for the
# browser tests when missing. Starts the local broker unless KAFKA_BOOTSTRAP_SERVERS names one, and
# stops it again even when tests fail; the exit status is pytest's, so "no tests collected" (exit 5)
# fails too.
test: $(STAMP)
	deploy/prometheus/ensure-promtool >/dev/null
	chromium=$$(deploy/browser/ensure-chromium) && \
		CHROMIUM=$$chromium deploy/kafka/with-broker $(BIN)/python -m pytest $(PYTEST_ARGS)

# Every benchmark, the Faust one against a local broker; BENCH=bench_engine runs one of them.
bench: $(STAMP)
	deploy/kafka/with-broker $(BIN)/python -m tests.benchmarks $(BENCH)

kafka-up: $(STAMP)
	$(BROKER) start

kafka-down:
	$(BROKER) stop

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
