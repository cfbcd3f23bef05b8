# The two commands of the README. Both install what they need when it is missing.
.PHONY: demo test
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh

# Fuzzing (not part of `make test`'s time budget): every target for 30 minutes or 10 million
# executions, whichever comes first; `make fuzz SECONDS=60` for a shorter run.
.PHONY: fuzz
SECONDS ?= 1800
fuzz:
	bash scripts/fuzz.sh $(SECONDS)
