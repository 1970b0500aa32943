"""Small utilities with no model knowledge: the allocator context (and, in
:mod:`ctrkit.persistence`, atomic file I/O)."""
