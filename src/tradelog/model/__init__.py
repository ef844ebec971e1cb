"""Event types, enums, ids and time helpers. Imports nothing else of tradelog."""
