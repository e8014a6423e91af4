"""Container monitoring through the Docker Engine API: access, events, discovery, watcher."""
