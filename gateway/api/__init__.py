"""One blueprint per resource; views parse, call the engine and render."""
from flask import current_app

from gateway.services import Services


def services() -> Services:
    return current_app.extensions["gateway"]
