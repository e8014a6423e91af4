"""Every alert name opsmon can send, in one registry that each emitter uses.

Diagnosis, alerting, rollback and the Prometheus rules shipped for opsmon itself all name their
alerts through `AlertName`, so a test can enumerate every name the code can emit and demand a
runbook for each one.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """How urgent an alert is (the `severity` label and the runbook's front matter)."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class AlertName(StrEnum):
    """An alert's CamelCase name; each one has a runbook in `runbooks/`."""

    HEALTH_CHECK_FAILING = "HealthCheckFailing"
    SERVICE_NOT_READY = "ServiceNotReady"
    SLOW_RESPONSES = "SlowResponses"
    TLS_CERTIFICATE_EXPIRING = "TLSCertificateExpiring"
    DATABASE_CONNECTION_FAILING = "DatabaseConnectionFailing"
    DATABASE_SATURATED = "DatabaseSaturated"
    ENVIRONMENT_VARIABLES_MISSING = "EnvironmentVariablesMissing"
    CONTAINER_DOWN = "ContainerDown"
    CONTAINER_UNHEALTHY = "ContainerUnhealthy"
    CONTAINER_CRASH_LOOPING = "ContainerCrashLooping"
    CONTAINER_OOM_KILLED = "ContainerOOMKilled"
    DOCKER_API_UNAVAILABLE = "DockerApiUnavailable"
    ALERT_DELIVERY_FAILING = "AlertDeliveryFailing"
    MONITOR_DOWN = "MonitorDown"
    ROLLBACK_PERFORMED = "RollbackPerformed"
    ROLLBACK_FAILED = "RollbackFailed"
    ROLLBACK_SKIPPED = "RollbackSkipped"
    BAD_IMAGE_REDEPLOYED = "BadImageRedeployed"
    STATE_STORE_FAILING = "StateStoreFailing"
    DEPLOY_PROMOTED = "DeployPromoted"
    DEPLOY_ROLLED_BACK = "DeployRolledBack"
    DEPLOY_GATE_FAILED = "DeployGateFailed"
    CLUSTER_DEGRADED = "ClusterDegraded"


# Who raises the alerts that diagnosis does not: the alerting pipeline itself, the rollback
# component, and a Prometheus rule watching opsmon from the outside.
EMITTED_ELSEWHERE: dict[AlertName, str] = {
    AlertName.ALERT_DELIVERY_FAILING: "alerting (a channel failing for longer than its threshold)",
    AlertName.MONITOR_DOWN: 'Prometheus rule on up{job="opsmon"} (opsmon cannot report itself)',
    AlertName.ROLLBACK_PERFORMED: "rollback (after an automatic rollback)",
    AlertName.ROLLBACK_FAILED: "rollback (when an automatic rollback did not work)",
    AlertName.ROLLBACK_SKIPPED: "rollback (warranted, but dry_run or a guard stopped it)",
    AlertName.BAD_IMAGE_REDEPLOYED: "rollback (an image that was rolled back is deployed again)",
    AlertName.STATE_STORE_FAILING: "alerting (the SQLite state cannot be written)",
    AlertName.DEPLOY_PROMOTED: "opsmon gate (the new version was healthy long enough)",
    AlertName.DEPLOY_ROLLED_BACK: "opsmon gate (the new version failed and was rolled back)",
    AlertName.DEPLOY_GATE_FAILED: "opsmon gate (failed, and not rolled back, or no verdict)",
    AlertName.CLUSTER_DEGRADED: "cluster (the shared PostgreSQL store does not answer)",
}
