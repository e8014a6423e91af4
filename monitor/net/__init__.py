"""Network plumbing shared by checks and notifiers: pooled HTTP clients, the h11 transport."""
