"""Plain types every part shares (results, health, specs, durations); no subsystem deps."""
