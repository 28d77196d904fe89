"""The edge's gate for deployments: signature first, then an allowed URL, a capped download,
and retries with back-off for failures that a fixed artifact can cure.

``DeploymentFollower`` calls ``check`` before anything is fetched and ``fetch`` to download;
``Retries`` says when a failed deployment is tried again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from whichbin.config import EdgeSecurityConfig, FetchPolicy
from whichbin.security.signing import SignatureError, TrustedKeys, verify_deployment

logger = logging.getLogger(__name__)

_HINTS = {
    "no trusted key": "add the registry's public key (`whichbin keys show --pem` on the "
    "registry host) to edge.security.trusted_keys or --trusted-key",
    "unsigned deployment": "approve it with `whichbin registry approve` on a host holding "
    "the signing key",
}


class DeploymentGuard:
    """Accepts only deployments signed by a trusted key, fetched within the policy.

    Args:
        trusted: Public keys accepted (none: every deployment is refused).
        policy: Allowed URLs, size cap and retry timing.
        insecure_accept_unsigned: Lab bench only: accept a deployment that carries no
            signature, or any deployment when no key is trusted (a wrong signature is still
            refused).
    """

    def __init__(
        self,
        trusted: TrustedKeys | None = None,
        policy: FetchPolicy | None = None,
        insecure_accept_unsigned: bool = False,
    ) -> None:
        self.trusted = trusted if trusted is not None else TrustedKeys()
        self.policy = policy or FetchPolicy()
        self.insecure = insecure_accept_unsigned
        if not self.trusted and not self.insecure:
            logger.warning(
                "no trusted key: every deployment will be refused (%s)", _HINTS["no trusted key"]
            )
        if self.insecure:
            logger.warning(
                "INSECURE: accepting unsigned deployments (edge.security.insecure_accept_unsigned)"
            )

    @classmethod
    def from_settings(cls, settings: EdgeSecurityConfig) -> DeploymentGuard:
        """Load the trusted key files (ConfigError naming a file that is unusable)."""
        return cls(
            TrustedKeys.from_files(settings.trusted_keys),
            settings.fetch,
            settings.insecure_accept_unsigned,
        )

    def check(self, deployment: Any) -> None:
        """Refuse a deployment whose signature does not verify or whose URL is not allowed.

        Raises:
            SignatureError: ``deployment <version> refused: <reason>`` (and how to fix it).
            FetchRefused: The URL is not allowed by the fetch policy.
        """
        try:
            verify_deployment(deployment, self.trusted)
        except SignatureError as e:
            reason = str(e)
            if not (self.insecure and e.missing):
                hint = _HINTS.get(reason)
                raise SignatureError(
                    f"deployment {deployment.version} refused: {reason}"
                    + (f" ({hint})" if hint else "")
                ) from e
            logger.warning("INSECURE: accepting %s (%s)", deployment.version, reason)
        from whichbin.deploy.fetch import check_url

        check_url(deployment.url, self.policy)

    def fetch(self, url: str, dest: Path, sha256: str, size: int | None) -> Path:
        """Download within the policy, capped at ``size`` (the signed size)."""
        from whichbin.deploy.fetch import fetch_artifact

        return fetch_artifact(url, dest, sha256, self.policy.timeout, size=size, policy=self.policy)

    def retries(self) -> Retries:
        return Retries(self.policy.retry_initial, self.policy.retry_max)


class Retries:
    """When a failed deployment is tried again: doubling waits, capped; permanent failures
    (a bad signature, a refused URL) wait for a new message or ``reload``. Pure: ``now`` is
    passed in (monotonic seconds)."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, maximum
        self._failures: dict[Any, tuple[int, float | None]] = {}

    def failed(self, key: Any, now: float, permanent: bool = False) -> float | None:
        """Record a failure; returns the seconds until the retry (None: not retried)."""
        count = self._failures.get(key, (0, None))[0] + 1
        delay = None if permanent else min(self.initial * 2 ** (count - 1), self.maximum)
        self._failures[key] = (count, None if delay is None else now + delay)
        return delay

    def blocked(self, key: Any, now: float) -> bool:
        """True while ``key`` failed and its retry is not due."""
        if key not in self._failures:
            return False
        due = self._failures[key][1]
        return due is None or now < due

    def wait(self, now: float) -> float | None:
        """Seconds until the next retry is due (None: nothing to retry)."""
        due = [d - now for _, d in self._failures.values() if d is not None and d > now]
        return min(due) if due else None

    def succeeded(self, key: Any) -> None:
        self._failures.pop(key, None)

    def clear(self) -> None:
        self._failures.clear()
