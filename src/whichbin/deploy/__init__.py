"""Approval → fleet deployment message; artifact fetching for the edge."""

from whichbin.deploy.approval import (
    DeployOutcome,
    approve_and_deploy,
    deploy_version,
    fleet_now,
    not_published_message,
    reject_and_retract,
    signing_key_path,
)
from whichbin.deploy.fetch import fetch_artifact
from whichbin.deploy.publish import (
    Deployer,
    DeploymentRefused,
    MqttDeployer,
    artifact_url,
    build_deployment,
    deployment_topic,
    publish_deployment,
)

__all__ = [
    "Deployer",
    "DeploymentRefused",
    "DeployOutcome",
    "MqttDeployer",
    "approve_and_deploy",
    "artifact_url",
    "build_deployment",
    "deploy_version",
    "deployment_topic",
    "fetch_artifact",
    "fleet_now",
    "not_published_message",
    "publish_deployment",
    "reject_and_retract",
    "signing_key_path",
]
