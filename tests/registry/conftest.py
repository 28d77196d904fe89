from tests.registry.fixtures import prefix, registry  # noqa: F401
