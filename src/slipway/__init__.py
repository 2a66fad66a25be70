"""slipway: the platform team's own tooling around the template."""
