"""The two translation seams: Responses → Chat Completions and chat chunks → Responses events."""
