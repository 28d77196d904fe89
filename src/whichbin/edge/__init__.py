"""The edge device: frame sources, presence, decisions, runner, deployment follower (the
classifier it runs is whichbin.inference.OnnxClassifier)."""
