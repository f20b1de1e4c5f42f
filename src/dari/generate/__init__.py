"""Generation: model files, LLM backends, the grounded prompt and citation handling."""
