"""Pattern specs and detection: TA-Lib candlesticks, chart/signal patterns, confidence."""
