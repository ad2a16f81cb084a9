"""The local basemap's tiles from this app's own origin (issue 12): ``GET /tiles/<base|dark>/<z>/<x>/<y>.<ext>``.

Only with ``TILE_FILE`` (``TILE_FILE_DARK``); the tiles come from ``services.tiles`` (an MBTiles or PMTiles file,
read-only). Who may: like the map's geometry (``auth.policy`` ``WALL``: signed-in users and the kiosk wall; public
with ``PUBLIC_OVERVIEW=1``). Answers: the image with its type, ``Cache-Control: public, max-age=…`` (the pages'
tile URLs carry the file's version, so a replaced file is fetched anew) and an ETag (``If-None-Match`` → 304); a
tile the file lacks: a short plain 404; a malformed address (not digits, negative, too long): 400 JSON; an unknown
basemap, extension or path under ``/tiles/``: 404 JSON. Never a 500.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from ..services import tiles as tile_service
from .errors import ApiError, register_blueprint_handlers

MAX_AGE_S = 86_400  # a day: tiles change only with the file, and the URL's ?v= changes with it
MISSING_MAX_AGE_S = 3_600

bp = Blueprint("tiles", __name__, url_prefix="/tiles")
register_blueprint_handlers(bp)  # JSON errors and the access policy (WALL; PUBLIC with PUBLIC_OVERVIEW)


@bp.get("/<name>/<z>/<x>/<y>.<ext>")
def tile(name: str, z: str, x: str, y: str, ext: str):
    try:
        found = tile_service.tile(name, z, x, y, ext)
    except tile_service.TileRequestError as e:
        raise ApiError(e.status, e.code, e.message, e.field) from None
    if found.data is None:
        resp = Response("no such tile in the basemap file\n", status=404, mimetype="text/plain")
        resp.headers["Cache-Control"] = f"public, max-age={MISSING_MAX_AGE_S}"
        return resp
    if request.if_none_match and found.etag in request.if_none_match:
        resp = Response(status=304)
    else:
        resp = Response(found.data, mimetype=found.content_type)
    resp.set_etag(found.etag)
    resp.headers["Cache-Control"] = f"public, max-age={MAX_AGE_S}"
    return resp


@bp.route("/", defaults={"rest": ""})
@bp.route("/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def not_a_tile(rest: str):
    """Any other path under ``/tiles/`` (Dash's page catch-all would answer it with the page): a 404."""
    raise ApiError(404, "not_found", "no such tile address: /tiles/<base|dark>/<z>/<x>/<y>.<png|jpg|webp>", "path")
