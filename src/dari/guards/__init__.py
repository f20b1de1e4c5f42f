"""Guards: the question (injection, personal data, names, topics), each retrieved source (hidden
instructions) and the answer (leaks, toxicity, groundedness, schema), under a policy, audited."""
