"""posterm storage: the SQLite journal, card-data protection, the root key file and the audit log.

Imports nothing else of posterm. Import the modules themselves (``storage.journal``,
``storage.errors``, ...): this package file stays empty so that importing an error class
does not load SQLite and sqlite-utils.
"""
