"""dari (다리): grounded, cited Q&A over your documents, Korean and English alike."""

__version__ = "0.1.0"
