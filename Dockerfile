# opsmon as a Compose sidecar. Build:   docker build -t opsmon:local .
# Offline / air-gapped build: put wheels in .wheels/ (`pip wheel -w .wheels .`) and add
#   --build-arg PIP_INSTALL_OPTIONS="--no-index --find-links=/src/.wheels"
# Another (e.g. internal mirror) base image: --build-arg PYTHON_IMAGE=registry.example.com/python:3.11
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: a virtualenv with opsmon and its dependencies, nothing else ------------------
FROM ${PYTHON_IMAGE} AS builder
# Lets a CI clean up this stage's image without touching others.
LABEL org.opsmon.stage=builder
ARG PIP_INSTALL_OPTIONS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# .dockerignore keeps the context to the package, its metadata and an optional wheelhouse.
COPY . /src
# Dependencies resolve within the lower/upper bounds pinned in pyproject.toml.
# hadolint ignore=SC2086
RUN python3 -m venv /opt/opsmon \
 && /opt/opsmon/bin/pip install --no-compile $PIP_INSTALL_OPTIONS /src \
 && /opt/opsmon/bin/python -m compileall -q /opt/opsmon \
 && /opt/opsmon/bin/opsmon --version

# ---- runtime: the same base, the virtualenv, a non-root user ------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="opsmon" \
      org.opencontainers.image.description="Monitoring sidecar for Docker Compose stacks" \
      org.opencontainers.image.licenses="MIT"
# A fixed uid/gid so volume ownership and `user:` overrides are predictable.
RUN groupadd --system --gid 10001 opsmon \
 && useradd --system --uid 10001 --gid opsmon --home-dir /var/lib/opsmon --no-create-home \
        --shell /usr/sbin/nologin opsmon \
 && mkdir -p /var/lib/opsmon /etc/opsmon \
 && chown opsmon:opsmon /var/lib/opsmon
COPY --from=builder /opt/opsmon /opt/opsmon
COPY config/opsmon.yml /etc/opsmon/opsmon.yml
# Nothing is written outside the state volume, so the root filesystem can be read-only.
ENV PATH=/opt/opsmon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPSMON_CONFIG=/etc/opsmon/opsmon.yml \
    OPSMON_STATE_DIR=/var/lib/opsmon \
    OPSMON_LISTEN=0.0.0.0:9110
VOLUME ["/var/lib/opsmon"]
WORKDIR /var/lib/opsmon
USER 10001:10001
EXPOSE 9110
# No curl in the image: Python's urllib asks /healthz on the port OPSMON_LISTEN names
# (a wildcard listen address is asked on loopback); any error or a 503 exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; h, _, p = os.environ.get('OPSMON_LISTEN', '0.0.0.0:9110').rpartition(':'); h = h.strip('[]'); h = '127.0.0.1' if h in ('', '0.0.0.0', '::') else h; h = '[' + h + ']' if ':' in h else h; u.urlopen('http://%s:%s/healthz' % (h, p), timeout=4)"]
ENTRYPOINT ["opsmon"]
CMD ["run"]
