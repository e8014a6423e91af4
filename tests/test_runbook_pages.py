"""The daemon serves the runbooks: /runbooks and /runbooks/<id>, plain HTML without JavaScript."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.alertnames import AlertName
from monitor.config import load_config
from monitor.runbooks import Catalogue, runbook_url
from tests.support.cli import running_daemon
from tests.support.environment import free_port
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One HTTP client (connection reuse, no proxy from the environment)."""
    with httpx.Client(trust_env=False, timeout=5) as http:
        yield http


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`opsmon run` with one rarely run check and a `runbooks:` section, serving the
    repository's runbooks."""
    folder = tmp_path_factory.mktemp("pages")
    port = free_port()
    config = folder / "opsmon.yml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\nstate_dir: {folder / 'state'}\n"
        f"public_url: http://127.0.0.1:{port}/\n"
        "runbooks: {compose_file: /srv/app/docker-compose.prod.yml, project: shop,"
        " escalation: ['backend owners: #backend-oncall']}\n"
        "checks:\n  - {name: backend-health, type: http, service: backend, interval: 1h,"
        " url: 'http://127.0.0.1:4100/api/health'}\n"
    )
    with running_daemon(config, port):
        yield f"http://127.0.0.1:{port}", config


def test_index_links_every_runbook(daemon: tuple[str, Path], client: httpx.Client) -> None:
    """/runbooks lists every runbook with a working link, as HTML with no script."""
    base, _ = daemon
    catalogue = Catalogue.load(REPO / "runbooks")
    index = client.get(f"{base}/runbooks")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "<script" not in index.text
    for runbook in catalogue:
        assert f'href="runbooks/{runbook.id}"' in index.text
        page = client.get(httpx.URL(f"{base}/runbooks").join(f"runbooks/{runbook.id}"))
        assert page.status_code == 200, runbook.id
        assert f"<h1>{runbook.title}</h1>" in page.text
        assert "<script" not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "<h2>Diagnosis</h2>" in page.text and "<h2>Mitigation</h2>" in page.text


def test_pages_show_commands_for_the_running_config(
    daemon: tuple[str, Path], client: httpx.Client
) -> None:
    """A runbook page shows the backend check's own URL, the configured compose file and
    project, and the escalation contacts: commands that work where on-call stands."""
    base, _ = daemon
    page = client.get(f"{base}/runbooks/health-check-failing").text
    assert "http://127.0.0.1:4100/api/health" in page
    assert "http://backend:4000" not in page
    assert "docker compose -f /srv/app/docker-compose.prod.yml -p shop ps" in page
    assert "logs -f" not in page
    assert "backend owners: #backend-oncall" in page


def test_every_runbook_url_an_alert_carries_answers(
    daemon: tuple[str, Path], client: httpx.Client
) -> None:
    """For every alert name, the URL built from the daemon's config opens its runbook."""
    base, config_path = daemon
    config = load_config(config_path).config
    for name in AlertName:
        url = runbook_url(config, name)
        assert url.startswith(f"{base}/runbooks/")
        answer = client.get(url)
        assert answer.status_code == 200, (name, url)


def test_unknown_runbook_is_404_and_alert_names_redirect(
    daemon: tuple[str, Path], client: httpx.Client
) -> None:
    """An unknown id answers 404 with a way back; an alert name redirects to its runbook."""
    base, _ = daemon
    missing = client.get(f"{base}/runbooks/no-such-runbook")
    assert missing.status_code == 404
    assert "No runbook named <code>no-such-runbook</code>" in missing.text
    hostile = client.get(f"{base}/runbooks/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert hostile.status_code == 404 and "<script>" not in hostile.text
    moved = client.get(f"{base}/runbooks/ContainerOOMKilled", follow_redirects=True)
    assert moved.status_code == 200
    assert moved.url.path == "/runbooks/container-oom-killed"


def test_sighup_reloads_edited_runbooks(tmp_path: Path, client: httpx.Client) -> None:
    """With OPSMON_RUNBOOKS_DIR, an edited runbook shows after SIGHUP, without a restart."""
    folder = tmp_path / "runbooks"
    shutil.copytree(REPO / "runbooks", folder)
    port = free_port()
    config = tmp_path / "opsmon.yml"
    config.write_text(f"listen: 127.0.0.1:{port}\nstate_dir: {tmp_path / 'state'}\nchecks: []\n")
    page = f"http://127.0.0.1:{port}/runbooks/monitor-down"
    env = {"OPSMON_RUNBOOKS_DIR": str(folder)}
    with running_daemon(config, port, env=env) as process:
        assert "Call the duty manager" not in client.get(page).text
        path = folder / "monitor-down.md"
        path.write_text(path.read_text() + "\nCall the duty manager.\n")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: "Call the duty manager" in client.get(page).text)
