"""Running Rempart in production: metrics, health checks, request logs, deployment checks (no business rules)."""
