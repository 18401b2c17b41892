"""Audio in and out: decoding, windows, the log-mel front end, onset detection."""
