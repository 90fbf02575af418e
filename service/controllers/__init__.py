"""One controller per resource: jobs, models, tokenize, health."""
