"""The ledger's SQLite schema, its migrations, and the row types read from it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

SCHEMA_VERSION = 2

# Each migration takes the database from version i to i + 1. Version 0 is an empty file.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE run (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        versions TEXT NOT NULL,
        created REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'running'
    );
    CREATE TABLE individual (
        id TEXT PRIMARY KEY,
        born INTEGER NOT NULL,
        genome TEXT NOT NULL,
        genome_hash TEXT NOT NULL,
        parents TEXT NOT NULL,
        origin TEXT NOT NULL,
        inheritance TEXT,
        seed INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        reason TEXT NOT NULL DEFAULT '',
        stats TEXT,
        timings TEXT,
        evaluated REAL
    );
    CREATE INDEX individual_born ON individual (born);
    CREATE TABLE score (
        individual TEXT NOT NULL REFERENCES individual (id),
        generation INTEGER NOT NULL,
        metric TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (individual, generation, metric)
    );
    CREATE TABLE judge (
        generation INTEGER NOT NULL,
        d_individual TEXT NOT NULL,
        g_individual TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (generation, d_individual, g_individual)
    );
    CREATE TABLE member (
        generation INTEGER NOT NULL,
        individual TEXT NOT NULL REFERENCES individual (id),
        rank INTEGER NOT NULL,
        PRIMARY KEY (generation, individual)
    );
    CREATE TABLE generation (
        generation INTEGER PRIMARY KEY,
        started REAL NOT NULL,
        finished REAL,
        begin_state TEXT NOT NULL,
        end_state TEXT
    );
    CREATE TABLE favourite (
        individual TEXT PRIMARY KEY REFERENCES individual (id),
        created REAL NOT NULL
    );
    """,
    # 2: a judge cell says which panel member gave it: "peer" (a D of the population,
    # not kin), "memory" (a remembered D), "fallback" (kin, called back because the
    # generator had too few other judges) or "critic" (the generation's fresh critic).
    """
    ALTER TABLE judge ADD COLUMN role TEXT NOT NULL DEFAULT 'peer';
    """,
]


@dataclass
class IndividualRow:
    id: str
    born: int
    genome: dict
    genome_hash: str
    parents: list[str]
    origin: str
    inheritance: dict | None
    seed: int
    status: str
    reason: str
    stats: dict | None
    timings: dict | None

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> "IndividualRow":
        return cls(
            id=row["id"], born=row["born"], genome=json.loads(row["genome"]),
            genome_hash=row["genome_hash"], parents=json.loads(row["parents"]),
            origin=row["origin"],
            inheritance=json.loads(row["inheritance"]) if row["inheritance"] else None,
            seed=row["seed"], status=row["status"], reason=row["reason"],
            stats=json.loads(row["stats"]) if row["stats"] else None,
            timings=json.loads(row["timings"]) if row["timings"] else None,
        )


# Interactive evolution's tables, made by the first interactive run that opens a ledger
# (not a schema migration: every other run, and every reader of one, stays as it is).
# A pause is a generation waiting for the artist's picks; the terminal and the gallery
# page race to decide it (the first decision stands) and the run then applies it. An
# undone generation moves, whole, into a branch record; ``events`` is the run's event log.
INTERACTIVE_TABLES = """
    CREATE TABLE IF NOT EXISTS pause (
        generation INTEGER PRIMARY KEY,
        opened REAL NOT NULL,
        decision TEXT,
        source TEXT,
        decided REAL,
        applied INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS branch (
        id INTEGER PRIMARY KEY,
        generation INTEGER NOT NULL,
        created REAL NOT NULL,
        folder TEXT NOT NULL,
        record TEXT NOT NULL
    )
"""
