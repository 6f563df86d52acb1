"""The domain gate of the worked example: orders in, accepted orders out."""
