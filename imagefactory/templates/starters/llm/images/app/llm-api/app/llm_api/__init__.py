"""A tokenizer API: GET /healthz, POST /tokens with a text body."""
