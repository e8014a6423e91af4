"""The `status_page:` section of the config file.

```yaml
status_page:
  enabled: true          # default true
  public: false          # default false: see `StatusPageConfig.public`
  title: Example status
  services: [frontend, backend, database]   # default: every service
```
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StatusPageConfig(BaseModel):
    """Who may see `/status`, what it is called and which services it shows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # False: the page (and the badges) answer requests from the loopback interface, and any
    # other request that carries an API token with the `read` scope; everyone else gets 401.
    # True: anyone who can reach the listen address sees the page and the badges.
    public: bool = False
    title: str = Field(default="Service status", min_length=1, max_length=120)
    # Services whose checks the page shows, in this order; empty: every check, by service.
    services: tuple[str, ...] = ()
