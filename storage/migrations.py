"""Versioned schema of the journal: an ordered list of migrations, tracked in PRAGMA user_version.

A migration is frozen SQL text, never library calls, so that version N means the same
tables forever. Each one runs in its own transaction together with the user_version bump
(user_version lives in the file header and is transactional), so a power cut leaves the
file at version N or N+1, never in between. Append new migrations; never edit old ones.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from storage.errors import StorageError

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Migration:
    """One schema step: the version it brings the file to and the statements that do it."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "journal: meta, counters, keys, transactions, reversals, audit log",
        (
            """CREATE TABLE meta (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )""",
            """CREATE TABLE counters (
                name TEXT PRIMARY KEY,
                value INTEGER NOT NULL
            )""",
            "INSERT INTO counters (name, value) VALUES ('stan', 0), ('batch', 1)",
            """CREATE TABLE keys (
                name TEXT PRIMARY KEY,
                sealed BLOB NOT NULL,
                kcv TEXT,
                updated_utc TEXT NOT NULL,
                updated_local TEXT NOT NULL
            )""",
            """CREATE TABLE transactions (
                id INTEGER PRIMARY KEY,
                txn_type TEXT NOT NULL,
                state TEXT NOT NULL
                    CHECK (state IN ('PENDING', 'APPROVED', 'DECLINED', 'REVERSED', 'FAILED')),
                amount INTEGER NOT NULL CHECK (amount > 0),
                currency TEXT NOT NULL,
                stan INTEGER NOT NULL CHECK (stan BETWEEN 1 AND 999999),
                batch INTEGER NOT NULL CHECK (batch BETWEEN 1 AND 999999),
                terminal_id TEXT NOT NULL,
                merchant_id TEXT NOT NULL,
                operator TEXT NOT NULL,
                pan_masked TEXT NOT NULL,
                pan_hash TEXT NOT NULL,
                card BLOB NOT NULL,
                card_org TEXT NOT NULL,
                entry_mode TEXT NOT NULL,
                card_seq TEXT,
                pin_entered INTEGER NOT NULL CHECK (pin_entered IN (0, 1)),
                reversible INTEGER NOT NULL CHECK (reversible IN (0, 1)),
                response_code TEXT,
                rrn TEXT,
                auth_code TEXT,
                settlement_date TEXT,
                extra TEXT NOT NULL DEFAULT '{}',
                created_utc TEXT NOT NULL,
                created_local TEXT NOT NULL,
                updated_utc TEXT NOT NULL,
                updated_local TEXT NOT NULL
            )""",
            "CREATE INDEX transactions_batch_stan ON transactions (batch, stan)",
            "CREATE INDEX transactions_pan_hash ON transactions (pan_hash)",
            """CREATE TABLE reversals (
                id INTEGER PRIMARY KEY,
                txn_id INTEGER NOT NULL REFERENCES transactions (id),
                reason TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('ARMED', 'DONE', 'FAILED', 'CANCELLED')),
                attempts INTEGER NOT NULL DEFAULT 0,
                response_code TEXT,
                created_utc TEXT NOT NULL,
                created_local TEXT NOT NULL,
                updated_utc TEXT NOT NULL,
                updated_local TEXT NOT NULL
            )""",
            "CREATE INDEX reversals_txn ON reversals (txn_id)",
            # At most one armed reversal per transaction.
            "CREATE UNIQUE INDEX reversals_one_armed ON reversals (txn_id) WHERE state = 'ARMED'",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY,
                ts_utc TEXT NOT NULL,
                ts_local TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                detail TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )""",
            # The chain's head, so that deleting the newest audit rows is detected too.
            """CREATE TABLE audit_head (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                last_id INTEGER NOT NULL,
                last_hash TEXT NOT NULL
            )""",
            f"INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, '{GENESIS_HASH}')",
        ),
    ),
    Migration(
        2,
        "transactions: whether the slip was printed, so an unprinted one is offered again",
        (
            """ALTER TABLE transactions ADD COLUMN receipt_state TEXT
                CHECK (receipt_state IN ('printed', 'unprinted'))""",
            """CREATE INDEX transactions_unprinted ON transactions (receipt_state)
                WHERE receipt_state = 'unprinted'""",
        ),
    ),
    Migration(
        3,
        "operators with hashed passwords; a transaction's original; the advice queue",
        (
            """CREATE TABLE operators (
                code TEXT PRIMARY KEY,
                role TEXT NOT NULL CHECK (role IN ('cashier', 'supervisor')),
                name TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                created_utc TEXT NOT NULL,
                created_local TEXT NOT NULL,
                updated_utc TEXT NOT NULL,
                updated_local TEXT NOT NULL
            )""",
            # A void, refund or completion points at the transaction it acts on; a voided
            # sale points at its void.
            "ALTER TABLE transactions ADD COLUMN original_id INTEGER REFERENCES transactions (id)",
            "ALTER TABLE transactions ADD COLUMN voided_by INTEGER REFERENCES transactions (id)",
            "CREATE INDEX transactions_original ON transactions (original_id)",
            "CREATE INDEX transactions_rrn ON transactions (rrn)",
            """CREATE TABLE advices (
                id INTEGER PRIMARY KEY,
                txn_id INTEGER NOT NULL UNIQUE REFERENCES transactions (id),
                state TEXT NOT NULL CHECK (state IN ('QUEUED', 'SENT', 'FAILED')),
                attempts INTEGER NOT NULL DEFAULT 0,
                response_code TEXT,
                created_utc TEXT NOT NULL,
                created_local TEXT NOT NULL,
                updated_utc TEXT NOT NULL,
                updated_local TEXT NOT NULL
            )""",
            "CREATE INDEX advices_queued ON advices (state) WHERE state = 'QUEUED'",
        ),
    ),
    Migration(
        4,
        "settlements: one row per attempt with its step, so a power cut resumes it",
        (
            """CREATE TABLE settlements (
                id INTEGER PRIMARY KEY,
                batch INTEGER NOT NULL CHECK (batch BETWEEN 1 AND 999999),
                step TEXT NOT NULL CHECK (step IN ('started', 'flushed', 'totals',
                    'uploading', 'upload_end', 'tc_upload', 'tc_end', 'host_done', 'closed',
                    'failed')),
                stan INTEGER,
                totals TEXT,
                host_totals TEXT,
                result TEXT CHECK (result IN ('balanced', 'unbalanced', 'error')),
                result_after_upload TEXT
                    CHECK (result_after_upload IN ('balanced', 'unbalanced', 'error')),
                settlement_date TEXT,
                upload_total INTEGER NOT NULL DEFAULT 0,
                upload_cursor INTEGER NOT NULL DEFAULT 0,
                uploaded INTEGER NOT NULL DEFAULT 0,
                tc_total INTEGER NOT NULL DEFAULT 0,
                tc_cursor INTEGER NOT NULL DEFAULT 0,
                problems TEXT NOT NULL DEFAULT '[]',
                error TEXT,
                report TEXT,
                report_printed INTEGER NOT NULL DEFAULT 0,
                operator TEXT NOT NULL,
                started_utc TEXT NOT NULL,
                started_local TEXT NOT NULL,
                updated_utc TEXT NOT NULL,
                updated_local TEXT NOT NULL,
                finished_utc TEXT,
                finished_local TEXT
            )""",
            # One settlement under way (or done) per batch; failed attempts are kept.
            """CREATE UNIQUE INDEX settlements_one_per_batch ON settlements (batch)
                WHERE step != 'failed'""",
            # The batch's rows for its totals, and its first one (the open-batch warning
            # runs with every transaction: an index lookup, not a scan of the batch).
            "CREATE INDEX transactions_batch_created ON transactions (batch, created_utc)",
        ),
    ),
    Migration(
        5,
        "reconciliation: runs against an acquirer statement and their differences",
        (
            # One run per reconciliation of a statement file; the same file (by SHA-256) is
            # the same run unless forced. counts and summary are JSON text.
            """CREATE TABLE recon_runs (
                id INTEGER PRIMARY KEY,
                file_name TEXT NOT NULL,
                file_hash TEXT NOT NULL CHECK (length(file_hash) = 64),
                file_size INTEGER NOT NULL CHECK (file_size >= 0),
                profile TEXT NOT NULL,
                period_from TEXT,
                period_to TEXT,
                statement_lines INTEGER NOT NULL,
                journal_rows INTEGER NOT NULL,
                counts TEXT NOT NULL,
                summary_check TEXT NOT NULL
                    CHECK (summary_check IN ('ok', 'mismatch', 'absent')),
                summary TEXT NOT NULL DEFAULT '{}',
                other_terminal_lines INTEGER NOT NULL DEFAULT 0,
                forced INTEGER NOT NULL DEFAULT 0 CHECK (forced IN (0, 1)),
                operator TEXT NOT NULL,
                created_utc TEXT NOT NULL,
                created_local TEXT NOT NULL
            )""",
            "CREATE INDEX recon_runs_file_hash ON recon_runs (file_hash)",
            # Every line that is not plainly matched (matched lines are only counted);
            # card_masked is first 6 / last 4 at most, never a clear card number.
            """CREATE TABLE recon_items (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES recon_runs (id),
                class TEXT NOT NULL CHECK (class IN ('probable', 'amount_mismatch',
                    'journal_only', 'statement_only', 'status_mismatch', 'fee_mismatch',
                    'unparseable')),
                line_no INTEGER,
                txn_id INTEGER,
                terminal_id TEXT,
                batch INTEGER,
                stan INTEGER,
                rrn TEXT,
                txn_date TEXT,
                txn_time TEXT,
                card_masked TEXT,
                txn_type TEXT,
                journal_amount INTEGER,
                statement_amount INTEGER,
                journal_status TEXT,
                statement_status TEXT,
                fee_expected INTEGER,
                fee_statement INTEGER,
                net_expected INTEGER,
                net_statement INTEGER,
                detail TEXT NOT NULL,
                detail_zh TEXT NOT NULL,
                resolution_note TEXT,
                resolved_by TEXT,
                resolved_utc TEXT,
                resolved_local TEXT
            )""",
            "CREATE INDEX recon_items_run_class ON recon_items (run_id, class)",
        ),
    ),
    Migration(
        6,
        "operators: lockout after wrong passwords, first-use and periodic password change",
        (
            # active = 0: removed (the row stays, transactions and audit rows name the code).
            """ALTER TABLE operators ADD COLUMN active INTEGER NOT NULL DEFAULT 1
                CHECK (active IN (0, 1))""",
            # 1: the password was set by someone else (a default, a reset) and must be changed
            # at the next sign-on.
            """ALTER TABLE operators ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0
                CHECK (must_change IN (0, 1))""",
            # Wrong passwords in a row; reaching the configured limit sets locked_until.
            """ALTER TABLE operators ADD COLUMN failed_count INTEGER NOT NULL DEFAULT 0
                CHECK (failed_count >= 0)""",
            "ALTER TABLE operators ADD COLUMN locked_until_utc TEXT",
            "ALTER TABLE operators ADD COLUMN locked_until_local TEXT",
            "ALTER TABLE operators ADD COLUMN password_changed_utc TEXT",
            "ALTER TABLE operators ADD COLUMN password_changed_local TEXT",
            "ALTER TABLE operators ADD COLUMN last_signon_utc TEXT",
            "ALTER TABLE operators ADD COLUMN last_signon_local TEXT",
            """UPDATE operators SET password_changed_utc = updated_utc,
                password_changed_local = updated_local""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file (0 for a new, empty file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, name: str) -> int:
    """Bring the database on `conn` (autocommit mode) to LATEST_VERSION; returns the final version.

    `name` names the file in messages. A file newer than this build is refused.
    """
    current = schema_version(conn)
    if current > LATEST_VERSION:
        raise StorageError(
            f"journal {name} has schema version {current}, newer than this posterm "
            f"(knows up to {LATEST_VERSION}); upgrade posterm / 日志数据库 {name} 的版本 "
            f"{current} 高于本版本 posterm（最高 {LATEST_VERSION}）：请升级 posterm"
        )
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if schema_version(conn) >= migration.version:
                conn.execute("ROLLBACK")
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {migration.version:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        logger.info("journal %s migrated to schema %d (%s)", name, migration.version, migration.description)
        current = migration.version
    return current
