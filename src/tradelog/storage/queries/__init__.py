"""Analysis queries, written once for both stores through ``storage.sql``."""
