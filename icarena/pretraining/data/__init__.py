"""Dataset store and per-task tokenizers."""

from icarena.pretraining.data.store import (
    Dataset,
    atomic_write_bytes,
    atomic_write_json,
    load_dataset,
    write_dataset,
)

__all__ = ["Dataset", "atomic_write_bytes", "atomic_write_json", "load_dataset", "write_dataset"]
