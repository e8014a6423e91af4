"""`opsmon gate`: the deploy gate for CI pipelines (verdict, output, lease, runner)."""
