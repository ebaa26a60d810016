"""The conversation core: understanding, one module per user action, replies. Knows nothing of Bot Framework."""
