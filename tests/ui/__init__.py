"""The cashier app's tests (a package, so its conftest never shadows tests/integration's)."""
