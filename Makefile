# Conveniences for developers; the README's two commands need only Python.
PY := .venv/bin/python

.PHONY: demo test bench lint clean
demo:
	python3 bootstrap.py demo
test:
	python3 bootstrap.py test
lint:
	$(PY) -m mypy
	$(PY) -m ruff check provision tests bench sample_data
bench:
	$(PY) -m bench
clean:
	rm -rf .venv .provision reports .pytest_cache .hypothesis
