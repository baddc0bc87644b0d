"""Server-minted ids: a type prefix plus 32 random hex digits (resp_, msg_, fc_, rs_, …).

128 bits from the OS's random source, read directly: `uuid.uuid4()` gives the same digits (less
six fixed bits) through a Python-level UUID object, several of which every response mints."""
import os


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(16).hex()}"
