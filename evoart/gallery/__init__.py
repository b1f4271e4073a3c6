"""The gallery: static HTML pages of a run, written from its ledger into its folder.

Pages open from the file system (``file://``) with no server and nothing from the
internet: small CSS and JavaScript shipped in this package are copied beside them, charts
are inline SVG, and every link and image is a relative path to a file that exists.

    <root>/index.html                      every run: thumbnail, dataset, date, best scores
    <run>/index.html                       one strip per generation, charts, configuration
    <run>/gen-003/index.html               a generation: samples large, table, judge matrix
    <run>/gen-003/g003-i07/index.html      an individual: samples, genome, curves, family
    <run>/gen-003/g003-i07/lineage.html    its family tree back to generation 0
    <run>/gen-003/g003-i07/thumb.png       2 x 2 samples cut from samples.png

Everything is read through ``store`` (no SQL here) and rebuilt as a whole: a build
renders every page and rewrites only the files whose bytes changed, so rebuilding after
each generation of a running evolution is cheap. The pages show what selection uses
(``evoart.objectives``): the display score, realism, perceptual and coverage.

    view.py      RunView and the run summaries, read from the ledger
    charts.py    the charts' coordinates (line charts, Pareto view, judge heat map)
    lineage.py   the family tree's layout
    genes.py     the genome tables and what changed from each parent
    thumbs.py    thumbnails
    pages.py     each page's view model, rendered by the Jinja2 templates in templates/
    writer.py    writes only what changed; the static files in static/
    build.py     build_run, build_index, build
    server.py    ``evoart gallery serve``: favourites, save as preset, rebuilds
"""

from __future__ import annotations

from .build import build, build_index, build_run
from .genes import gene_diff
from .root import MARKER, check_root, claim_root
from .text import fmt
from .thumbs import ensure_thumb
from .view import (
    INDEX_NAME,
    LINEAGE_NAME,
    STATIC_DIR,
    THUMB_NAME,
    BuildReport,
    GalleryError,
    Individual,
    RunSummary,
    RunView,
    list_summaries,
    summarize,
)

__all__ = [
    "MARKER", "check_root", "claim_root",
    "INDEX_NAME", "LINEAGE_NAME", "STATIC_DIR", "THUMB_NAME", "BuildReport", "GalleryError", "Individual",
    "RunSummary", "RunView", "build", "build_index", "build_run", "ensure_thumb", "fmt", "gene_diff",
    "list_summaries", "summarize",
]
