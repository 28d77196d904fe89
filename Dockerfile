# One image for every step of the SageMaker pipeline (whichbin pipeline step prepare|train|
# evaluate) and for the registry's inference container. CPU by default:
#   docker build -t whichbin .
# GPU fine-tuning (training.mode partial/full on ml.g5/ml.g4dn): a CUDA PyTorch base, e.g.
#   docker build --build-arg BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime -t whichbin:gpu .
# (see docs/aws.md). SageMaker runs training jobs as `docker run IMAGE train`, which the
# entry point below turns into `whichbin pipeline step train`.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/whichbin
COPY pyproject.toml README.md ./
COPY src ./src
# The train extra brings torch (CPU wheels from PyPI's default index on a slim base) for
# fine-tuning; head-only training needs only the core. DL3013: this installs the repo
# itself; its dependencies' bounds are in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install ".[train,aws]" && rm -rf /root/.cache

WORKDIR /opt/ml
ENTRYPOINT ["whichbin", "pipeline", "step"]
CMD ["--help"]
