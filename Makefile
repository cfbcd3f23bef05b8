# The two commands of the README. Both install what they need when it is missing.
.PHONY: demo test
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
