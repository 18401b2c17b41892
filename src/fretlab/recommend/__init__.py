"""Playlist continuation: the synthetic catalogue and playlists, the set transformer, baselines and metrics."""
