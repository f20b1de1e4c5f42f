"""Retrieval: BM25 ∥ dense → fusion → ACL filter → parent expansion → ordering → relevance floor."""
