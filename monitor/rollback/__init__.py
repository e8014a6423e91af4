"""Automated rollback of a bad deploy to the service's last known good (LKG) image."""
