"""The stream role: live minute bars from the provider's feed, stored, rolled up, analysed and
published as they close (``service`` has the algorithm; each step has its module)."""
