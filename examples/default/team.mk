# The team's make targets. This file is yours: `copier update` never changes it, and the
# platform-owned Makefile includes it, so targets added here never conflict with an update.
# A target with a `## description` comment shows in `make help`; platform variables
# ($(RUN), $(PACKAGE), $(URL), ...) are available.
#
# `team-check` runs in CI after the platform's checks (the team job in CI, see docs/architecture.md):
# make your own checks its prerequisites, e.g.
#
#   team-check: notebooks-lint
#   notebooks-lint: ## lint the notebooks
#   	$(RUN) nbqa ruff notebooks/

.PHONY: team-check
team-check: ## the team's own CI checks (add prerequisites in team.mk)
	@echo "team-check: no team checks yet (add them in team.mk)"
