"""Transaction flows: one function per transaction family, reading top to bottom."""
