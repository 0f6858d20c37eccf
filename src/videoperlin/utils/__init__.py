"""Small shared helpers (atomic files, paths)."""
