"""The games track's environments."""


def register_envs() -> None:
    """Register this track's env ids (idempotent)."""
