# Conveniences for developers; the README's two commands need only Python.
PY := .venv/bin/python

.PHONY: demo test bench lint clean
demo:
	python3 bootstrap.py demo
test:
	python3 bootstrap.py test
bench:
	$(PY) -m bench
clean:
	rm -rf .venv .provision reports .pytest_cache .hypothesis
