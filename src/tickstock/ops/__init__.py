"""Operations: settings, infrastructure, the supervisor (`tickstock up`), health, metrics, logs."""
