"""The edge device: frame sources, classifier, presence, decisions, runner, deployment follower."""
