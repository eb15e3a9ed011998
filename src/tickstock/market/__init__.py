"""The outside market: calendar, universes, providers (massive, files, synthetic)."""
