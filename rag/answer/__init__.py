"""Hits -> a cited answer: extractive offline, or a chat model given only the numbered sources."""
