"""posterm storage: the SQLite journal, card-data protection, the root key file and the audit log.

Imports nothing else of posterm.
"""

from storage.errors import CorruptDatabase, InvalidTransition, KeyFileError, StorageError
from storage.journal import Journal, NewTransaction, Reversal, TransactionRecord
from storage.keyfile import create_key_file, load_key_file
from storage.pan import CardDataProtector, mask_pan

__all__ = [
    "CardDataProtector", "CorruptDatabase", "InvalidTransition", "Journal", "KeyFileError",
    "NewTransaction", "Reversal", "StorageError", "TransactionRecord", "create_key_file",
    "load_key_file", "mask_pan",
]
