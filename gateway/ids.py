"""Server-minted ids: a type prefix plus 32 random hex digits (resp_, msg_, fc_, rs_, …)."""
import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"
