"""The Blueprint every API module uses: flask-smorest's, with the service's arguments parser
(app/safe_text.py), so no route reads a JSON body that was not checked."""

from __future__ import annotations

import flask_smorest

from app.safe_text import Parser


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()
