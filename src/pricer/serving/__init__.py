"""Stage 5, serving: the HTTP service and its load test."""
