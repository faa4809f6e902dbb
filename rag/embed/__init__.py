"""Text → vectors: the provider registry (`providers`), the e5 engine and its pieces, the
persistent vector cache and the shipped vectors of the bundled corpus."""
