"""Reconciliation (对账): the acquirer's statement file against the journal, line by line."""
