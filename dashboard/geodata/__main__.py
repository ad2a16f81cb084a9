"""CLI: python -m dashboard.geodata {build,import,validate,export} ..."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _cmd_build(args) -> int:
    from .build import build
    from .county import CountyError
    t0 = time.time()
    multi = bool(args.counties or args.city or args.province)
    if multi and args.county:
        print("error: --county builds one county; --counties / --city / --province several", file=sys.stderr)
        return 2
    if sum(map(bool, (args.counties, args.city, args.province))) > 1:
        print("error: give one of --counties, --city, --province", file=sys.stderr)
        return 2
    try:
        if multi:
            from .build import DEFAULT_DIR
            from .multi import build_many
            out = args.out or args.geodata_dir
            if not out or Path(out).resolve() == DEFAULT_DIR.resolve():
                print("error: several counties go to their own folder (--out DIR); geodata/ holds the seed "
                      "district's committed files", file=sys.stderr)
                return 2
            names = [n for a in args.counties or () for n in a.replace("，", ",").split(",") if n.strip()]
            rep = build_many(out, args.src, counties=names, city=args.city,
                             province=args.province, workers=args.workers, verbose=not args.quiet)
        else:
            rep = build(args.out or args.geodata_dir, args.src, verbose=not args.quiet, county=args.county)
    except CountyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(rep.format())
    if not rep.ok:
        print("build FAILED: nothing written", file=sys.stderr)
        return 2
    print(f"built in {time.time() - t0:.1f} s -> {Path(args.out or args.geodata_dir or 'geodata')}")
    return 0


def _cmd_import(args) -> int:
    from .importer import GeodataImportError, import_layers
    if len(args.level) == 1 and len(args.paths) > 1:
        print("error: give one --level per PATH", file=sys.stderr)
        return 2
    if len(args.level) != len(args.paths):
        print("error: give one --level per PATH", file=sys.stderr)
        return 2
    layers = args.layer or [None] * len(args.paths)
    if len(layers) != len(args.paths):
        print("error: give one --layer per PATH (or none)", file=sys.stderr)
        return 2
    try:
        import_layers(list(zip(args.level, args.paths, layers)), args.geodata_dir, crs=args.crs,
                      dry_run=args.dry_run)
    except GeodataImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_counties(args) -> int:
    from .build import DEFAULT_DIR
    from .county import catalogue
    from .inputs import seed_code
    src = Path(args.src) if args.src else DEFAULT_DIR
    seed = seed_code(src)
    for c, _ in catalogue(src):
        print(f"{c.code}  {c.province}{c.city}{c.name}" + ("  (default: real town seats)" if c.code == seed else ""))
    return 0


def _cmd_validate(args) -> int:
    from .build import _check_hazards
    from .io import read_layers
    from .validate import validate_layers
    d = Path(args.geodata_dir or Path(__file__).resolve().parents[2] / "geodata")
    if (d / "counties.geojson").exists():
        from .io import read_multi_layers
        from .build import DEFAULT_DIR
        from .multi import reference_outlines, validate_multi
        src = Path(args.src) if args.src else DEFAULT_DIR
        rep = validate_multi(read_multi_layers(d), reference_outlines(src))
        print(rep.format())
        return 0 if rep.ok else 2
    g = read_layers(d)
    rep = validate_layers(g["district"], g["towns"], g["zones"], g["grids"], strict=not args.lenient)
    _check_hazards(g["grids"], g["hazards"], rep)
    print(rep.format())
    return 0 if rep.ok else 2


def _cmd_export(args) -> int:
    from .importer import export_level
    out = export_level(args.level, args.out, args.format, args.crs, args.geodata_dir)
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dashboard.geodata", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("build", help="generate the demo geodata deterministically")
    b.add_argument("--geodata-dir", default=None, help="output directory (default: repo geodata/)")
    b.add_argument("--out", default=None, help="alias of --geodata-dir")
    b.add_argument("--src", default=None, help="directory with source_district_wgs84.geojson and "
                                               "source_towns.csv (default: repo geodata/)")
    b.add_argument("--county", default=None,
                   help="a county-level unit of source_counties_wgs84.geojson by code (330521), Chinese name "
                        "(德清县) or short name (德清); default: the district of source_district_wgs84.geojson "
                        "with its real town seats (source_towns.csv). Other counties get synthetic town seats")
    b.add_argument("--counties", nargs="+", default=None, metavar="COUNTY",
                   help="several counties (codes or names, as --county; spaces or commas): one layered set, the "
                        "root is their city (all in one city) or the province")
    b.add_argument("--city", default=None, help="all the counties of a city (湖州市 or 湖州): the root is the city")
    b.add_argument("--province", action="store_true", help="all 90 counties: the root is the province")
    b.add_argument("--workers", type=int, default=None,
                   help="processes for a multi-county build (default: every core)")
    b.add_argument("-q", "--quiet", action="store_true")
    b.set_defaults(fn=_cmd_build)

    c = sub.add_parser("counties", help="list the county-level units that build --county knows")
    c.add_argument("--src", default=None)
    c.set_defaults(fn=_cmd_counties)

    i = sub.add_parser("import", help="replace a level with official boundaries")
    i.add_argument("paths", nargs="+", metavar="PATH",
                   help="GeoJSON, Shapefile, GeoPackage or a zip of Shapefiles (e.g. the GIS export)")
    i.add_argument("--level", nargs="+", required=True, choices=["town", "zone", "grid"],
                   help="level of each PATH (same order)")
    i.add_argument("--layer", nargs="+", default=None,
                   help="layer of each PATH (same order) in a file of several layers; default: the layer named "
                        "after the level (towns / zones / grids)")
    i.add_argument("--crs", default=None,
                   help="coordinates of the input: EPSG:xxxx (overrides the file's CRS) or gcj02 "
                        "(GCJ-02 lon/lat, converted to WGS84). Default: the file's CRS, else EPSG:4326")
    i.add_argument("--geodata-dir", default=None)
    i.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    i.set_defaults(fn=_cmd_import)

    v = sub.add_parser("validate", help="validate the geodata files")
    v.add_argument("--geodata-dir", default=None)
    v.add_argument("--lenient", action="store_true", help="import rules (counts/coverage are warnings)")
    v.add_argument("--src", default=None, help="a multi-county set: the directory of the province file whose "
                   "real outlines its grids must cover (default geodata/)")
    v.set_defaults(fn=_cmd_validate)

    e = sub.add_parser("export", help="export one level (for GIS tools / round trips)")
    e.add_argument("out", metavar="OUT")
    e.add_argument("--level", required=True, choices=["district", "town", "zone", "grid", "hazards"])
    e.add_argument("--format", default="geojson", choices=["geojson", "shp", "gpkg"])
    e.add_argument("--crs", default=None, help="gcj02 or EPSG:xxxx (default WGS84)")
    e.add_argument("--geodata-dir", default=None)
    e.set_defaults(fn=_cmd_export)

    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
