"""The Docker calls rollback makes, and nothing else.

Reads: `GET /containers/json`, `GET /containers/{id}/json`, `/containers/{id}/logs`,
`GET /images/{name}/json`. Changes: `POST /containers/create`, `/containers/{id}/start`,
`/containers/{id}/stop`, `/containers/{id}/rename`, `/networks/{id}/connect`, and
`DELETE /containers/{id}` without `force` or `v`. Nothing is killed or pulled, so a socket
proxy can allow exactly these (docs/rollback.md shows one).

Refused in code: a create request unless it equals the body made from the last known good
snapshot except for the image, or the relabelled copy of a stopped failed container; a
removal unless of a stopped container whose relabelled copy exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.docker.access import DockerAccess, describe_error
from monitor.docker.lifecycle import ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL
from monitor.rollback.retired_copy import FAILED_FROM_LABEL, retired_body
from monitor.rollback.snapshot import Snapshot, SnapshotError, short_id

if TYPE_CHECKING:
    import docker


T = TypeVar("T")


def _engine_errors() -> tuple[type[BaseException], ...]:
    """What a failed engine call raises (docker-py loads here: only rollback needs it)."""
    import docker.errors
    import requests.exceptions

    return (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


class DockerCallFailed(Exception):
    """A call to the engine failed; `reason` is for a person (no secrets in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CreateRefused(DockerCallFailed):
    """A create request that is not the LKG snapshot with another image."""


def check_create_request(body: Mapping[str, object], name: str, lkg: Snapshot) -> None:
    """Raise CreateRefused unless `body` and `name` are exactly what the LKG snapshot makes
    with the body's image (names of the differing settings only, never values)."""
    if name != lkg.name:
        raise CreateRefused(f"refused to create {name!r}: the snapshot's container is {lkg.name!r}")
    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise CreateRefused("refused to create a container without an image")
    expected = lkg.create_body(image)
    if dict(body) != expected:
        keys = sorted(k for k in set(body) | set(expected) if body.get(k) != expected.get(k))
        raise CreateRefused(
            f"refused to create {name!r}: the request differs from the last known good snapshot "
            f"in {', '.join(keys)}"
        )


def _endpoint_kwargs(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    ipam = endpoint.get("IPAMConfig") or {}
    return {
        "aliases": endpoint.get("Aliases") or None,
        "links": endpoint.get("Links") or None,
        "ipv4_address": ipam.get("IPv4Address") or None,
        "ipv6_address": ipam.get("IPv6Address") or None,
        "link_local_ips": ipam.get("LinkLocalIPs") or None,
        "driver_opt": endpoint.get("DriverOpts") or None,
    }


def _running(data: Mapping[str, Any]) -> bool:
    return bool((data.get("State") or {}).get("Running"))


class ContainerOps:
    """Rollback's view of the engine: a few reads and the six changes it may make."""

    def __init__(self, access: DockerAccess) -> None:
        self.access = access
        self._client: docker.APIClient | None = None
        self._lock = threading.Lock()

    def _shared(self) -> docker.APIClient:
        with self._lock:
            if self._client is None:
                self._client = self.access.new_client()
            return self._client

    async def _call(self, what: str, work: Callable[[docker.APIClient], T]) -> T:
        def blocking() -> T:
            return work(self._shared())

        import docker.errors

        try:
            return await asyncio.to_thread(blocking)
        except _engine_errors() as exc:
            if not isinstance(exc, docker.errors.APIError):
                self._forget()
            raise DockerCallFailed(f"{what}: {describe_error(exc, self.access.host)}") from None

    def _forget(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close the connection."""
        self._forget()

    # --- reads ------------------------------------------------------------------------------
    async def inspect(self, container: str) -> dict[str, Any] | None:
        """`docker inspect` of a container (by id or name), or None if there is none."""

        def work(client: docker.APIClient) -> dict[str, Any] | None:
            import docker.errors

            try:
                found: dict[str, Any] = client.inspect_container(container)
            except docker.errors.NotFound:
                return None
            return found

        return await self._call(f"inspect {container}", work)

    async def service_containers(self, service: str, project: str | None) -> list[dict[str, Any]]:
        """Summaries of the containers of a Compose service (one-off `run` containers left out)."""
        labels = [f"{SERVICE_LABEL}={service}"]
        if project:
            labels.append(f"{PROJECT_LABEL}={project}")
        found: list[dict[str, Any]] = await self._call(
            f"list containers of {service}",
            lambda c: c.containers(all=True, filters={"label": labels}),
        )
        return [
            s for s in found if str((s.get("Labels") or {}).get(ONEOFF_LABEL, "")).lower() != "true"
        ]

    async def image(self, reference: str) -> dict[str, Any] | None:
        """`docker image inspect`, or None when the engine does not have that image."""

        def work(client: docker.APIClient) -> dict[str, Any] | None:
            import docker.errors

            try:
                found: dict[str, Any] = client.inspect_image(reference)  # type: ignore[no-untyped-call]
            except docker.errors.NotFound:
                return None
            return found

        return await self._call(f"inspect image {reference}", work)

    # --- the changes ------------------------------------------------------------------------
    async def stop(self, container: str, grace: int | None = None) -> None:
        """Stop a container (its stop signal, then SIGKILL after `grace` seconds)."""

        def work(client: docker.APIClient) -> None:
            # docker-py lengthens the HTTP timeout by the stop timeout itself.
            if grace is None:
                client.stop(container)
            else:
                client.stop(container, timeout=grace)

        await self._call(f"stop {container[:12]}", work)

    async def rename(self, container: str, name: str) -> None:
        """Give a container another name."""
        await self._call(f"rename {container[:12]} to {name}", lambda c: c.rename(container, name))

    async def create(self, body: Mapping[str, object], name: str, lkg: Snapshot) -> str:
        """Create a container, only if `body` is the LKG snapshot with another image."""
        check_create_request(body, name, lkg)
        answer: dict[str, object] = await self._call(
            f"create {name}",
            lambda c: c.create_container_from_config(dict(body), name),  # type: ignore[no-untyped-call]
        )
        return str(answer["Id"])

    async def start(self, container: str) -> None:
        """Start a created or stopped container."""
        await self._call(f"start {container[:12]}", lambda c: c.start(container))

    async def connect(
        self, container: str, network: str, endpoint: Mapping[str, object], lkg: Snapshot
    ) -> None:
        """Connect a container to one of the LKG snapshot's networks, with its aliases."""
        if lkg.extra_networks().get(network) != dict(endpoint):
            raise CreateRefused(f"refused to connect to {network!r}: not in the snapshot")
        kwargs = _endpoint_kwargs(endpoint)
        await self._call(
            f"connect {container[:12]} to {network}",
            lambda c: c.connect_container_to_network(container, network, **kwargs),
        )

    # --- retiring the failed container ------------------------------------------------------
    async def retired_copies(self, original_id: str) -> list[dict[str, Any]]:
        """Summaries of the relabelled copies of container `original_id` (one, or none yet)."""
        found: list[dict[str, Any]] = await self._call(
            f"list copies of {original_id[:12]}",
            lambda c: c.containers(
                all=True, filters={"label": f"{FAILED_FROM_LABEL}={original_id}"}
            ),
        )
        return found

    async def logs(self, container: str, tail: int) -> bytes:
        """The last `tail` lines a container wrote (stdout and stderr, with timestamps)."""
        found: bytes = await self._call(
            f"read the log of {container[:12]}",
            lambda c: c.logs(container, stdout=True, stderr=True, timestamps=True, tail=tail),
        )
        return found

    async def create_retired_copy(self, original: Mapping[str, Any], logs: str | None) -> str:
        """Create the relabelled copy of a stopped container (inspect data `original`): the
        only create besides the LKG snapshot's. Its name is the engine's until renamed."""
        cid = str(original.get("Id") or "")
        if _running(original):
            raise CreateRefused(f"refused to copy {cid[:12]}: it is running")
        reference = str((original.get("Config") or {}).get("Image") or "")
        image = await self.image(reference) if reference else None
        if image is None or image.get("Id") != original.get("Image"):
            # The tag moved on (or is gone): the copy runs what the failed container ran.
            reference, image = (
                str(original.get("Image")),
                await self.image(str(original.get("Image"))),
            )
        image_labels = ((image or {}).get("Config") or {}).get("Labels") or {}
        try:
            body = retired_body(original, reference, image_labels, logs)
        except SnapshotError as exc:
            raise CreateRefused(f"refused to copy {cid[:12]}: {exc}") from None
        answer: dict[str, object] = await self._call(
            f"create a relabelled copy of {cid[:12]}",
            lambda c: c.create_container_from_config(body, None),  # type: ignore[no-untyped-call]
        )
        return str(answer["Id"])

    async def check_removal_allowed(self) -> None:
        """Raise DockerCallFailed unless removals reach the engine: asks to remove a container
        that does not exist (404 when allowed, 403 from a socket proxy that forbids it), so
        that no copy is made that could not replace its original."""
        absent = f"opsmon-removal-probe-{uuid.uuid4().hex}"

        def work(client: docker.APIClient) -> None:
            import docker.errors

            with contextlib.suppress(docker.errors.NotFound):
                client.remove_container(absent, v=False, link=False, force=False)

        await self._call("remove a container (probe)", work)

    async def remove_retired(self, original_id: str) -> None:
        """Remove a stopped container whose relabelled copy exists (its volumes stay); any
        other removal is refused before it reaches the engine."""
        data = await self.inspect(original_id)
        if data is None:
            return
        if _running(data):
            raise CreateRefused(f"refused to remove {short_id(original_id)}: it is running")
        if not await self.retired_copies(original_id):
            raise CreateRefused(
                f"refused to remove {short_id(original_id)}: no relabelled copy of it exists"
            )
        await self._call(
            f"remove {original_id[:12]}",
            lambda c: c.remove_container(original_id, v=False, link=False, force=False),
        )
