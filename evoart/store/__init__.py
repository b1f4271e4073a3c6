"""The run ledger: the only package that opens a run's SQLite database or writes its
files (see ``ledger``)."""

from .folders import (
    DB_NAME,
    LOCK_NAME,
    DamagedFile,
    DamagedLedger,
    RunLocked,
    StoreError,
    check_writable,
    generation_dir,
    individual_dir,
    list_runs,
    new_run_dir,
    resolve_run,
)
from .ledger import RunStore, opened
from .schema import SCHEMA_VERSION, IndividualRow

__all__ = ["DB_NAME", "LOCK_NAME", "DamagedFile", "DamagedLedger", "SCHEMA_VERSION", "IndividualRow", "RunLocked", "RunStore", "StoreError",
           "check_writable", "generation_dir", "individual_dir", "list_runs", "new_run_dir", "opened", "resolve_run"]
